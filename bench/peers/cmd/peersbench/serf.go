package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	serf "github.com/hashicorp/serf/client"
)

// serfCluster: Debian serf agents (default lan profile), gossip (7946
// UDP+TCP) through the emulator, RPC (7373) straight from the harness.
type serfCluster struct {
	env     *caseEnv
	clients []*serf.RPCClient
}

func serfPorts(int) (tcp, udp []int) { return []int{7946}, []int{7946} }

func (s *serfCluster) rpcAddr(k int) string { return s.env.nodes[k].Real + ":7373" }

func (s *serfCluster) Start(ctx context.Context) error {
	join := s.env.nodes[0].Adv + ":7946"
	for k, n := range s.env.nodes {
		args := []string{s.env.bins.serf, "agent", "-node=" + n.Name, "-bind=" + n.Real + ":7946", "-advertise=" + n.Adv + ":7946",
			"-rpc-addr=" + s.rpcAddr(k), "-log-level=warn", "-profile=lan"}
		if k > 0 {
			args = append(args, "-retry-join="+join, "-retry-interval=1s")
		}
		if err := s.env.start(k, args...); err != nil {
			return err
		}
	}
	for k := range s.env.nodes {
		var c *serf.RPCClient
		err := retryUntil(ctx, "serf RPC on "+s.env.nodes[k].Name, 100*time.Millisecond, func() error {
			var err error
			c, err = serf.ClientFromConfig(&serf.Config{Addr: s.rpcAddr(k), Timeout: 5 * time.Second})
			return err
		})
		if err != nil {
			return err
		}
		s.clients = append(s.clients, c)
	}
	n := len(s.env.nodes)
	return retryUntil(ctx, "serf: every agent sees all alive", 500*time.Millisecond, func() error {
		for k, c := range s.clients {
			ms, err := c.Members()
			if err != nil {
				return err
			}
			alive := 0
			for _, m := range ms {
				if m.Status == "alive" {
					alive++
				}
			}
			if alive != n {
				return fmt.Errorf("%s sees %d of %d alive", s.env.nodes[k].Name, alive, n)
			}
		}
		return nil
	})
}

// Observe subscribes to user events on every agent's RPC stream.
func (s *serfCluster) Observe(ctx context.Context, o *observer) error {
	for k, c := range s.clients {
		ch := make(chan map[string]interface{}, 1024)
		if _, err := c.Stream("user", ch); err != nil {
			return fmt.Errorf("serf stream on %s: %w", s.env.nodes[k].Name, err)
		}
		go func() {
			for {
				select {
				case ev := <-ch:
					name, _ := ev["Name"].(string)
					if v, ok := strings.CutPrefix(name, "seq-"); ok {
						if seq, err := strconv.ParseInt(v, 10, 64); err == nil {
							o.report(k, seq)
						}
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return nil
}

// Write sends a user event (coalesce off) through agent 0's RPC.
func (s *serfCluster) Write(ctx context.Context, seq int64) error {
	return s.clients[0].UserEvent("seq-"+strconv.FormatInt(seq, 10), nil, false)
}

func (s *serfCluster) Info() map[string]string {
	return map[string]string{"watch": "RPC stream of user events on every agent", "write": "UserEvent(coalesce=false) via agent 0", "profile": "lan"}
}

func (s *serfCluster) Close() {
	for _, c := range s.clients {
		c.Close()
	}
}

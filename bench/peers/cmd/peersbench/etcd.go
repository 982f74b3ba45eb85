package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdCluster: Debian etcd-server, one member per node, peer traffic (2380)
// through the emulator, clients straight to each member's 2379.
type etcdCluster struct {
	env     *caseEnv
	clients []*clientv3.Client
	ids     []uint64
	leader  string
}

const etcdKey = "bench/key"

func etcdPorts(int) (tcp, udp []int) { return []int{2380}, nil }

func (e *etcdCluster) Start(ctx context.Context) error {
	var peers []string
	for _, n := range e.env.nodes {
		peers = append(peers, fmt.Sprintf("%s=http://%s:2380", n.Name, n.Adv))
	}
	for k, n := range e.env.nodes {
		err := e.env.start(k, e.env.bins.etcd,
			"--name", n.Name, "--data-dir", filepath.Join(e.env.dir, n.Name, "data"),
			"--listen-client-urls", "http://"+n.Real+":2379", "--advertise-client-urls", "http://"+n.Real+":2379",
			"--listen-peer-urls", "http://"+n.Real+":2380", "--initial-advertise-peer-urls", "http://"+n.Adv+":2380",
			"--initial-cluster", strings.Join(peers, ","), "--initial-cluster-token", "bench", "--initial-cluster-state", "new",
			"--logger", "zap", "--log-level", "warn")
		if err != nil {
			return err
		}
	}
	for _, n := range e.env.nodes {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{n.Real + ":2379"}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		e.clients = append(e.clients, c)
	}
	// Every member up with a leader.
	var leader uint64
	err := retryUntil(ctx, "etcd members with a leader", 200*time.Millisecond, func() error {
		for k, c := range e.clients {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := c.Status(sctx, e.env.nodes[k].Real+":2379")
			cancel()
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return fmt.Errorf("%s has no leader", e.env.nodes[k].Name)
			}
			leader = st.Leader
		}
		return nil
	})
	if err != nil {
		return err
	}
	ml, err := e.clients[0].MemberList(ctx)
	if err != nil {
		return err
	}
	byName := map[string]uint64{}
	for _, m := range ml.Members {
		byName[m.Name] = m.ID
	}
	for _, n := range e.env.nodes {
		e.ids = append(e.ids, byName[n.Name])
	}
	// Move the leader to member 0, the writer's (etcd's best case).
	if leader != e.ids[0] {
		for k, id := range e.ids {
			if id == leader {
				if _, err := e.clients[k].MoveLeader(ctx, e.ids[0]); err != nil {
					return fmt.Errorf("move etcd leader to %s: %w", e.env.nodes[0].Name, err)
				}
			}
		}
	}
	err = retryUntil(ctx, "etcd leader on member 0", 200*time.Millisecond, func() error {
		for k, c := range e.clients {
			st, err := c.Status(ctx, e.env.nodes[k].Real+":2379")
			if err != nil {
				return err
			}
			if st.Leader != e.ids[0] {
				return fmt.Errorf("%s sees leader %x", e.env.nodes[k].Name, st.Leader)
			}
		}
		return nil
	})
	e.leader = e.env.nodes[0].Name + " (" + e.env.nodes[0].Region + ")"
	return err
}

func (e *etcdCluster) Observe(ctx context.Context, o *observer) error {
	for k, c := range e.clients {
		wch := c.Watch(ctx, etcdKey, clientv3.WithCreatedNotify())
		select {
		case resp := <-wch:
			if !resp.Created {
				return fmt.Errorf("etcd watch on %s: no created notification", e.env.nodes[k].Name)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		go func() {
			for resp := range wch {
				for _, ev := range resp.Events {
					if seq, err := strconv.ParseInt(string(ev.Kv.Value), 10, 64); err == nil {
						o.report(k, seq)
					}
				}
			}
		}()
	}
	return nil
}

func (e *etcdCluster) Write(ctx context.Context, seq int64) error {
	_, err := e.clients[0].Put(ctx, etcdKey, strconv.FormatInt(seq, 10))
	return err
}

func (e *etcdCluster) Info() map[string]string {
	return map[string]string{"leader": e.leader, "watch": "clientv3 Watch on every member's own client port", "write": "Put via member 0 (the leader)"}
}

func (e *etcdCluster) Close() {
	for _, c := range e.clients {
		c.Close()
	}
}

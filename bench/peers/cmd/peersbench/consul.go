package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// consulCluster: the first `servers` nodes are Consul servers, the rest
// client agents. Server RPC/Raft (8300), LAN gossip (8301) and WAN gossip
// (8302) go through the emulator; HTTP (8500) is used directly by the
// harness, one agent per node, like a local client.
type consulCluster struct {
	env     *caseEnv
	servers int
	http    *http.Client
	leader  string
}

func consulPorts(servers int) func(k int) (tcp, udp []int) {
	return func(k int) (tcp, udp []int) {
		if k < servers {
			return []int{8300, 8301, 8302}, []int{8301, 8302}
		}
		return []int{8301}, []int{8301}
	}
}

func (c *consulCluster) url(k int, path string) string {
	return "http://" + c.env.nodes[k].Real + ":8500" + path
}

func (c *consulCluster) get(ctx context.Context, k int, path string, v any) (http.Header, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(k, path), nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s on %s: %s: %s", path, c.env.nodes[k].Name, resp.Status, bytes.TrimSpace(b))
	}
	return resp.Header, json.Unmarshal(b, v)
}

func (c *consulCluster) send(ctx context.Context, method string, k int, path string, body any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.url(k, path), r)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s on %s: %s: %s", method, path, c.env.nodes[k].Name, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func (c *consulCluster) Start(ctx context.Context) error {
	c.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var join []string
	for k := range c.servers {
		join = append(join, "-retry-join="+c.env.nodes[k].Adv)
	}
	for k, n := range c.env.nodes {
		dir := filepath.Join(c.env.dir, n.Name)
		args := []string{c.env.bins.consul, "agent", "-node=" + n.Name, "-bind=" + n.Real, "-advertise=" + n.Adv, "-client=" + n.Real,
			"-data-dir=" + filepath.Join(dir, "data"), "-disable-host-node-id", "-log-level=warn", "-retry-interval=1s",
			"-hcl=disable_update_check=true", "-hcl=performance{raft_multiplier=1}"}
		if k < c.servers {
			args = append(args, "-server", "-bootstrap-expect="+strconv.Itoa(c.servers))
		}
		args = append(args, join...)
		if err := c.env.start(k, args...); err != nil {
			return err
		}
	}
	n := len(c.env.nodes)
	err := retryUntil(ctx, "consul: every agent in the catalog and a leader everywhere", 500*time.Millisecond, func() error {
		var nodes []struct{ Node string }
		if _, err := c.get(ctx, 0, "/v1/catalog/nodes", &nodes); err != nil {
			return err
		}
		if len(nodes) < n {
			return fmt.Errorf("%d of %d agents in the catalog", len(nodes), n)
		}
		for k := range c.env.nodes {
			var leader string
			if _, err := c.get(ctx, k, "/v1/status/leader", &leader); err != nil {
				return err
			}
			if leader == "" {
				return fmt.Errorf("%s knows no leader", c.env.nodes[k].Name)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Leadership to server 0, the writer's agent (Consul's best case).
	type raftServer struct {
		ID, Node, Address string
		Leader            bool
	}
	var cfg struct{ Servers []raftServer }
	return retryUntil(ctx, "consul leader on "+c.env.nodes[0].Name, time.Second, func() error {
		if _, err := c.get(ctx, 0, "/v1/operator/raft/configuration", &cfg); err != nil {
			return err
		}
		for _, s := range cfg.Servers {
			if s.Leader && s.Node == c.env.nodes[0].Name {
				var leader string
				c.get(ctx, 0, "/v1/status/leader", &leader)
				c.leader = fmt.Sprintf("%s (%s) at %s", s.Node, c.env.nodes[0].Region, leader)
				return nil
			}
		}
		for _, s := range cfg.Servers {
			if s.Node == c.env.nodes[0].Name {
				if err := c.send(ctx, http.MethodPost, 0, "/v1/operator/raft/transfer-leader?id="+s.ID, nil); err != nil {
					return err
				}
			}
		}
		return fmt.Errorf("leader not yet on %s", c.env.nodes[0].Name)
	})
}

// Observe holds a default-consistency blocking query on the bench service in
// every agent and reports the seq tag each return carries.
func (c *consulCluster) Observe(ctx context.Context, o *observer) error {
	for k := range c.env.nodes {
		var first []struct{ ServiceTags []string }
		h, err := c.get(ctx, k, "/v1/catalog/service/bench", &first)
		if err != nil {
			return err
		}
		index := h.Get("X-Consul-Index")
		go func() {
			for ctx.Err() == nil {
				var svcs []struct{ ServiceTags []string }
				h, err := c.get(ctx, k, "/v1/catalog/service/bench?wait=60s&index="+index, &svcs)
				if err != nil {
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				if ni := h.Get("X-Consul-Index"); ni != "" {
					a, _ := strconv.ParseUint(ni, 10, 64)
					b, _ := strconv.ParseUint(index, 10, 64)
					if a < b {
						ni = "0" // index went backwards: reset, as Consul's docs say
					}
					index = ni
				}
				for _, s := range svcs {
					for _, t := range s.ServiceTags {
						if v, ok := strings.CutPrefix(t, "seq-"); ok {
							if seq, err := strconv.ParseInt(v, 10, 64); err == nil {
								o.report(k, seq)
							}
						}
					}
				}
			}
		}()
	}
	return nil
}

// Write re-registers an external node's service with a new tag through
// agent 0 (catalog register; the agent forwards it to the leader).
func (c *consulCluster) Write(ctx context.Context, seq int64) error {
	return c.send(ctx, http.MethodPut, 0, "/v1/catalog/register", map[string]any{
		"Node": "bench-ext", "Address": "10.0.0.1",
		"Service": map[string]any{"ID": "bench", "Service": "bench", "Port": 1, "Tags": []string{"seq-" + strconv.FormatInt(seq, 10)}},
	})
}

func (c *consulCluster) Info() map[string]string {
	return map[string]string{"leader": c.leader, "watch": "blocking GET /v1/catalog/service/bench?index= (default consistency) on every agent",
		"write": "PUT /v1/catalog/register via agent 0 (the leader server)", "servers": strconv.Itoa(c.servers)}
}

func (c *consulCluster) Close() {}

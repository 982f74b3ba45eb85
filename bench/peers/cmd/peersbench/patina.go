package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// patinaCluster: patina agents, gossip (8787 UDP+TCP: SWIM and the data
// plane) through the emulator, HTTP API (8080) straight from the harness.
// On loopback it runs `patina agent` (cmd/patina); through the emulator it
// runs bench/peers/patinaagent, the same wiring plus --advertise-addr.
type patinaCluster struct {
	env      *caseEnv
	bin      string
	advFlag  bool
	interval time.Duration // polling interval of the observers
	http     *http.Client
}

func patinaPorts(int) (tcp, udp []int) { return []int{8787}, []int{8787} }

func (p *patinaCluster) api(k int) string { return "http://" + p.env.nodes[k].Real + ":8080" }

func (p *patinaCluster) Start(ctx context.Context) error {
	p.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	for k, n := range p.env.nodes {
		dir := filepath.Join(p.env.dir, n.Name)
		args := []string{p.bin}
		if !p.advFlag {
			args = append(args, "agent")
		}
		args = append(args, "--api-addr", n.Real+":8080", "--gossip-addr", n.Real+":8787",
			"--db-path", filepath.Join(dir, "state.db"), "--region", n.Region)
		if p.advFlag {
			args = append(args, "--advertise-addr", n.Adv+":8787")
		}
		if k > 0 {
			args = append(args, "--bootstrap", p.env.nodes[0].Adv+":8787")
		}
		if err := p.env.start(k, args...); err != nil {
			return err
		}
	}
	n := len(p.env.nodes)
	err := retryUntil(ctx, "patina: every agent sees all alive", 500*time.Millisecond, func() error {
		for k := range p.env.nodes {
			var ms []struct{ State string }
			if err := p.getJSON(ctx, k, "/v1/members", &ms); err != nil {
				return err
			}
			alive := 0
			for _, m := range ms {
				if m.State == "alive" {
					alive++
				}
			}
			if alive < n-1 { // the list may or may not include the node itself
				return fmt.Errorf("%s sees %d of %d alive", p.env.nodes[k].Name, alive, n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = p.transact(ctx, 0, `["INSERT INTO services (id, name, address, port) VALUES ('bench', 'bench', '10.0.0.1', 0)"]`)
	return err
}

func (p *patinaCluster) getJSON(ctx context.Context, k int, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.api(k)+path, nil)
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s on %s: %s: %s", path, p.env.nodes[k].Name, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

func (p *patinaCluster) transact(ctx context.Context, k int, body string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.api(k)+"/v1/transactions", bytes.NewBufferString(body))
	req.Header.Set("content-type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("POST /v1/transactions on %s: %s: %s", p.env.nodes[k].Name, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// port reads the bench row's port on node k (-1 if the row is not there).
func (p *patinaCluster) port(ctx context.Context, k int) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.api(k)+"/v1/queries",
		bytes.NewBufferString(`"SELECT port FROM services WHERE id = 'bench'"`))
	req.Header.Set("content-type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	port := int64(-1)
	for sc.Scan() {
		var line struct {
			Row   []json.RawMessage `json:"row"`
			Error string            `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return 0, err
		}
		if line.Error != "" {
			return 0, fmt.Errorf("query on %s: %s", p.env.nodes[k].Name, line.Error)
		}
		if len(line.Row) == 2 {
			var vals []int64
			if err := json.Unmarshal(line.Row[1], &vals); err == nil && len(vals) == 1 {
				port = vals[0]
			}
		}
	}
	return port, sc.Err()
}

// slowPoll is the polling interval once a write is older than slowPollAfter:
// a node waiting for anti-entropy (seconds) is not worth 200 queries a second
// on a 2-core machine, and 50 ms is small against such delays.
const (
	slowPollAfter = time.Second
	slowPoll      = 50 * time.Millisecond
)

// Observe polls every node that has not yet shown the current write, every
// interval (slowPoll after the first second), with POST /v1/queries (patina
// has no subscription endpoint yet).
func (p *patinaCluster) Observe(ctx context.Context, o *observer) error {
	for k := range p.env.nodes {
		if _, err := p.port(ctx, k); err != nil {
			return err
		}
		go func() {
			t := time.NewTimer(p.interval)
			defer t.Stop()
			for ctx.Err() == nil {
				target, written, armed := o.want(k)
				if target == 0 {
					select {
					case <-armed:
					case <-ctx.Done():
					}
					continue
				}
				if v, err := p.port(ctx, k); err == nil && v >= target {
					o.report(k, v)
					continue
				}
				if time.Since(written) < slowPollAfter {
					t.Reset(p.interval)
				} else {
					t.Reset(slowPoll)
				}
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
		}()
	}
	return nil
}

// Write updates the bench row's port through node 0's API.
func (p *patinaCluster) Write(ctx context.Context, seq int64) error {
	_, err := p.transact(ctx, 0, `[["UPDATE services SET port = ? WHERE id = 'bench'", [`+strconv.FormatInt(seq, 10)+`]]]`)
	return err
}

func (p *patinaCluster) Info() map[string]string {
	return map[string]string{"watch": fmt.Sprintf("POST /v1/queries polled every %v (every %v after the first %v) on each node until it shows the write", p.interval, slowPoll, slowPollAfter),
		"write": "POST /v1/transactions (UPDATE one row) via node 0", "binary": filepath.Base(p.bin)}
}

func (p *patinaCluster) Close() {}

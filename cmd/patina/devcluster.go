package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// runDevcluster runs N agents on loopback with the built-in schema, prints
// their addresses and example commands, and runs until interrupted.
func runDevcluster(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devcluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of agents")
	dir := fs.String("dir", "", "keep the nodes' data here (default: a temporary directory removed on exit)")
	apiBase := fs.Int("api-port", 8080, "API port of node 1; node i uses api-port+i-1 (a busy port falls back to a free one)")
	gossipBase := fs.Int("gossip-port", 8787, "gossip port of node 1; node i uses gossip-port+i-1")
	regionsFlag := fs.String("regions", "iad,fra,syd", "regions assigned round-robin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 64 {
		return fmt.Errorf("--nodes %d: want 1..64", *nodes)
	}
	base := *dir
	if base == "" {
		tmp, err := os.MkdirTemp("", "patina-devcluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		base = tmp
	}
	regions := strings.Split(*regionsFlag, ",")
	log := newLogger(io.Discard)
	var running []*node
	defer func() {
		for _, n := range running {
			n.close()
		}
	}()
	var bootstrap []string
	for i := 0; i < *nodes; i++ {
		cfg := NewConfig()
		cfg.Region = regions[i%len(regions)]
		cfg.DB.Path = filepath.Join(base, fmt.Sprintf("node%d", i+1), "state.db")
		cfg.Admin.Path = filepath.Join(base, fmt.Sprintf("node%d", i+1), "admin.sock")
		cfg.Gossip.Bootstrap = bootstrap
		var n *node
		var err error
		for attempt := 0; attempt < 2; attempt++ {
			cfg.API.Addr = fmt.Sprintf("127.0.0.1:%d", *apiBase+i)
			cfg.Gossip.Addr = fmt.Sprintf("127.0.0.1:%d", *gossipBase+i)
			if attempt == 1 { // the fixed ports are taken: any free ones
				cfg.API.Addr, cfg.Gossip.Addr = "127.0.0.1:0", "127.0.0.1:0"
			}
			if n, err = startNode(ctx, cfg, log); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("start node %d: %w", i+1, err)
		}
		running = append(running, n)
		bootstrap = append(bootstrap, n.gossip.Network.Addr())
	}
	first := running[0].api.BoundAddr()
	fmt.Fprintf(out, "patina devcluster: %d agents on loopback (data in %s)\n\n", len(running), base)
	fmt.Fprintf(out, "  %-6s %-7s %-22s %-22s %s\n", "node", "region", "api", "gossip", "actor")
	for i, n := range running {
		fmt.Fprintf(out, "  %-6d %-7s %-22s %-22s %s\n", i+1, n.agent.Region, n.api.BoundAddr(), n.gossip.Network.Addr(), n.store.Actor())
	}
	last := running[len(running)-1].api.BoundAddr()
	fmt.Fprintf(out, `
Try it (in another terminal):

  curl -s http://%[1]s/v1/transactions -H 'content-type: application/json' \
    -d '[["INSERT INTO services (id, name, address, port) VALUES (?, ?, ?, ?)", ["web-1", "web", "10.0.0.1", 8080]]]'
  curl -s http://%[2]s/v1/queries -H 'content-type: application/json' -d '"SELECT id, name, port FROM services"'
  go run ./cmd/patina query --api-addr %[2]s "SELECT * FROM services"
  go run ./cmd/patina members --api-addr %[1]s

Tables: machines, services, health_checks. Press Ctrl-C to stop.
`, first, last)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping")
	return nil
}

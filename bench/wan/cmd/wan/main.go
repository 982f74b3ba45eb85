// Command wan runs the WAN emulator of package wan for a topology file and
// holds it until SIGINT or SIGTERM.
//
//	wan -config topo.json [-stats stats.json]
//
// topo.json is a wan.Config: {"scale": 1, "nodes": [{"name": "n1",
// "region": "iad", "real": "127.0.10.1", "proxy": "127.0.11.1",
// "tcp": [2380], "udp": []}, ...]}. Each node's process binds its real IP and
// advertises its proxy IP. "ready" is printed once every proxy listens; the
// counters and delivery lateness are written to -stats (JSON) at exit.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/patinadb/patina/bench/wan"
)

func main() {
	config := flag.String("config", "", "topology JSON file (wan.Config)")
	stats := flag.String("stats", "", "write counters and lateness (JSON) here at exit")
	flag.Parse()
	if err := run(*config, *stats); err != nil {
		fmt.Fprintln(os.Stderr, "wan:", err)
		os.Exit(1)
	}
}

func run(config, statsPath string) error {
	if config == "" {
		return fmt.Errorf("-config is required")
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var cfg wan.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("parse %s: %w", config, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	e, err := wan.Start(cfg)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	<-sig
	snap := e.Stats.Snapshot()
	e.Close()
	if statsPath != "" {
		out, _ := json.MarshalIndent(snap, "", "  ")
		return os.WriteFile(statsPath, append(out, '\n'), 0o644)
	}
	return nil
}

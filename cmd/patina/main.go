// Command patina runs and talks to patina agents.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const usage = `patina — gossip-replicated SQLite for service discovery and cluster state

Usage:
  patina agent [--config FILE] [--api-addr A] [--gossip-addr A] [--db-path P] [--bootstrap a,b] [--region R]
  patina devcluster [--nodes 3]          run N agents on loopback with the built-in schema
  patina exec [--api-addr A] SQL...      run statements as one transaction
  patina query [--api-addr A] [--columns] SQL
  patina members [--api-addr A]
  patina status [--api-addr A]
  patina subscribe [--api-addr A] [--json] [--from N] [--skip-rows] SQL   print a subscription's events as they come
  patina subs list [--api-addr A]        the agent's subscriptions
  patina subs info [--api-addr A] ID
  patina bench propagation [--nodes 50] [--writes 200] [--seed N] [--out FILE]
  patina bench apply [--rows 200000] [--dir DIR] [--out FILE]
  patina bench storm [--nodes 20] [--updates 1000000] [--cells 10000] [--cap BYTES] [--out FILE]
  patina bench catchup [--changes 100000] [--out FILE]

Run "patina COMMAND --help" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "agent":
		err = runAgent(ctx, args, os.Stderr)
	case "devcluster":
		err = runDevcluster(ctx, args, os.Stdout)
	case "exec":
		err = runExec(ctx, args, os.Stdout)
	case "query":
		err = runQuery(ctx, args, os.Stdout)
	case "members":
		err = runMembers(ctx, args, os.Stdout)
	case "status":
		err = runStatus(ctx, args, os.Stdout)
	case "bench":
		err = runBench(ctx, args, os.Stdout)
	case "subscribe":
		err = runSubscribe(ctx, args, os.Stdout)
	case "subs":
		err = runSubs(ctx, args, os.Stdout)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "patina: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "patina %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func runAgent(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML config file (default: the embedded single-node default)")
	apiAddr := fs.String("api-addr", "", "override [api] addr")
	gossipAddr := fs.String("gossip-addr", "", "override [gossip] addr")
	dbPath := fs.String("db-path", "", "override [db] path")
	bootstrap := fs.String("bootstrap", "", "override [gossip] bootstrap (comma-separated host:port)")
	region := fs.String("region", "", "override region")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := NewConfig()
	if *configPath != "" {
		var err error
		if cfg, err = LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if *apiAddr != "" {
		cfg.API.Addr = *apiAddr
	}
	if *gossipAddr != "" {
		cfg.Gossip.Addr = *gossipAddr
	}
	if *dbPath != "" {
		cfg.DB.Path = *dbPath
	}
	if *bootstrap != "" {
		cfg.Gossip.Bootstrap = strings.Split(*bootstrap, ",")
	}
	if *region != "" {
		cfg.Region = *region
	}
	log := newLogger(logw)
	n, err := startNode(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("patina agent running", "actor", n.store.Actor(), "region", cfg.Region, "api", n.api.BoundAddr(), "gossip", cfg.Gossip.Addr, "db", cfg.DB.Path)
	stalled := make(chan struct{})
	wd := &watchdog{progress: n.agent.Progress, now: time.Now, stallAfter: DefaultStallTimeout, notify: sdNotify, log: log,
		onStall: func(time.Duration) { close(stalled) }}
	go wd.run(ctx, watchdogInterval())
	select {
	case <-ctx.Done():
	case <-stalled:
		n.close()
		return fmt.Errorf("apply loop stuck for over %v; exited for a restart (see the log above)", DefaultStallTimeout)
	}
	log.Info("shutting down")
	return n.close()
}

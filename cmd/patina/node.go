package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/agent"
	"github.com/patinadb/patina/gossip"
	phttp "github.com/patinadb/patina/http"
	"github.com/patinadb/patina/internal/defaultschema"
	"github.com/patinadb/patina/metrics"
	"github.com/patinadb/patina/pubsub"
	"github.com/patinadb/patina/sqlite"
)

// node is one running agent: store, gossip, hub and API, wired here and only
// here (and in internal/testcluster, the same way on the simulated network).
type node struct {
	store  *sqlite.DB
	gossip *gossip.Node
	agent  *agent.Agent
	api    *phttp.Server
	subs   *pubsub.Service
}

// startNode opens everything a config describes.
func startNode(ctx context.Context, cfg *Config, log *slog.Logger) (*node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.DB.Path), 0o755); err != nil {
		return nil, fmt.Errorf("create data directory for db.path %s: %w", cfg.DB.Path, err)
	}
	n := &node{store: sqlite.NewDB(cfg.DB.Path)}
	if err := n.store.Open(); err != nil {
		return nil, err
	}
	var err error
	if len(cfg.DB.SchemaPaths) == 0 {
		err = n.store.ApplySchema([]sqlite.SchemaFile{{Name: defaultschema.Name, SQL: defaultschema.SQL}})
	} else {
		err = n.store.ApplySchemaFiles(cfg.DB.SchemaPaths)
	}
	if err != nil {
		n.store.Close()
		return nil, fmt.Errorf("apply schema: %w", err)
	}
	n.agent = agent.New(n.store)
	n.agent.Region = cfg.Region
	n.agent.ClusterID = cfg.Gossip.ClusterID
	n.agent.Logger = log
	n.subs = pubsub.New(cfg.DB.Path)
	n.subs.Dir = cfg.DB.SubscriptionsPath
	n.subs.MaxChanges = cfg.Subscriptions.MaxChanges
	n.subs.MaxAge = cfg.Subscriptions.MaxAge.Duration
	n.subs.IdleTimeout = cfg.Subscriptions.IdleTimeout.Duration
	n.subs.EvalTimeout = cfg.Subscriptions.EvalTimeout.Duration
	n.subs.Logger = log
	if err := n.subs.Open(); err != nil {
		n.store.Close()
		return nil, err
	}
	n.agent.OnApplied = n.subs.Notify
	n.api = phttp.NewServer(n.agent)
	n.api.Addr = cfg.API.Addr
	n.api.BearerToken = cfg.API.Authz.BearerToken
	n.api.Logger = log
	n.api.Subscriptions = n.subs
	n.api.Waiter = &agent.Waiter{Agent: n.agent, Checker: &phttp.AppliedChecker{Token: cfg.API.Authz.BearerToken}}
	n.mount(func(mux *http.ServeMux) {
		mux.Handle("GET /metrics", metrics.Handler(&metrics.Collector{Status: n.agent.Status, Counters: n.counters}))
	})
	if err := n.api.Open(); err != nil {
		n.subs.Close()
		n.store.Close()
		return nil, fmt.Errorf("start API on api.addr %s: %w", cfg.API.Addr, err)
	}
	n.gossip = &gossip.Node{
		Actor: n.store.Actor(), Region: cfg.Region, ClusterID: cfg.Gossip.ClusterID, APIAddr: n.api.BoundAddr(),
		Network: &gossip.TCPNetwork{BindAddr: cfg.Gossip.Addr}, Bootstrap: cfg.Gossip.Bootstrap,
		Handler: n.agent, SyncServer: n.store, Logger: log,
	}
	n.agent.Membership, n.agent.Broadcaster, n.agent.Peers = n.gossip, n.gossip, n.gossip
	n.agent.ExtraQueues = func() map[string]patina.QueueStatus {
		qs := n.subs.Queues()
		qs["broadcast"] = n.gossip.QueueStatus()
		return qs
	}
	if err := n.gossip.Open(ctx); err != nil {
		n.api.Close()
		n.subs.Close()
		n.store.Close()
		return nil, fmt.Errorf("start gossip on gossip.addr %s: %w", cfg.Gossip.Addr, err)
	}
	if err := n.agent.Open(ctx); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// mount adds routes to the API server (subscriptions, metrics, ...).
func (n *node) mount(f func(*http.ServeMux)) {
	prev := n.api.Extra
	n.api.Extra = func(mux *http.ServeMux) {
		if prev != nil {
			prev(mux)
		}
		f(mux)
	}
}

// counters are the data plane's counters for /metrics.
func (n *node) counters() map[string]uint64 {
	if n.gossip == nil {
		return nil
	}
	s := n.gossip.Stats()
	return map[string]uint64{
		"broadcast_messages_sent": s.MsgsSent, "broadcast_bytes_sent": s.BytesSent, "broadcast_cells_sent": s.CellsSent,
		"broadcast_peer_dropped": s.PeerDropped, "sync_sessions_served": s.SyncsServed, "sync_sessions_refused": s.SyncsRefused,
		"cluster_id_refused": s.ClusterRefused,
	}
}

// close shuts down in dependency order: stop taking requests, leave the
// cluster, stop the loops, close the database.
func (n *node) close() error {
	var errs []error
	if n.api != nil {
		errs = append(errs, n.api.Close())
	}
	if n.gossip != nil {
		errs = append(errs, n.gossip.Close())
	}
	if n.agent != nil {
		errs = append(errs, n.agent.Close())
	}
	if n.subs != nil {
		errs = append(errs, n.subs.Close())
	}
	errs = append(errs, n.store.Close())
	return errors.Join(errs...)
}

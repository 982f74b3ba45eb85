// Package testcluster runs N full patina agents in one process on the
// simulated network, wired exactly like cmd/patina wires a real node (store,
// gossip node, agent), for convergence, partition and restart tests and for
// the propagation benchmark.
package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/agent"
	"github.com/patinadb/patina/gossip"
	phttp "github.com/patinadb/patina/http"
	"github.com/patinadb/patina/internal/defaultschema"
	"github.com/patinadb/patina/netsim"
	"github.com/patinadb/patina/pubsub"
	"github.com/patinadb/patina/sqlite"
)

// TB is the part of testing.TB the harness needs, so benchmarks outside
// `go test` (patina bench) can run clusters too.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

var _ TB = (testing.TB)(nil)

// Config describes a cluster.
type Config struct {
	Nodes int
	// Regions assigns regions round-robin; default one region ("iad").
	Regions []string
	Seed    int64
	Loss    float64
	Jitter  float64
	// Schema is the schema file text; default the built-in schema.
	Schema string
	// ClusterID of every node (per-node overrides via ClusterIDs).
	ClusterID  uint16
	ClusterIDs map[int]uint16
	// Tune lets a test adjust each node before it opens.
	Tune func(i int, n *Node)
	// Bootstrap is how many earlier nodes each node joins (default 3).
	Bootstrap int
	// Dir holds the nodes' files (default a temp dir).
	Dir string
	// Subscriptions gives every node a subscription service (Node.PubSub)
	// fed by the agent's OnApplied, as cmd/patina does.
	Subscriptions bool
	// API serves every node's HTTP API on loopback (Node.API), with
	// subscriptions and ?wait= when enabled; members learn its address,
	// which stays the same across restarts.
	API bool
	// TunePubSub adjusts each node's subscription service before it opens.
	TunePubSub func(i int, s *pubsub.Service)
}

// Node is one agent of the cluster.
type Node struct {
	Index  int
	Addr   string
	Region string
	Path   string
	Store  *sqlite.DB
	Gossip *gossip.Node
	Agent  *agent.Agent
	Host   *netsim.Host
	// Waiter answers ?wait= (read-your-writes) by asking the other nodes
	// in process; PubSub and API are set when the config asks.
	Waiter *agent.Waiter
	PubSub *pubsub.Service
	API    *phttp.Server
	up     bool
}

// Cluster is a running set of nodes.
type Cluster struct {
	Net   *netsim.Network
	Nodes []*Node
	cfg   Config
	tb    TB
	mu    sync.Mutex
}

// New starts a cluster; it is closed at the end of the test.
func New(tb TB, cfg Config) *Cluster {
	tb.Helper()
	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{"iad"}
	}
	if cfg.Schema == "" {
		cfg.Schema = defaultschema.SQL
	}
	if cfg.Bootstrap <= 0 {
		cfg.Bootstrap = 3
	}
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	c := &Cluster{Net: netsim.New(netsim.Config{Seed: cfg.Seed, Loss: cfg.Loss, Jitter: cfg.Jitter}), cfg: cfg, tb: tb}
	for i := 0; i < cfg.Nodes; i++ {
		region := cfg.Regions[i%len(cfg.Regions)]
		addr := fmt.Sprintf("10.%d.%d.%d:7946", (i/65536)%256, (i/256)%256, i%256+1)
		host, err := c.Net.AddHost(addr, region)
		if err != nil {
			tb.Fatal(err)
		}
		n := &Node{Index: i, Addr: addr, Region: region, Host: host, Path: filepath.Join(cfg.Dir, fmt.Sprintf("node%d", i), "state.db")}
		if err := os.MkdirAll(filepath.Dir(n.Path), 0o755); err != nil {
			tb.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(c.Nodes[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(c.Close)
	return c
}

func (c *Cluster) clusterID(i int) uint16 {
	if id, ok := c.cfg.ClusterIDs[i]; ok {
		return id
	}
	return c.cfg.ClusterID
}

// start opens a node's store, gossip and agent (also used by Restart).
func (c *Cluster) start(n *Node) error {
	store := sqlite.NewDB(n.Path)
	if err := store.Open(); err != nil {
		return err
	}
	if err := store.ApplySchema([]sqlite.SchemaFile{{Name: "test.sql", SQL: c.cfg.Schema}}); err != nil {
		store.Close()
		return err
	}
	ag := agent.New(store)
	ag.Region = n.Region
	ag.ClusterID = c.clusterID(n.Index)
	ag.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ag.SyncMinBackoff = 100 * time.Millisecond
	ag.SyncMaxBackoff = 1 * time.Second
	var boot []string
	for j := max(0, n.Index-c.cfg.Bootstrap); j < n.Index; j++ {
		boot = append(boot, c.Nodes[j].Addr)
	}
	if n.Index == 0 && len(c.Nodes) > 1 {
		boot = []string{c.Nodes[1].Addr}
	}
	mlc := gossip.DefaultMemberlistConfig()
	mlc.ProbeInterval = 500 * time.Millisecond
	mlc.GossipInterval = 50 * time.Millisecond
	mlc.PushPullInterval = 5 * time.Second
	mlc.SuspicionMult = 3
	g := &gossip.Node{Actor: store.Actor(), Region: n.Region, ClusterID: c.clusterID(n.Index), Network: n.Host,
		Bootstrap: boot, Handler: ag, SyncServer: store, Logger: ag.Logger, Memberlist: mlc}
	ag.Membership, ag.Broadcaster, ag.Peers = g, g, g
	ag.ExtraQueues = func() map[string]patina.QueueStatus {
		return map[string]patina.QueueStatus{"broadcast": g.QueueStatus()}
	}
	n.Store, n.Gossip, n.Agent = store, g, ag
	if err := c.startExtras(n); err != nil {
		store.Close()
		return err
	}
	if c.cfg.Tune != nil {
		c.cfg.Tune(n.Index, n)
	}
	if err := g.Open(context.Background()); err != nil {
		store.Close()
		return err
	}
	if err := ag.Open(context.Background()); err != nil {
		g.Close()
		store.Close()
		return err
	}
	n.up = true
	return nil
}

// Close stops every node.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n.up {
			wg.Add(1)
			go func() { defer wg.Done(); c.stop(n, true) }()
		}
	}
	wg.Wait()
	c.Net.Close()
}

func (c *Cluster) stop(n *Node, graceful bool) {
	if !n.up {
		return
	}
	n.up = false
	if !graceful {
		n.Host.Down()
	}
	n.Agent.Close()
	c.stopExtras(n)
	n.Gossip.Close()
	n.Store.Close()
}

// Kill crashes node i: its network goes down at once, then its goroutines
// stop; its files stay.
func (c *Cluster) Kill(i int) { c.stop(c.Nodes[i], false) }

// Restart starts node i again from its files.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	n := c.Nodes[i]
	n.Host.Up()
	if err := c.start(n); err != nil {
		c.tb.Fatal(err)
	}
}

// Up lists the running nodes.
func (c *Cluster) Up() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.up {
			out = append(out, n)
		}
	}
	return out
}

// Exec runs statements on node i and returns the version.
func (c *Cluster) Exec(i int, sqls ...string) patina.Version {
	c.tb.Helper()
	stmts := make([]patina.Statement, len(sqls))
	for j, s := range sqls {
		stmts[j] = patina.Statement{SQL: s}
	}
	res, err := c.Nodes[i].Agent.Transact(context.Background(), stmts)
	if err != nil {
		c.tb.Fatalf("node %d: %v", i, err)
	}
	if res.Changeset == nil {
		return 0
	}
	return res.Changeset.Version
}

// Query returns rows of node i as strings "a|b|c".
func (n *Node) Query(sql string) ([]string, error) {
	rows, err := n.Agent.Query(context.Background(), patina.Statement{SQL: sql})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var parts []string
		for _, v := range rows.Values() {
			parts = append(parts, v.String())
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(tb TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := 5 * time.Millisecond
	var last string
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
		}
		t := time.NewTimer(tick)
		<-t.C
		tick = min(tick*2, 100*time.Millisecond)
	}
}

// Converged reports whether every running node has the same heads, no gaps
// or partials, and the same rows in every table of the schema.
func (c *Cluster) Converged(tables ...string) (bool, string) {
	up := c.Up()
	if len(up) == 0 {
		return true, ""
	}
	ref := up[0].Store.SyncState()
	for _, n := range up {
		st := n.Store.SyncState()
		if len(st.Gaps) > 0 || len(st.Partials) > 0 {
			return false, fmt.Sprintf("node %d has gaps %v partials %d", n.Index, st.Gaps, len(st.Partials))
		}
		if !maps(ref.Heads, st.Heads) {
			return false, fmt.Sprintf("node %d heads %v differ from node %d heads %v", n.Index, st.Heads, up[0].Index, ref.Heads)
		}
	}
	for _, t := range tables {
		var first []string
		for k, n := range up {
			rows, err := n.Query("SELECT * FROM " + t + " ORDER BY 1, 2")
			if err != nil {
				return false, err.Error()
			}
			sort.Strings(rows)
			if k == 0 {
				first = rows
			} else if !slices.Equal(first, rows) {
				return false, fmt.Sprintf("table %s differs between node %d (%d rows) and node %d (%d rows)", t, up[0].Index, len(first), n.Index, len(rows))
			}
		}
	}
	return true, ""
}

func maps(a, b map[patina.ActorID]patina.Version) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// MembersSeen reports whether every running node sees want live members.
func (c *Cluster) MembersSeen(want int) (bool, string) {
	for _, n := range c.Up() {
		alive := 0
		for _, m := range n.Gossip.Members() {
			if m.State == patina.MemberAlive {
				alive++
			}
		}
		if alive != want {
			return false, fmt.Sprintf("node %d sees %d live members, want %d", n.Index, alive, want)
		}
	}
	return true, ""
}

package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/testcluster"
)

// StormOptions configures the storm benchmark (INCIDENTS.md #1).
type StormOptions struct {
	Nodes    int   // default 20
	Updates  int   // backlog size; default 1,000,000
	Cells    int   // distinct cells the backlog rewrites; default 10,000
	CapBytes int   // per-node outbound broadcast cap, bytes/s; default 1 MiB/s
	PerTx    int   // updates per replayed transaction; default 500
	Seed     int64 // default 1
}

// StormResult is the outcome; JSON keys per issue #5.
type StormResult struct {
	Nodes         int `json:"nodes"`
	Updates       int `json:"updates"`
	DistinctCells int `json:"distinct_cells"`
	// CellsSent is the storm's cells that reached an average other node,
	// over broadcast (duplicates included) and sync.
	CellsSent         float64 `json:"cells_sent"`
	CellsViaBroadcast float64 `json:"cells_via_broadcast"`
	CellsViaSync      float64 `json:"cells_via_sync"`
	BytesSent         int64   `json:"bytes_sent"`
	CapBytesPerS      int     `json:"cap_bytes_per_s"`
	MaxNodeBytesPerS  float64 `json:"max_node_bytes_per_s"`
	UnrelatedWrites   int     `json:"unrelated_writes"`
	UnrelatedP50Ms    float64 `json:"unrelated_p50_ms"`
	UnrelatedP99Ms    float64 `json:"unrelated_p99_ms"`
	ReplaySeconds     float64 `json:"replay_seconds"`
	ConvergeSeconds   float64 `json:"converge_seconds"`
	PeakHeapMB        float64 `json:"peak_heap_mb"`
}

// countingHandler counts the storm origin's cells arriving by broadcast.
type countingHandler struct {
	next  patina.ChangesetHandler
	storm *patina.ActorID
	cells *atomic.Int64
}

func (h countingHandler) HandleChangesets(from patina.ActorID, css []patina.Changeset, ttl int) {
	for i := range css {
		if css[i].Actor == *h.storm {
			h.cells.Add(int64(len(css[i].Changes)))
		}
	}
	h.next.HandleChangesets(from, css, ttl)
}

// countingPeers counts the storm origin's cells arriving by sync.
type countingPeers struct {
	patina.PeerClient
	storm *patina.ActorID
	cells *atomic.Int64
}

func (p countingPeers) Pull(ctx context.Context, peer patina.Member, needs []patina.Need, fn func(patina.Changeset) error) error {
	return p.PeerClient.Pull(ctx, peer, needs, func(cs patina.Changeset) error {
		if cs.Actor == *p.storm {
			p.cells.Add(int64(len(cs.Changes)))
		}
		return fn(cs)
	})
}

// Storm replays a retry backlog of Updates updates to Cells cells from one
// node into a cluster whose nodes cap their outbound broadcast bytes, while
// the other nodes keep writing unrelated rows at a normal rate; it reports
// how many of the storm's cells reached each node, the bandwidth, and the
// propagation of the unrelated writes.
func Storm(tb testcluster.TB, o StormOptions) (StormResult, error) {
	if o.Nodes <= 0 {
		o.Nodes = 20
	}
	if o.Updates <= 0 {
		o.Updates = 1_000_000
	}
	if o.Cells <= 0 {
		o.Cells = 10_000
	}
	if o.CapBytes <= 0 {
		o.CapBytes = 1 << 20
	}
	if o.PerTx <= 0 {
		o.PerTx = 500
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	var stormActor patina.ActorID
	var cells, syncCells atomic.Int64
	var mu sync.Mutex
	applied := map[applyKey][]time.Time{}
	record := func(css []patina.Changeset) {
		now := time.Now()
		mu.Lock()
		for _, cs := range css {
			if cs.Actor != stormActor {
				k := applyKey{cs.Actor, cs.Version}
				applied[k] = append(applied[k], now)
			}
		}
		mu.Unlock()
	}
	c := testcluster.New(tb, testcluster.Config{Nodes: o.Nodes, Regions: []string{"iad", "ord", "fra", "lhr", "sin"}, Seed: o.Seed,
		Tune: func(i int, n *testcluster.Node) {
			n.Gossip.RateBytesPerSec = o.CapBytes
			n.Agent.OnApplied = record
			n.Gossip.Handler = countingHandler{next: n.Agent, storm: &stormActor, cells: &cells}
			n.Agent.Peers = countingPeers{PeerClient: n.Gossip, storm: &stormActor, cells: &syncCells}
		}})
	stormActor = c.Nodes[0].Store.Actor()
	testcluster.WaitFor(tb, 60*time.Second, "membership", func() (bool, string) { return c.MembersSeen(o.Nodes - 1) })
	// Seed the cells so the backlog is all updates.
	ctx := context.Background()
	upsert := func(n int) string {
		s := "INSERT INTO services (id, port) VALUES "
		for i := 0; i < n; i++ {
			if i > 0 {
				s += ", "
			}
			s += "(?, ?)"
		}
		return s + " ON CONFLICT (id) DO UPDATE SET port = excluded.port"
	}
	for base := 0; base < o.Cells; base += o.PerTx {
		n := min(o.PerTx, o.Cells-base)
		var params []patina.Value
		for i := base; i < base+n; i++ {
			params = append(params, patina.Text(fmt.Sprintf("cell-%d", i)), patina.Int(0))
		}
		if _, err := c.Nodes[0].Agent.Transact(ctx, []patina.Statement{{SQL: upsert(n), Params: params}}); err != nil {
			return StormResult{}, err
		}
	}
	testcluster.WaitFor(tb, 120*time.Second, "seeded", func() (bool, string) { return c.Converged() })
	cells.Store(0)
	syncCells.Store(0)
	bytesBefore := netBytes(c)

	// Sample heap and per-node egress while the storm runs.
	stop := make(chan struct{})
	var peakHeap uint64
	var maxRate float64
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	go func() {
		defer samplerDone.Done()
		prev := c.Net.Stats()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
			select {
			case <-stop:
				return
			case <-t.C:
			}
			cur := c.Net.Stats()
			for addr, s := range cur {
				rate := float64(s.StreamBytesSent + s.PacketBytes - prev[addr].StreamBytesSent - prev[addr].PacketBytes)
				maxRate = max(maxRate, rate)
			}
			prev = cur
		}
	}()

	// Unrelated writers: every 100 ms one node other than the storm's.
	type write struct {
		key   applyKey
		start time.Time
	}
	var writes []write
	var wmu sync.Mutex
	unrelatedDone := make(chan struct{})
	go func() {
		defer close(unrelatedDone)
		rng := rand.New(rand.NewPCG(uint64(o.Seed), 5))
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			i := 1 + rng.IntN(o.Nodes-1)
			start := time.Now()
			res, err := c.Nodes[i].Agent.Transact(ctx, []patina.Statement{{SQL: `INSERT INTO machines (id, state) VALUES (?, 'started')`, Params: []patina.Value{patina.Text(fmt.Sprintf("m-%d", k))}}})
			if err == nil && res.Changeset != nil {
				wmu.Lock()
				writes = append(writes, write{applyKey{res.Changeset.Actor, res.Changeset.Version}, start})
				wmu.Unlock()
			}
		}
	}()

	// The storm: the backlog replayed as fast as the node can commit.
	replayStart := time.Now()
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 7))
	for done := 0; done < o.Updates; done += o.PerTx {
		n := min(o.PerTx, o.Updates-done)
		params := make([]patina.Value, 0, 2*n)
		seen := map[int]bool{}
		for len(params) < 2*n {
			cell := rng.IntN(o.Cells)
			if seen[cell] { // one row once per statement
				continue
			}
			seen[cell] = true
			params = append(params, patina.Text(fmt.Sprintf("cell-%d", cell)), patina.Int(int64(done+len(params))))
		}
		if _, err := c.Nodes[0].Agent.Transact(ctx, []patina.Statement{{SQL: upsert(n), Params: params}}); err != nil {
			close(stop)
			return StormResult{}, err
		}
	}
	replay := time.Since(replayStart).Seconds()
	convergeStart := time.Now()
	testcluster.WaitFor(tb, 600*time.Second, "convergence after the storm", func() (bool, string) { return c.Converged("services") })
	converge := time.Since(convergeStart).Seconds()
	close(stop)
	<-unrelatedDone
	samplerDone.Wait()
	testcluster.WaitFor(tb, 60*time.Second, "unrelated writes everywhere", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range writes {
			if len(applied[w.key]) < o.Nodes-1 {
				return false, "unrelated write not everywhere"
			}
		}
		return true, ""
	})
	var lat []float64
	mu.Lock()
	for _, w := range writes {
		last := w.start
		for _, t := range applied[w.key] {
			if t.After(last) {
				last = t
			}
		}
		lat = append(lat, float64(last.Sub(w.start))/float64(time.Millisecond))
	}
	mu.Unlock()
	return StormResult{
		Nodes: o.Nodes, Updates: o.Updates, DistinctCells: o.Cells,
		CellsSent:         float64(cells.Load()+syncCells.Load()) / float64(o.Nodes-1),
		CellsViaBroadcast: float64(cells.Load()) / float64(o.Nodes-1),
		CellsViaSync:      float64(syncCells.Load()) / float64(o.Nodes-1),
		BytesSent:         netBytes(c) - bytesBefore,
		CapBytesPerS:      o.CapBytes, MaxNodeBytesPerS: maxRate,
		UnrelatedWrites: len(lat), UnrelatedP50Ms: pct(lat, 50), UnrelatedP99Ms: pct(lat, 99),
		ReplaySeconds: replay, ConvergeSeconds: converge, PeakHeapMB: float64(peakHeap) / (1 << 20),
	}, nil
}

func netBytes(c *testcluster.Cluster) int64 {
	var b int64
	for _, s := range c.Net.Stats() {
		b += s.StreamBytesSent + s.PacketBytes
	}
	return b
}

package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/testcluster"
	"github.com/patinadb/patina/netsim"
)

// PropagationOptions configures the propagation benchmark.
type PropagationOptions struct {
	Nodes  int           // default 50
	Writes int           // default 200
	Seed   int64         // default 1
	Gap    time.Duration // between writes; default 50 ms
	Loss   float64
	// Regions to assign round-robin; default all of the matrix's regions.
	Regions []string
}

// PropagationResult is the benchmark's outcome; JSON keys per issue #5.
type PropagationResult struct {
	Nodes         int     `json:"nodes"`
	Regions       int     `json:"regions"`
	Writes        int     `json:"writes"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	FloorP50Ms    float64 `json:"floor_p50_ms"`
	FloorP99Ms    float64 `json:"floor_p99_ms"`
	RatioP50      float64 `json:"ratio_p50"`
	RatioP99      float64 `json:"ratio_p99"`
	MsgsPerWrite  float64 `json:"msgs_per_write"`
	BytesPerWrite float64 `json:"bytes_per_write"`
}

type applyKey struct {
	actor   patina.ActorID
	version patina.Version
}

// Propagation starts N agents on the simulated network with the region RTT
// matrix (regions assigned round-robin), writes at random origins, and
// measures per write the time from the origin's commit to applied on every
// node, next to the physical floor: the one-way latency from the origin to
// its farthest node.
func Propagation(tb testcluster.TB, o PropagationOptions) (PropagationResult, error) {
	if o.Nodes <= 0 {
		o.Nodes = 50
	}
	if o.Writes <= 0 {
		o.Writes = 200
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Gap <= 0 {
		o.Gap = 50 * time.Millisecond
	}
	regions := netsim.Regions()
	if len(o.Regions) > 0 {
		regions = o.Regions
	}
	var mu sync.Mutex
	applied := map[applyKey][]time.Time{}
	record := func(css []patina.Changeset) {
		now := time.Now()
		mu.Lock()
		for _, cs := range css {
			k := applyKey{cs.Actor, cs.Version}
			applied[k] = append(applied[k], now)
		}
		mu.Unlock()
	}
	c := testcluster.New(tb, testcluster.Config{Nodes: o.Nodes, Regions: regions, Seed: o.Seed, Loss: o.Loss,
		Tune: func(i int, n *testcluster.Node) { n.Agent.OnApplied = record }})
	testcluster.WaitFor(tb, 120*time.Second, "full membership", func() (bool, string) { return c.MembersSeen(o.Nodes - 1) })
	// Let memberlist settle and the broadcast streams warm up with one write
	// per node (not measured).
	for i := range c.Nodes {
		c.Exec(i, fmt.Sprintf(`INSERT INTO machines (id) VALUES ('warm-%d')`, i))
	}
	testcluster.WaitFor(tb, 60*time.Second, "warm-up converged", func() (bool, string) { return c.Converged() })
	before := totalStats(c)

	rng := rand.New(rand.NewPCG(uint64(o.Seed), 99))
	type write struct {
		key    applyKey
		origin int
		start  time.Time
	}
	writes := make([]write, 0, o.Writes)
	for w := 0; w < o.Writes; w++ {
		origin := rng.IntN(o.Nodes)
		start := time.Now()
		res, err := c.Nodes[origin].Agent.Transact(context.Background(), []patina.Statement{{
			SQL:    `INSERT INTO services (id, name, port) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET port = excluded.port`,
			Params: []patina.Value{patina.Text(fmt.Sprintf("svc-%d", w%50)), patina.Text("bench"), patina.Int(int64(w))}}})
		if err != nil {
			return PropagationResult{}, err
		}
		writes = append(writes, write{applyKey{res.Changeset.Actor, res.Changeset.Version}, origin, start})
		t := time.NewTimer(o.Gap)
		<-t.C
	}
	testcluster.WaitFor(tb, 120*time.Second, "every write applied everywhere", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range writes {
			if n := len(applied[w.key]); n < o.Nodes-1 {
				return false, fmt.Sprintf("write %v applied on %d of %d other nodes", w.key.version, n, o.Nodes-1)
			}
		}
		return true, ""
	})
	after := totalStats(c)
	var lat, floor, ratio []float64
	mu.Lock()
	for _, w := range writes {
		last := w.start
		for _, t := range applied[w.key] {
			if t.After(last) {
				last = t
			}
		}
		l := float64(last.Sub(w.start)) / float64(time.Millisecond)
		f := floorMs(c, w.origin)
		lat, floor, ratio = append(lat, l), append(floor, f), append(ratio, l/f)
	}
	mu.Unlock()
	return PropagationResult{
		Nodes: o.Nodes, Regions: min(o.Nodes, len(regions)), Writes: o.Writes,
		P50Ms: pct(lat, 50), P99Ms: pct(lat, 99), FloorP50Ms: pct(floor, 50), FloorP99Ms: pct(floor, 99),
		RatioP50: pct(ratio, 50), RatioP99: pct(ratio, 99),
		MsgsPerWrite:  float64(after.msgs-before.msgs) / float64(o.Writes),
		BytesPerWrite: float64(after.bytes-before.bytes) / float64(o.Writes),
	}, nil
}

type traffic struct{ msgs, bytes uint64 }

func totalStats(c *testcluster.Cluster) traffic {
	var t traffic
	for _, n := range c.Nodes {
		s := n.Gossip.Stats()
		t.msgs += s.MsgsSent
		t.bytes += s.BytesSent
	}
	return t
}

// floorMs is the one-way latency from the origin to its farthest node.
func floorMs(c *testcluster.Cluster, origin int) float64 {
	var worst time.Duration
	from := c.Nodes[origin].Region
	for _, n := range c.Nodes {
		if n.Index == origin {
			continue
		}
		if rtt, ok := netsim.RTT(from, n.Region); ok && rtt/2 > worst {
			worst = rtt / 2
		}
	}
	return float64(worst) / float64(time.Millisecond)
}

// pct returns the p-th percentile (nearest rank) of xs.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// observer collects "node k now shows write seq" reports from each system's
// own watch mechanism and tells when the current write is visible on all.
type observer struct {
	n int

	mu     sync.Mutex
	target int64
	start  time.Time
	seen   []time.Time // when each node first showed target
	got    []int64     // highest seq each node has shown
	left   int
	done   chan struct{}
	armed  chan struct{} // closed and replaced on each arm (wakes pollers)
	extra  int64         // reports of a seq newer than the target (should be 0)
}

func newObserver(n int) *observer {
	return &observer{n: n, seen: make([]time.Time, n), got: make([]int64, n), done: make(chan struct{}), armed: make(chan struct{})}
}

// arm starts waiting for seq (written at start) on every node.
func (o *observer) arm(seq int64, start time.Time) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.target, o.start, o.left = seq, start, o.n
	o.done = make(chan struct{})
	for k := range o.seen {
		o.seen[k] = time.Time{}
	}
	close(o.armed)
	o.armed = make(chan struct{})
	return o.done
}

// report: node k shows seq (at the time of the call).
func (o *observer) report(k int, seq int64) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq > o.got[k] {
		o.got[k] = seq
	}
	if o.target == 0 || seq < o.target || !o.seen[k].IsZero() {
		return
	}
	if seq > o.target {
		o.extra++
	}
	o.seen[k] = now
	if o.left--; o.left == 0 {
		close(o.done)
	}
}

// want is what a polling observer of node k should look for: the target if
// k has not shown it yet, else 0; when it was written; and a channel closed
// at the next arm.
func (o *observer) want(k int) (int64, time.Time, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.target == 0 || o.got[k] >= o.target {
		return 0, time.Time{}, o.armed
	}
	return o.target, o.start, o.armed
}

// latencies returns each node's write → visible time (-1 if not seen).
func (o *observer) latencies() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]time.Duration, o.n)
	for k, t := range o.seen {
		if t.IsZero() {
			out[k] = -1
		} else {
			out[k] = t.Sub(o.start)
		}
	}
	return out
}

// writeResult is one measured write.
type writeResult struct {
	Ack   time.Duration
	Nodes []time.Duration // -1: not seen within the timeout
}

// summary is the statistics of one case.
type summary struct {
	Writes     int       `json:"writes"`
	Incomplete int       `json:"incomplete"`               // writes not visible on every node within the timeout
	AllMs      quantiles `json:"all_ms"`                   // write → visible on every node (the slowest node)
	NodeMs     quantiles `json:"node_ms"`                  // every (write, node) pair
	FirstMs    quantiles `json:"first_ms"`                 // write → first node other than the writer
	AckMs      quantiles `json:"ack_ms"`                   // the write call itself
	Missed     []int     `json:"missed_by_node,omitempty"` // per node: writes it had not shown by the timeout
}

type quantiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// quant uses nearest rank.
func quant(ds []time.Duration) quantiles {
	if len(ds) == 0 {
		return quantiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(i, 0)])
	}
	return quantiles{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func summarize(rs []writeResult) summary {
	var all, pooled, first, ack []time.Duration
	inc := 0
	var missed []int
	for _, r := range rs {
		if missed == nil {
			missed = make([]int, len(r.Nodes))
		}
		for k, d := range r.Nodes {
			if d < 0 {
				missed[k]++
			}
		}
		ack = append(ack, r.Ack)
		worst, firstOther, complete := time.Duration(0), time.Duration(-1), true
		for k, d := range r.Nodes {
			if d < 0 {
				complete = false
				continue
			}
			pooled = append(pooled, d)
			worst = max(worst, d)
			if k > 0 && (firstOther < 0 || d < firstOther) {
				firstOther = d
			}
		}
		if firstOther >= 0 {
			first = append(first, firstOther)
		}
		if complete {
			all = append(all, worst)
		} else {
			inc++
		}
	}
	if inc == 0 {
		missed = nil
	}
	return summary{Missed: missed, Writes: len(rs), Incomplete: inc, AllMs: quant(all), NodeMs: quant(pooled), FirstMs: quant(first), AckMs: quant(ack)}
}

// cpuIdle samples /proc/stat; idleSince gives the idle fraction since then.
type cpuSample struct{ idle, total uint64 }

func sampleCPU() cpuSample {
	b, err := readFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	var s cpuSample
	fields := splitFields(firstLine(b))
	for i, f := range fields[1:] {
		v := parseUint(f)
		s.total += v
		if i == 3 || i == 4 { // idle, iowait
			s.idle += v
		}
	}
	return s
}

func (s cpuSample) idleSince(prev cpuSample) float64 {
	if s.total == prev.total {
		return 0
	}
	return float64(s.idle-prev.idle) / float64(s.total-prev.total)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

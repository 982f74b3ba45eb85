package wan

import (
	"sync/atomic"
	"time"
)

// Stats counts what the proxies did. Lateness is how long after its due time
// a chunk or datagram was written: the emulator's own error, which grows when
// the machine is short of CPU.
type Stats struct {
	TCPConns    atomic.Int64 // connections accepted
	UDPSessions atomic.Int64 // UDP source sessions opened
	Unresolved  atomic.Int64 // connections or sessions whose sender was unknown (given the receiver's region)
	Chunks      atomic.Int64 // TCP chunks delivered
	Datagrams   atomic.Int64 // UDP datagrams delivered
	Dropped     atomic.Int64 // UDP datagrams dropped on a full queue
	Bytes       atomic.Int64 // payload bytes delivered

	late [lateBuckets + 1]atomic.Int64

	resolveN, resolveNanos, resolveMax atomic.Int64 // sender lookups that went to /proc
}

func (s *Stats) observeResolve(d time.Duration) {
	s.resolveN.Add(1)
	s.resolveNanos.Add(int64(d))
	for {
		m := s.resolveMax.Load()
		if int64(d) <= m || s.resolveMax.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

const (
	lateBucket  = 50 * time.Microsecond
	lateBuckets = 2000 // up to 100 ms; the last bucket holds the rest
)

func (s *Stats) observeLate(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / lateBucket)
	if i > lateBuckets {
		i = lateBuckets
	}
	s.late[i].Add(1)
}

// Lateness returns the q-quantile (0..1) of delivery lateness, at 50 µs
// resolution (100 ms means "100 ms or more"), and the number of samples.
func (s *Stats) Lateness(q float64) (time.Duration, int64) {
	var n int64
	for i := range s.late {
		n += s.late[i].Load()
	}
	if n == 0 {
		return 0, 0
	}
	rank := int64(q*float64(n-1)) + 1
	var seen int64
	for i := range s.late {
		seen += s.late[i].Load()
		if seen >= rank {
			return time.Duration(i) * lateBucket, n
		}
	}
	return lateBuckets * lateBucket, n
}

// Snapshot is Stats as plain numbers, for JSON.
type Snapshot struct {
	TCPConns    int64   `json:"tcp_conns"`
	UDPSessions int64   `json:"udp_sessions"`
	Unresolved  int64   `json:"unresolved"`
	Chunks      int64   `json:"tcp_chunks"`
	Datagrams   int64   `json:"udp_datagrams"`
	Dropped     int64   `json:"udp_dropped"`
	Bytes       int64   `json:"bytes"`
	LateP50Ms   float64 `json:"late_p50_ms"`
	LateP99Ms   float64 `json:"late_p99_ms"`
	LateMaxMs   float64 `json:"late_max_ms"`
	Lookups     int64   `json:"proc_lookups"` // senders identified through /proc
	LookupAvgMs float64 `json:"proc_lookup_avg_ms"`
	LookupMaxMs float64 `json:"proc_lookup_max_ms"`
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() Snapshot {
	ms := func(q float64) float64 { d, _ := s.Lateness(q); return float64(d) / float64(time.Millisecond) }
	snap := Snapshot{
		TCPConns: s.TCPConns.Load(), UDPSessions: s.UDPSessions.Load(), Unresolved: s.Unresolved.Load(),
		Chunks: s.Chunks.Load(), Datagrams: s.Datagrams.Load(), Dropped: s.Dropped.Load(), Bytes: s.Bytes.Load(),
		LateP50Ms: ms(0.5), LateP99Ms: ms(0.99), LateMaxMs: ms(1),
		Lookups: s.resolveN.Load(), LookupMaxMs: float64(s.resolveMax.Load()) / 1e6,
	}
	if n := s.resolveN.Load(); n > 0 {
		snap.LookupAvgMs = float64(s.resolveNanos.Load()) / float64(n) / 1e6
	}
	return snap
}

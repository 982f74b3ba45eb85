package gossip

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/testutil"
	"github.com/patinadb/patina/mock"
	"github.com/patinadb/patina/netsim"
)

// RetryUntil waits on a condition (see testutil.RetryUntil).
var RetryUntil = testutil.RetryUntil

// MustNetwork returns a lossless simulated network closed at the end of the
// test.
func MustNetwork(tb testing.TB) *netsim.Network {
	tb.Helper()
	n := netsim.New(netsim.Config{Seed: 1})
	tb.Cleanup(func() { n.Close() })
	return n
}

// MustHost adds a host to n.
func MustHost(tb testing.TB, n *netsim.Network, addr, region string) *netsim.Host {
	tb.Helper()
	h, err := n.AddHost(addr, region)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// recorder is a ChangesetHandler that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	got  []received
	wake chan struct{}
}

type received struct {
	from patina.ActorID
	cs   patina.Changeset
	ttl  int
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) HandleChangesets(from patina.ActorID, css []patina.Changeset, ttl int) {
	r.mu.Lock()
	for _, cs := range css {
		r.got = append(r.got, received{from, cs, ttl})
	}
	r.mu.Unlock()
}

func (r *recorder) has(actor patina.ActorID, v patina.Version) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.got {
		if g.cs.Actor == actor && g.cs.Version == v {
			return true
		}
	}
	return false
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// emptySyncServer serves an empty state.
func emptySyncServer() *mock.SyncServer {
	return &mock.SyncServer{
		SyncStateFunc: func() patina.SyncState { return patina.SyncState{} },
		ChangesForFunc: func(context.Context, patina.ActorID, patina.Range, int, func(patina.Changeset) error) error {
			return nil
		},
		PartialChangesForFunc: func(context.Context, patina.ActorID, patina.Version, []patina.Range, int, func(patina.Changeset) error) error {
			return nil
		},
	}
}

// fastMemberlist is memberlist tuned for a test network in one region.
func fastMemberlist() *memberlist.Config {
	cfg := DefaultMemberlistConfig()
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = 50 * time.Millisecond
	cfg.GossipInterval = 20 * time.Millisecond
	cfg.PushPullInterval = time.Second
	return cfg
}

// testNode is a node on host h; tune may adjust it before Open.
func testNode(h *netsim.Host, id byte, cluster uint16, tune func(*Node)) *Node {
	n := &Node{Actor: patina.ActorID{id}, Region: h.Region(), ClusterID: cluster, Network: h,
		Handler: newRecorder(), SyncServer: emptySyncServer(), Memberlist: fastMemberlist()}
	if tune != nil {
		tune(n)
	}
	return n
}

// MustOpen opens n and closes it at the end of the test.
func MustOpen(tb testing.TB, n *Node) *Node {
	tb.Helper()
	if err := n.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// sees reports whether n sees the given actors alive.
func sees(n *Node, actors ...patina.ActorID) bool {
	alive := map[patina.ActorID]bool{}
	for _, m := range n.Members() {
		if m.State == patina.MemberAlive {
			alive[m.Actor] = true
		}
	}
	for _, a := range actors {
		if !alive[a] {
			return false
		}
	}
	return true
}

// goroutines counts live goroutines whose stack mentions fn.
func goroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

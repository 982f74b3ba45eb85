package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/testutil"
	"github.com/patinadb/patina/mock"
)

// RetryUntil waits on a condition (see testutil.RetryUntil).
var RetryUntil = testutil.RetryUntil

// syncBuffer is a log sink safe for the apply loop and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fake wires an agent to mocks that record what it does.
type fake struct {
	self    patina.ActorID
	store   *mock.Store
	bc      *mock.Broadcaster
	log     *syncBuffer
	state   patina.SyncState
	members []patina.Member

	mu        sync.Mutex
	applied   []patina.Changeset
	forwarded []forwarded
	broadcast []patina.Changeset
	outcome   func(patina.Changeset) (patina.ApplyOutcome, error)
}

type forwarded struct {
	cs   patina.Changeset
	from patina.ActorID
	ttl  int
}

func newFake() *fake {
	f := &fake{self: actor(0xAA), log: &syncBuffer{}}
	f.outcome = func(patina.Changeset) (patina.ApplyOutcome, error) { return patina.ApplyNew, nil }
	f.store = &mock.Store{
		ActorFunc: func() patina.ActorID { return f.self },
		TransactFunc: func(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error) {
			if len(stmts) == 0 {
				return &patina.TxResult{}, nil // nothing adopted at open
			}
			return &patina.TxResult{Results: make([]patina.StatementResult, len(stmts)),
				Changeset: &patina.Changeset{Actor: f.self, Version: 1, Changes: []patina.Change{{Table: "t", Column: "c", Seq: 0}}}}, nil
		},
		ApplyFunc: func(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var res patina.ApplyResult
			for _, cs := range css {
				out, err := f.outcome(cs)
				res.Outcomes = append(res.Outcomes, out)
				res.Errors = append(res.Errors, err)
				f.applied = append(f.applied, cs)
			}
			return res, nil
		},
		SyncStateFunc: func() patina.SyncState { return f.state },
	}
	f.bc = &mock.Broadcaster{
		BroadcastFunc: func(cs patina.Changeset) {
			f.mu.Lock()
			f.broadcast = append(f.broadcast, cs)
			f.mu.Unlock()
		},
		ForwardFunc: func(cs patina.Changeset, from patina.ActorID, ttl int) {
			f.mu.Lock()
			f.forwarded = append(f.forwarded, forwarded{cs, from, ttl})
			f.mu.Unlock()
		},
	}
	return f
}

func (f *fake) agent() *Agent {
	a := New(f.store)
	a.Broadcaster = f.bc
	a.Membership = &mock.Membership{
		LocalFunc:   func() patina.Member { return patina.Member{Actor: f.self, Region: "iad", ClusterID: 3} },
		MembersFunc: func() []patina.Member { return f.members },
	}
	a.Peers = &mock.PeerClient{}
	a.Region, a.ClusterID = "iad", 3
	a.DisableSync = true
	a.Logger = slog.New(slog.NewTextHandler(f.log, nil))
	return a
}

// MustOpen opens a and closes it at the end of the test.
func MustOpen(tb testing.TB, a *Agent) *Agent {
	tb.Helper()
	if err := a.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

func (f *fake) appliedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

func cs(origin byte, v patina.Version) patina.Changeset {
	return patina.Changeset{Actor: actor(origin), Version: v, LastSeq: 0,
		Changes: []patina.Change{{Table: "machines", PK: []byte{1}, Column: "state", Value: patina.Text("x")}}}
}

func TestAgent_ForwardsOnReceiptOnlyNewValidWithTTL(t *testing.T) {
	f := newFake()
	a := MustOpen(t, f.agent())
	// Forwarding is synchronous in HandleChangesets: checked right after it
	// returns, whatever the apply loop is doing.
	valid := func(origin byte, v patina.Version) patina.Changeset {
		c := cs(origin, v)
		c.Changes[0].CL = 1
		return c
	}
	bad := valid(1, 3)
	bad.Changes[0].Value = patina.Real(math.NaN())
	a.HandleChangesets(actor(9), []patina.Changeset{valid(1, 1), valid(1, 2), bad}, 2)
	a.HandleChangesets(actor(8), []patina.Changeset{valid(1, 1)}, 2) // duplicate of a recent one
	a.HandleChangesets(actor(9), []patina.Changeset{valid(2, 1)}, 0) // hop budget spent
	f.mu.Lock()
	var got []string
	for _, fw := range f.forwarded {
		got = append(got, fmt.Sprintf("%x/v%d from %x ttl %d", fw.cs.Actor[0], fw.cs.Version, fw.from[0], fw.ttl))
	}
	f.mu.Unlock()
	want := []string{"1/v1 from 9 ttl 2", "1/v2 from 9 ttl 2"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("forwarded %q, want the new valid items with ttl left, at once: %q", got, want)
	}
}

func TestAgent_ApplyBatchDoesNotForward(t *testing.T) {
	f := newFake()
	f.outcome = func(c patina.Changeset) (patina.ApplyOutcome, error) { return patina.ApplyNew, nil }
	a := MustOpen(t, f.agent())
	a.applyBatch([]inbound{{cs: cs(1, 1), from: actor(9), ttl: 2}, {cs: cs(3, 1), from: actor(9), sync: true, ttl: 2}})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forwarded) != 0 {
		t.Fatalf("apply forwarded %d items; forwarding happens on receipt", len(f.forwarded))
	}
}

func TestAgent_RejectedIsLoggedAndLoopContinues(t *testing.T) {
	f := newFake()
	f.outcome = func(c patina.Changeset) (patina.ApplyOutcome, error) {
		if c.Version == 13 {
			return patina.ApplyRejected, fmt.Errorf("apply machines: value for column state is not TEXT")
		}
		return patina.ApplyNew, nil
	}
	a := MustOpen(t, f.agent())
	a.HandleChangesets(actor(9), []patina.Changeset{cs(1, 13)}, 1)
	RetryUntil(t, 5*time.Second, "poison applied", func() bool { return f.appliedCount() == 1 })
	a.HandleChangesets(actor(9), []patina.Changeset{cs(1, 14), cs(2, 1)}, 1)
	RetryUntil(t, 5*time.Second, "later changesets applied", func() bool { return f.appliedCount() == 3 })

	log := f.log.String()
	for _, want := range []string{"rejected changeset", "origin=" + actor(1).String(), "version=13", "table=machines", "not TEXT"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if st := a.Status(context.Background()); st.Quarantined != 1 {
		t.Errorf("Status().Quarantined = %d, want 1", st.Quarantined)
	}
	t.Run("store breaking its contract does not kill the loop", func(t *testing.T) {
		f.store.ApplyFunc = func(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.applied = append(f.applied, css...)
			// Rejected without an error, and one outcome short.
			return patina.ApplyResult{Outcomes: []patina.ApplyOutcome{patina.ApplyRejected}}, nil
		}
		a.HandleChangesets(actor(9), []patina.Changeset{cs(4, 1)}, 1)
		RetryUntil(t, 5*time.Second, "contract-breaking apply", func() bool { return f.appliedCount() == 4 })
		a.HandleChangesets(actor(9), []patina.Changeset{cs(4, 2), cs(5, 1)}, 1)
		RetryUntil(t, 5*time.Second, "loop still applying", func() bool { return f.appliedCount() == 6 })
	})
	t.Run("apply error forgets the batch", func(t *testing.T) {
		calls := 0
		f.store.ApplyFunc = func(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			calls++
			f.applied = append(f.applied, css...)
			if calls == 1 {
				return patina.ApplyResult{}, errors.New("disk full")
			}
			return patina.ApplyResult{Outcomes: make([]patina.ApplyOutcome, len(css)), Errors: make([]error, len(css))}, nil
		}
		n := f.appliedCount()
		a.HandleChangesets(actor(9), []patina.Changeset{cs(6, 1)}, 1)
		RetryUntil(t, 5*time.Second, "failed apply", func() bool { return f.appliedCount() == n+1 })
		a.HandleChangesets(actor(9), []patina.Changeset{cs(6, 1)}, 1) // the same again: not a duplicate now
		RetryUntil(t, 5*time.Second, "retried apply", func() bool { return f.appliedCount() == n+2 })
		if !strings.Contains(f.log.String(), "disk full") {
			t.Fatalf("apply error not logged:\n%s", f.log.String())
		}
	})
}

func TestAgent_Status(t *testing.T) {
	f := newFake()
	peer := patina.Member{Actor: actor(2), Name: "peer", Region: "fra", ClusterID: 3, State: patina.MemberAlive}
	f.members = []patina.Member{peer}
	f.state = patina.SyncState{
		Heads: map[patina.ActorID]patina.Version{actor(2): 10, actor(3): 4},
		Gaps:  map[patina.ActorID][]patina.Range{actor(2): {{Start: 2, End: 4}, {Start: 7, End: 7}}},
		Partials: map[patina.ActorID]map[patina.Version]patina.Partial{
			actor(3): {4: {LastSeq: 9}, 3: {LastSeq: 2}},
		},
	}
	a := f.agent()
	a.ApplyQueueLen = 7
	a.ExtraQueues = func() map[string]patina.QueueStatus {
		return map[string]patina.QueueStatus{"broadcast": {Len: 1, Cap: 2, Dropped: 3}}
	}
	now := time.Unix(1_700_000_000, 0)
	a.Now = func() time.Time { return now }
	MustOpen(t, a)
	st := a.Status(context.Background())
	if st.Actor != f.self || st.Region != "iad" || st.ClusterID != 3 {
		t.Errorf("identity = %v %q %d", st.Actor, st.Region, st.ClusterID)
	}
	if len(st.Members) != 2 || st.Members[0].Actor != f.self || st.Members[1] != peer {
		t.Errorf("Members = %+v, want local then peer", st.Members)
	}
	if st.Heads[actor(2)] != 10 || st.Heads[actor(3)] != 4 {
		t.Errorf("Heads = %v", st.Heads)
	}
	if st.GapVersions != 4 {
		t.Errorf("GapVersions = %d, want 4", st.GapVersions)
	}
	if st.Partials != 2 {
		t.Errorf("Partials = %d, want 2", st.Partials)
	}
	if q := st.Queues["apply"]; q.Cap != 7 || q.Len != 0 {
		t.Errorf("apply queue = %+v, want cap 7", q)
	}
	if q := st.Queues["broadcast"]; q.Dropped != 3 {
		t.Errorf("broadcast queue = %+v, want the extra queue reported", q)
	}
	if st.LagP99Seconds != 0 {
		t.Errorf("LagP99Seconds = %v with no remote change applied", st.LagP99Seconds)
	}
}

func TestAgent_StatusDeferred(t *testing.T) {
	f := newFake()
	a := f.agent()
	a.Store = deferringStore{f.store}
	MustOpen(t, a)
	if st := a.Status(context.Background()); st.Deferred != 5 {
		t.Fatalf("Deferred = %d, want what the store reports", st.Deferred)
	}
}

type deferringStore struct{ *mock.Store }

func (deferringStore) DeferredChanges() int { return 5 }

func TestAgent_Transact(t *testing.T) {
	t.Run("zero statements refused", func(t *testing.T) {
		f := newFake()
		a := MustOpen(t, f.agent())
		f.store.TransactFunc = func(context.Context, []patina.Statement) (*patina.TxResult, error) {
			t.Fatal("store called for an empty transaction")
			return nil, nil
		}
		_, err := a.Transact(context.Background(), nil)
		if patina.ErrorCode(err) != patina.EINVALID {
			t.Fatalf("err = %v (code %q), want %q", err, patina.ErrorCode(err), patina.EINVALID)
		}
		if msg := patina.ErrorMessage(err); !strings.Contains(msg, "no statements") || !strings.Contains(msg, "at least one") {
			t.Fatalf("error %q does not say what is wrong and what to send", msg)
		}
	})
	t.Run("commit is broadcast", func(t *testing.T) {
		f := newFake()
		a := MustOpen(t, f.agent())
		var applied []patina.Changeset
		a.OnApplied = func(css []patina.Changeset) { applied = append(applied, css...) }
		res, err := a.Transact(context.Background(), []patina.Statement{{SQL: "INSERT INTO t VALUES (1)"}})
		if err != nil || res.Changeset == nil {
			t.Fatalf("Transact = %v, %v", res, err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.broadcast) != 1 || f.broadcast[0].Version != 1 || len(applied) != 1 {
			t.Fatalf("broadcast %v, OnApplied %v; want the changeset once each", f.broadcast, applied)
		}
	})
}

func TestAgent_HandleChangesetsNeverBlocks(t *testing.T) {
	f := newFake()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	f.store.ApplyFunc = func(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release // a stuck store (INCIDENTS.md #6)
		return patina.ApplyResult{Outcomes: make([]patina.ApplyOutcome, len(css)), Errors: make([]error, len(css))}, nil
	}
	a := f.agent()
	a.ApplyQueueLen = 4
	a.ApplyBatch = 1
	MustOpen(t, a)
	defer close(release)
	a.HandleChangesets(actor(9), []patina.Changeset{cs(1, 1)}, 1)
	<-entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := patina.Version(2); v < 10_000; v++ {
			a.HandleChangesets(actor(9), []patina.Changeset{cs(byte(v%3)+1, v)}, 1)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("HandleChangesets blocked behind a stuck apply loop")
	}
	st := a.Status(context.Background())
	if q := st.Queues["apply"]; q.Len > 4 || q.Dropped == 0 {
		t.Fatalf("apply queue %+v: want at most 4 queued and drops counted", q)
	}
}

func TestAgent_HandleChangesetsBeforeOpen(t *testing.T) {
	// The gossip node opens first and may deliver before the agent is open.
	f := newFake()
	a := f.agent()
	a.HandleChangesets(actor(9), []patina.Changeset{cs(1, 1)}, 1)
	_ = a.Status(context.Background())
	MustOpen(t, a)
	RetryUntil(t, 5*time.Second, "early changeset applied after open", func() bool { return f.appliedCount() == 1 })
}

func TestAgent_HandleChangesetsSkipsOwn(t *testing.T) {
	f := newFake()
	a := MustOpen(t, f.agent())
	a.HandleChangesets(actor(9), []patina.Changeset{{Actor: f.self, Version: 1}, cs(1, 1)}, 1)
	RetryUntil(t, 5*time.Second, "foreign changeset applied", func() bool { return f.appliedCount() == 1 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied[0].Actor == f.self {
		t.Fatal("own changeset echoed back was applied")
	}
}

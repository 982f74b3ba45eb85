// Package agent is patina's hub: the lifecycle of a node, the write path,
// the apply loop and the anti-entropy driver, as straight-line code over the
// root interfaces. It imports no adapter: cmd/patina and
// internal/testcluster wire the store, the gossip node and the HTTP server.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/antientropy"
)

// Defaults for Agent's exported fields.
const (
	DefaultApplyQueueLen   = 20000
	DefaultApplyBatch      = 500
	DefaultSyncPeers       = 3
	DefaultSyncMaxVersions = 10
	DefaultSyncTimeout     = 30 * time.Second
	DefaultChunkBytes      = 64 << 10
)

var _ patina.ChangesetHandler = (*Agent)(nil)

// Agent runs one node.
type Agent struct {
	Store       patina.Store
	Membership  patina.Membership
	Broadcaster patina.Broadcaster
	Peers       patina.PeerClient
	Region      string
	ClusterID   uint16
	Logger      *slog.Logger
	Now         func() time.Time

	// ApplyQueueLen bounds changesets waiting to be applied. Default 20000.
	ApplyQueueLen int
	// ApplyBatch is the most changesets applied in one transaction.
	// Default 500.
	ApplyBatch int
	// SyncPeers is how many peers each sync round talks to. Default 3.
	SyncPeers int
	// SyncBackoff bounds the delay between sync rounds; zero values mean
	// antientropy's defaults (200 ms .. 5 s).
	SyncMinBackoff, SyncMaxBackoff time.Duration
	// DisableSync turns anti-entropy off (tests of broadcast alone).
	DisableSync bool
	// ChunkBytes is the broadcast chunk budget. Default 64 KiB.
	ChunkBytes int
	// ExtraQueues reports other components' queues for Status.
	ExtraQueues func() map[string]patina.QueueStatus
	// OnApplied, if set, is called after each apply batch commits with the
	// changesets that were new (subscriptions, metrics).
	OnApplied func([]patina.Changeset)

	// q and lag are made on first use: the gossip node may deliver
	// changesets, and an operator may ask for Status, before Open.
	initOnce sync.Once
	q        *applyQueue
	lag      *lagWindow
	// quarantined counts changesets the store rejected (Status).
	quarantined atomic.Int64
	lastSync    map[patina.ActorID]time.Time
	// seenHeads: per origin actor, recent head observations from any peer.
	seenHeads map[patina.ActorID][]headSeen
	ctx       context.Context
	cancel    context.CancelCauseFunc
	wg        sync.WaitGroup
	syncNow   chan struct{}
	progress  progress
	// inflight counts changesets taken by the apply loop, not yet applied.
	inflight atomic.Int64
}

// New returns an agent with default settings.
func New(store patina.Store) *Agent {
	return &Agent{Store: store, Now: time.Now, ApplyQueueLen: DefaultApplyQueueLen, ApplyBatch: DefaultApplyBatch,
		SyncPeers: DefaultSyncPeers, ChunkBytes: DefaultChunkBytes}
}

// Open starts the apply loop and the sync loop.
func (a *Agent) Open(ctx context.Context) error {
	if a.Store == nil || a.Membership == nil || a.Broadcaster == nil || a.Peers == nil {
		return errors.New("open agent: Store, Membership, Broadcaster and Peers are required")
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.ApplyQueueLen <= 0 {
		a.ApplyQueueLen = DefaultApplyQueueLen
	}
	if a.ApplyBatch <= 0 {
		a.ApplyBatch = DefaultApplyBatch
	}
	if a.SyncPeers <= 0 {
		a.SyncPeers = DefaultSyncPeers
	}
	if a.ChunkBytes <= 0 {
		a.ChunkBytes = DefaultChunkBytes
	}
	a.init()
	a.lastSync = map[patina.ActorID]time.Time{}
	a.syncNow = make(chan struct{}, 1)
	a.ctx, a.cancel = context.WithCancelCause(context.Background())
	// Writes made to the file while the agent was down were captured by
	// the triggers; turn them into a version now so peers get them.
	if res, err := a.Store.Transact(ctx, nil); err != nil {
		return fmt.Errorf("open agent: adopt writes made while the agent was down: %w", err)
	} else if res.Changeset != nil {
		a.Logger.Warn("adopted writes made to the database file while the agent was down", "version", res.Changeset.Version, "changes", len(res.Changeset.Changes))
		a.broadcast(*res.Changeset)
	}
	a.wg.Add(1)
	go a.applyLoop()
	if !a.DisableSync {
		a.wg.Add(1)
		go a.syncLoop()
	}
	return nil
}

// init makes the apply queue and the lag window once.
func (a *Agent) init() {
	a.initOnce.Do(func() {
		n := a.ApplyQueueLen
		if n <= 0 {
			n = DefaultApplyQueueLen
		}
		a.q = newApplyQueue(n)
		a.lag = newLagWindow(2 * time.Minute)
	})
}

// Close stops the loops; it does not close the store.
func (a *Agent) Close() error {
	if a.cancel == nil {
		return nil
	}
	a.cancel(errors.New("agent closed"))
	a.wg.Wait()
	return nil
}

// Actor returns the node's actor id.
func (a *Agent) Actor() patina.ActorID { return a.Store.Actor() }

// Transact commits statements locally and pushes the changeset at once.
func (a *Agent) Transact(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error) {
	if len(stmts) == 0 {
		return nil, patina.Errorf(patina.EINVALID, "transaction has no statements; send at least one SQL statement")
	}
	res, err := a.Store.Transact(ctx, stmts)
	if err != nil {
		return nil, err
	}
	if res.Changeset != nil {
		a.broadcast(*res.Changeset)
		if a.OnApplied != nil {
			a.OnApplied([]patina.Changeset{*res.Changeset})
		}
	}
	return res, nil
}

func (a *Agent) broadcast(cs patina.Changeset) {
	for _, c := range cs.Chunks(a.ChunkBytes, changeSize) {
		a.Broadcaster.Broadcast(c)
	}
}

func changeSize(c *patina.Change) int {
	return len(c.Table) + len(c.PK) + len(c.Column) + len(c.Value.Bytes) + 24
}

// Query runs a read-only statement on the local copy.
func (a *Agent) Query(ctx context.Context, st patina.Statement) (patina.Rows, error) {
	return a.Store.Query(ctx, st)
}

// HandleChangesets enqueues changesets from a peer; it never blocks.
//
// What is new here (not seen recently) and passes Changeset.Validate is
// forwarded at once, before it is applied: a relay's apply (waiting for a
// batch, for the write lock held by a sync batch, for the disk) stays off
// the latency path of every node behind it. Validation first, so a
// malformed changeset stops at the first node (INCIDENTS.md #5).
func (a *Agent) HandleChangesets(from patina.ActorID, css []patina.Changeset, ttl int) {
	a.init()
	self := a.Store.Actor()
	for _, cs := range css {
		if cs.Actor == self {
			continue
		}
		if a.q.push(inbound{cs: cs, from: from, ttl: ttl}) && ttl > 0 && cs.Validate() == nil {
			a.Broadcaster.Forward(cs, from, ttl)
		}
	}
}

// Status reports the node's state.
func (a *Agent) Status(ctx context.Context) patina.NodeStatus {
	a.init()
	st := a.Store.SyncState()
	local := a.Membership.Local()
	ns := patina.NodeStatus{
		Actor: a.Store.Actor(), Region: local.Region, ClusterID: local.ClusterID,
		Members: append([]patina.Member{local}, a.Membership.Members()...),
		Heads:   st.Heads, GapVersions: 0,
		Queues: map[string]patina.QueueStatus{
			"apply": a.q.status(),
			// The batch being applied: a stuck apply shows as a backlog here.
			"applying": {Len: int(a.inflight.Load()), Cap: a.ApplyBatch},
		},
		LagP99Seconds: a.lag.p99(a.now()).Seconds(),
		Quarantined:   int(a.quarantined.Load()),
	}
	for _, rs := range st.Gaps {
		for _, r := range rs {
			ns.GapVersions += r.Len()
		}
	}
	for _, ps := range st.Partials {
		ns.Partials += len(ps)
	}
	if d, ok := a.Store.(interface{ DeferredChanges() int }); ok {
		ns.Deferred = d.DeferredChanges()
	}
	if q, ok := a.Store.(interface {
		Quarantined(context.Context) (int, error)
	}); ok {
		ns.Quarantined, _ = q.Quarantined(ctx)
	}
	if a.ExtraQueues != nil {
		for k, v := range a.ExtraQueues() {
			ns.Queues[k] = v
		}
	}
	return ns
}

// Progress reports when the apply loop last made progress (watchdog).
func (a *Agent) Progress() time.Time { return a.progress.get() }

type progress struct {
	mu sync.Mutex
	t  time.Time
}

func (p *progress) set(t time.Time) { p.mu.Lock(); p.t = t; p.mu.Unlock() }
func (p *progress) get() time.Time  { p.mu.Lock(); defer p.mu.Unlock(); return p.t }

// lagWindow keeps recent commit-to-apply lags for a p99.
type lagWindow struct {
	mu      sync.Mutex
	span    time.Duration
	samples []lagSample
}

type lagSample struct {
	at  time.Time
	lag time.Duration
}

func newLagWindow(span time.Duration) *lagWindow { return &lagWindow{span: span} }

func (w *lagWindow) add(at time.Time, lag time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples = append(w.samples, lagSample{at, lag})
	if len(w.samples) > 10000 {
		w.samples = w.samples[len(w.samples)-5000:]
	}
}

func (w *lagWindow) p99(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lags []time.Duration
	for _, s := range w.samples {
		if now.Sub(s.at) <= w.span {
			lags = append(lags, s.lag)
		}
	}
	if len(lags) == 0 {
		return 0
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return lags[(len(lags)-1)*99/100]
}

// now is a.Now, or time.Now before Open filled it in.
func (a *Agent) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

var _ antientropy.Rand = (*rand.Rand)(nil)

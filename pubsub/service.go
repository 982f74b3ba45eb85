package pubsub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/patinadb/patina"
)

// Defaults for Service's exported fields.
const (
	DefaultMaxChanges       = 10_000
	DefaultMaxAge           = time.Hour
	DefaultIdleTimeout      = 10 * time.Minute
	DefaultEvalTimeout      = 10 * time.Second
	DefaultListenerBuffer   = 10_240
	DefaultMaxSubscriptions = 50_000
	DefaultMaxListeners     = 100_000
	DefaultMaxDirtyKeys     = 10_000
	// LogFile is the change log's file name inside Dir.
	LogFile = "subs.db"
)

// Log keys.
const (
	logKeySub = "sub"
	logKeyErr = "err"
	logKeySQL = "sql"
)

var _ patina.SubscriptionService = (*Service)(nil)

// Service maintains subscriptions over a replicated database file and
// streams their changes; see the package documentation.
type Service struct {
	// DBPath is the replicated SQLite file, read through the service's own
	// connections. Required.
	DBPath string
	// Dir holds the change log (LogFile). Default: a "subscriptions"
	// directory beside DBPath.
	Dir string
	// MaxChanges is how many of each subscription's latest changes are kept
	// for resumes. Default DefaultMaxChanges (10,000); must be positive.
	MaxChanges int
	// MaxAge is how long a change is kept for resumes. Default
	// DefaultMaxAge (1 h). A resume from a change no longer kept fails with
	// code EGONE ("resubscribe"), never with a silent gap.
	MaxAge time.Duration
	// IdleTimeout is how long a subscription without clients lives on for
	// resumes. Default DefaultIdleTimeout (10 min).
	IdleTimeout time.Duration
	// EvalTimeout bounds each evaluation of a subscription's query (the
	// first run and every re-evaluation); a query that exceeds it is
	// refused at subscribe time or fails the subscription later. Default
	// DefaultEvalTimeout (10 s).
	EvalTimeout time.Duration
	// ListenerBuffer is how many events a client may fall behind before it
	// is cut off with a resumable error. Default DefaultListenerBuffer.
	ListenerBuffer int
	// MaxSubscriptions bounds distinct subscriptions; MaxListeners bounds
	// client streams (subscriptions and update streams). Defaults
	// DefaultMaxSubscriptions and DefaultMaxListeners.
	MaxSubscriptions, MaxListeners int
	// MaxDirtyKeys is how many changed keys of one table are tracked
	// between passes; beyond it the table's subscriptions are re-run in
	// full. Default DefaultMaxDirtyKeys.
	MaxDirtyKeys int
	// Logger receives failures. nil discards.
	Logger *slog.Logger
	// Now reads the clock. Default time.Now.
	Now func() time.Time

	log  *logDB
	an   *analyzer  // on the init connection, under initMu
	init *evaluator // the init connection, under initMu
	ev   *evaluator // the loop's connection
	// initMu serialises analysis and first runs.
	initMu sync.Mutex

	mu         sync.Mutex
	byKey      map[string]*sub
	byID       map[string]*sub
	idx        map[string]*tableIndex // lower table -> subscriptions reading it
	nlisteners int
	tmu        sync.Mutex
	temps      map[string]string // lower table -> temp key table

	watched atomic.Pointer[map[string]bool] // tables some subscription reads
	cutoffs atomic.Uint64                   // clients cut off for falling behind

	dmu       sync.Mutex
	dirty     map[string]*dirtyTable
	dirtySubs map[*sub]bool
	dirtyAll  bool
	wake      chan struct{}

	upd *updates

	// The current pass's cancel and the start of its current evaluation
	// (unix ns, 0 between evaluations), for the watchdog.
	passCancel atomic.Pointer[context.CancelCauseFunc]
	evalStart  atomic.Int64

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// tableIndex finds the subscriptions a change to one table may affect.
type tableIndex struct {
	full      map[*sub]struct{}                       // re-run in full when the table changes
	unindexed map[*sub]struct{}                       // stratPK with no condition to check in Go
	filtered  map[*sub]struct{}                       // stratPK with comparisons but no equality
	eq        map[string]map[string]map[*sub]struct{} // column -> value key -> stratPK subs
	rev       map[string]map[*sub]struct{}            // row key -> stratPK subs holding that row
	cols      map[string]int                          // columns the index reads of changed rows (refcount)
	keys      int                                     // key columns
}

// indexCols are the columns the candidate index reads for a subscription.
func indexCols(p *plan) []string {
	if p.eq != nil {
		return []string{p.eq.col}
	}
	var out []string
	for _, c := range p.conds {
		out = append(out, c.col)
	}
	return out
}

// dirtyTable is what changed in one table since the last pass.
type dirtyTable struct {
	all  bool
	keys map[string]*dirtyKey // packed pk -> changed columns
}

type dirtyKey struct {
	cols     []string
	sentinel bool
}

// New returns a service for the database file at dbPath with default
// settings; Open starts it.
func New(dbPath string) *Service {
	return &Service{
		DBPath: dbPath, MaxChanges: DefaultMaxChanges, MaxAge: DefaultMaxAge, IdleTimeout: DefaultIdleTimeout,
		EvalTimeout: DefaultEvalTimeout, ListenerBuffer: DefaultListenerBuffer, MaxSubscriptions: DefaultMaxSubscriptions,
		MaxListeners: DefaultMaxListeners, MaxDirtyKeys: DefaultMaxDirtyKeys, Now: time.Now,
	}
}

// Open opens the change log, restores the subscriptions it holds (each is
// re-run once, so changes made while the agent was down are streamed as
// changes) and starts the evaluation loop.
func (s *Service) Open() error {
	if s.DBPath == "" {
		return errors.New("open subscriptions: DBPath is required")
	}
	if s.Dir == "" {
		s.Dir = filepath.Join(filepath.Dir(s.DBPath), "subscriptions")
	}
	if s.MaxChanges <= 0 {
		s.MaxChanges = DefaultMaxChanges
	}
	if s.MaxAge <= 0 {
		s.MaxAge = DefaultMaxAge
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.EvalTimeout <= 0 {
		s.EvalTimeout = DefaultEvalTimeout
	}
	if s.ListenerBuffer <= 0 {
		s.ListenerBuffer = DefaultListenerBuffer
	}
	if s.MaxSubscriptions <= 0 {
		s.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if s.MaxListeners <= 0 {
		s.MaxListeners = DefaultMaxListeners
	}
	if s.MaxDirtyKeys <= 0 {
		s.MaxDirtyKeys = DefaultMaxDirtyKeys
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("open subscriptions: create %s: %w", s.Dir, err)
	}
	var err error
	if s.log, err = openLog(filepath.Join(s.Dir, LogFile)); err != nil {
		return fmt.Errorf("open subscriptions change log in %s: %w", s.Dir, err)
	}
	initConn, err := openConn(s.DBPath)
	if err != nil {
		s.log.close()
		return fmt.Errorf("open subscriptions: connect to %s: %w", s.DBPath, err)
	}
	evConn, err := openConn(s.DBPath)
	if err != nil {
		initConn.Close()
		s.log.close()
		return fmt.Errorf("open subscriptions: connect to %s: %w", s.DBPath, err)
	}
	s.an = &analyzer{conn: initConn, tempName: s.tempName}
	s.init = newEvaluator(initConn)
	s.ev = newEvaluator(evConn)
	s.byKey, s.byID, s.idx, s.temps = map[string]*sub{}, map[string]*sub{}, map[string]*tableIndex{}, map[string]string{}
	s.dirty, s.dirtySubs, s.wake = map[string]*dirtyTable{}, map[*sub]bool{}, make(chan struct{}, 1)
	s.upd = newUpdates(s)
	s.refreshWatched()
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	if err := s.restore(); err != nil {
		s.closeConns()
		return fmt.Errorf("open subscriptions: restore from %s: %w", s.Dir, err)
	}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.loop() }()
	go func() { defer s.wg.Done(); s.watchdog() }()
	go func() { defer s.wg.Done(); s.upd.loop(s.ctx) }()
	return nil
}

func (s *Service) closeConns() {
	s.ev.close()
	s.init.close()
	s.log.close()
}

// Close stops the loop and ends every stream with a resumable error; the
// change log keeps the subscriptions for the next start.
func (s *Service) Close() error {
	if s.cancel == nil || s.closed.Swap(true) {
		return nil
	}
	s.cancel(errors.New("subscriptions closed"))
	s.wg.Wait()
	s.mu.Lock()
	for _, sb := range s.byID {
		sb.mu.Lock()
		for l := range sb.listeners {
			l.end(patina.Errorf(patina.EUNAVAILABLE, "the agent is shutting down; resume with GET /v1/subscriptions/%s?from=%d once it is back", sb.id, sb.lastChange))
		}
		sb.mu.Unlock()
	}
	s.mu.Unlock()
	s.upd.closeAll(patina.Errorf(patina.EUNAVAILABLE, "the agent is shutting down; reconnect once it is back"))
	s.initMu.Lock()
	defer s.initMu.Unlock()
	s.closeConns()
	return nil
}

// sub is one subscription: a query, its materialized result and its
// clients.
type sub struct {
	svc     *Service
	n       int64 // number in the change log
	id      string
	hash    string
	key     string
	stmt    patina.Statement
	plan    *plan
	created time.Time
	ready   chan struct{} // closed once the first run is done (or failed)
	initErr error

	// The evaluation loop is the only writer of the fields below; it holds
	// mu while writing, readers outside the loop hold mu.
	mu         sync.Mutex
	rows       map[string][]*row // identity key -> rows (several only when keyed by content)
	nrows      int
	lastRowID  int64
	lastChange uint64
	oldest     uint64 // oldest change kept in the log; lastChange+1 if none
	listeners  map[*listener]struct{}
	idleSince  time.Time
	gone       error // set when the subscription was removed

	evals     atomic.Uint64
	evalNanos atomic.Int64
}

// row is one row of a subscription's result.
type row struct {
	id    int64
	key   string
	cells string
}

// statementKey identifies identical statements: same SQL text, same
// parameters.
func statementKey(st patina.Statement) string {
	return st.SQL + "\x00" + encodeValues(st.Params) + "\x00" + encodeNamed(st.Named)
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

// Subscribe implements patina.SubscriptionService.
func (s *Service) Subscribe(ctx context.Context, st patina.Statement, opts patina.SubscribeOptions) (patina.Subscription, error) {
	if s.closed.Load() {
		return nil, patina.Errorf(patina.EUNAVAILABLE, "the agent is shutting down; retry once it is back")
	}
	key := statementKey(st)
	s.mu.Lock()
	sb := s.byKey[key]
	if sb == nil {
		if opts.HasFrom {
			s.mu.Unlock()
			return nil, patina.Errorf(patina.EGONE, "?from=%d was given but no subscription to this query exists any more (it expired after %s without clients, or the agent lost its state); subscribe again without from to get the current rows", opts.From, s.IdleTimeout)
		}
		if len(s.byID) >= s.MaxSubscriptions {
			s.mu.Unlock()
			return nil, patina.Errorf(patina.EUNAVAILABLE, "this agent already maintains %d subscriptions, its limit; reuse an identical query (they share one subscription) or raise the limit", s.MaxSubscriptions)
		}
		sb = &sub{svc: s, id: uuid.NewString(), key: key, hash: hashKey(key), stmt: st, created: s.Now(), ready: make(chan struct{}),
			rows: map[string][]*row{}, listeners: map[*listener]struct{}{}}
		s.byKey[key] = sb
		s.mu.Unlock()
		s.create(ctx, sb)
	} else {
		s.mu.Unlock()
	}
	select {
	case <-sb.ready:
	case <-ctx.Done():
		return nil, patina.Errorf(patina.EUNAVAILABLE, "subscribe: gave up waiting for the query's first run: %v", context.Cause(ctx))
	}
	if sb.initErr != nil {
		return nil, sb.initErr
	}
	return s.attach(sb, opts)
}

// create analyzes and first runs a new subscription, stores it and
// registers it with the loop.
func (s *Service) create(ctx context.Context, sb *sub) {
	defer close(sb.ready)
	fail := func(err error) {
		sb.initErr = err
		s.mu.Lock()
		if s.byKey[sb.key] == sb {
			delete(s.byKey, sb.key)
		}
		s.mu.Unlock()
	}
	start := time.Now()
	s.initMu.Lock()
	if s.closed.Load() {
		s.initMu.Unlock()
		fail(patina.Errorf(patina.EUNAVAILABLE, "the agent is shutting down; retry once it is back"))
		return
	}
	p, err := s.an.analyze(sb.stmt)
	var rows []*row
	if err == nil {
		sb.plan = p
		rows, err = s.firstRun(ctx, sb)
	}
	s.initMu.Unlock()
	if err != nil {
		fail(err)
		return
	}
	sb.evals.Add(1)
	sb.evalNanos.Add(int64(time.Since(start)))
	for _, r := range rows {
		sb.rows[r.key] = append(sb.rows[r.key], r)
	}
	sb.nrows = len(rows)
	sb.lastRowID = int64(len(rows))
	sb.oldest = 1
	n, err := s.log.createSub(sb, rows)
	if err != nil {
		fail(fmt.Errorf("store subscription in the change log: %w", err))
		return
	}
	sb.n = n
	s.register(sb)
	s.markSub(sb)
}

// firstRun runs a new subscription's query in full. Called with initMu.
func (s *Service) firstRun(ctx context.Context, sb *sub) ([]*row, error) {
	ctx, cancel := context.WithTimeout(ctx, s.EvalTimeout)
	defer cancel()
	if err := s.init.begin(); err != nil {
		return nil, err
	}
	defer s.init.end()
	var rows []*row
	err := s.init.query(ctx, sb.plan.fullSQL, sb.stmt, sb.plan.nhidden, func(key, cells string) {
		rows = append(rows, &row{id: int64(len(rows) + 1), key: key, cells: cells})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, patina.Errorf(patina.ETIMEOUT, "the subscription's query did not finish within %s (the limit for every evaluation of a subscription); narrow it with a WHERE clause or an index", s.EvalTimeout)
		}
		return nil, patina.Errorf(patina.EINVALID, "run %q: %v", shorten(sb.stmt.SQL), err)
	}
	return rows, nil
}

// register adds a subscription to the lookup maps and the table index.
func (s *Service) register(sb *sub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey[sb.key] = sb
	s.byID[sb.id] = sb
	p := sb.plan
	for _, t := range p.tables {
		ti := s.tableIndex(t)
		if p.strategy != stratPK {
			ti.full[sb] = struct{}{}
			continue
		}
		ti.keys = len(p.table.pk)
		for _, c := range indexCols(p) {
			ti.cols[c]++
		}
		switch {
		case p.eq == nil && len(p.conds) == 0:
			ti.unindexed[sb] = struct{}{}
		case p.eq == nil:
			ti.filtered[sb] = struct{}{}
		default:
			byVal := ti.eq[p.eq.col]
			if byVal == nil {
				byVal = map[string]map[*sub]struct{}{}
				ti.eq[p.eq.col] = byVal
			}
			if byVal[p.eq.key] == nil {
				byVal[p.eq.key] = map[*sub]struct{}{}
			}
			byVal[p.eq.key][sb] = struct{}{}
		}
		for k := range sb.rows {
			ti.addRev(k, sb)
		}
	}
	s.refreshWatchedLocked()
}

func (s *Service) tableIndex(t string) *tableIndex {
	ti := s.idx[t]
	if ti == nil {
		ti = &tableIndex{full: map[*sub]struct{}{}, unindexed: map[*sub]struct{}{}, filtered: map[*sub]struct{}{},
			eq: map[string]map[string]map[*sub]struct{}{}, rev: map[string]map[*sub]struct{}{}, cols: map[string]int{}}
		s.idx[t] = ti
	}
	return ti
}

func (ti *tableIndex) addRev(k string, sb *sub) {
	m := ti.rev[k]
	if m == nil {
		m = map[*sub]struct{}{}
		ti.rev[k] = m
	}
	m[sb] = struct{}{}
}

func (ti *tableIndex) delRev(k string, sb *sub) {
	if m := ti.rev[k]; m != nil {
		delete(m, sb)
		if len(m) == 0 {
			delete(ti.rev, k)
		}
	}
}

// unregister removes a subscription (the loop's own call: it failed or
// expired) and ends its clients' streams with err.
func (s *Service) unregister(sb *sub, err error) {
	s.mu.Lock()
	if s.byKey[sb.key] == sb {
		delete(s.byKey, sb.key)
	}
	delete(s.byID, sb.id)
	p := sb.plan
	for _, t := range p.tables {
		ti := s.idx[t]
		if ti == nil {
			continue
		}
		delete(ti.full, sb)
		delete(ti.unindexed, sb)
		delete(ti.filtered, sb)
		if p.eq != nil {
			if byVal := ti.eq[p.eq.col]; byVal != nil {
				delete(byVal[p.eq.key], sb)
				if len(byVal[p.eq.key]) == 0 {
					delete(byVal, p.eq.key)
				}
				if len(byVal) == 0 {
					delete(ti.eq, p.eq.col)
				}
			}
		}
		if p.strategy == stratPK {
			for _, c := range indexCols(p) {
				if ti.cols[c]--; ti.cols[c] <= 0 {
					delete(ti.cols, c)
				}
			}
			for k := range sb.rows {
				ti.delRev(k, sb)
			}
		}
		if len(ti.full) == 0 && len(ti.unindexed) == 0 && len(ti.filtered) == 0 && len(ti.eq) == 0 && len(ti.rev) == 0 {
			delete(s.idx, t)
		}
	}
	s.refreshWatchedLocked()
	sb.mu.Lock()
	sb.gone = err
	for l := range sb.listeners {
		l.end(err)
	}
	s.nlisteners -= len(sb.listeners)
	sb.listeners = map[*listener]struct{}{}
	sb.mu.Unlock()
	s.mu.Unlock()
	if derr := s.log.deleteSub(sb.n); derr != nil {
		s.Logger.Error("delete subscription from the change log", logKeySub, sb.id, logKeyErr, derr)
	}
}

// refreshWatched recomputes the set of tables Notify must record.
func (s *Service) refreshWatched() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshWatchedLocked()
}

func (s *Service) refreshWatchedLocked() {
	m := make(map[string]bool, len(s.idx))
	for t := range s.idx {
		m[t] = true
	}
	s.watched.Store(&m)
}

// attach adds a client stream to a subscription.
func (s *Service) attach(sb *sub, opts patina.SubscribeOptions) (patina.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nlisteners >= s.MaxListeners {
		return nil, patina.Errorf(patina.EUNAVAILABLE, "this agent already serves %d subscription streams, its limit; retry later or raise the limit", s.MaxListeners)
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.gone != nil {
		return nil, sb.gone
	}
	l := &listener{sb: sb, wake: make(chan struct{}, 1), max: s.ListenerBuffer, replayNext: 1}
	switch {
	case opts.HasFrom:
		if opts.From > sb.lastChange {
			return nil, patina.Errorf(patina.EINVALID, "?from=%d is after subscription %s's last change %d; resume from a change id this subscription sent", opts.From, sb.id, sb.lastChange)
		}
		if opts.From+1 < sb.oldest {
			return nil, s.tooOld(sb, opts.From)
		}
		l.replayNext, l.replayEnd, l.lastOut = opts.From+1, sb.lastChange, opts.From
	case opts.SkipRows:
		l.lastOut = sb.lastChange
	default:
		start := time.Now()
		l.preamble = true
		l.snap = make([]snapRow, 0, sb.nrows)
		for _, rs := range sb.rows {
			for _, r := range rs {
				l.snap = append(l.snap, snapRow{id: r.id, cells: r.cells})
			}
		}
		sort.Slice(l.snap, func(i, j int) bool { return l.snap[i].id < l.snap[j].id })
		l.eoqChange, l.lastOut = sb.lastChange, sb.lastChange
		l.eoqSecs = time.Since(start).Seconds()
	}
	sb.listeners[l] = struct{}{}
	s.nlisteners++
	return l, nil
}

func (s *Service) tooOld(sb *sub, from uint64) error {
	return patina.Errorf(patina.EGONE, "subscription %s no longer keeps the changes after %d (it keeps the last %d changes for at most %s; the oldest kept is %d): resubscribe without from (POST /v1/subscriptions or GET /v1/subscriptions/%s) to get the current rows",
		sb.id, from, s.MaxChanges, s.MaxAge, sb.oldest, sb.id)
}

// detach removes a closed client stream.
func (s *Service) detach(l *listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := l.sb
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if _, ok := sb.listeners[l]; ok {
		delete(sb.listeners, l)
		s.nlisteners--
		if len(sb.listeners) == 0 {
			sb.idleSince = s.Now()
		}
	}
}

// replay reads logged changes from..=end of a subscription for a resuming
// client, checking that none is missing.
func (s *Service) replay(sb *sub, from, end uint64) ([]patina.Event, error) {
	chs, err := s.log.changesAfter(sb.n, from-1, replayPage)
	if err != nil {
		return nil, patina.Errorf(patina.EINTERNAL, "read the change log of subscription %s: %v", sb.id, err)
	}
	if len(chs) == 0 || chs[0].id != from {
		sb.mu.Lock()
		err := s.tooOld(sb, from-1)
		sb.mu.Unlock()
		return nil, err
	}
	out := make([]patina.Event, 0, len(chs))
	for i, ch := range chs {
		if ch.id > end {
			break
		}
		if ch.id != from+uint64(i) {
			return nil, patina.Errorf(patina.EINTERNAL, "subscription %s: change log skips from %d to %d (a bug); resubscribe", sb.id, from+uint64(i)-1, ch.id)
		}
		out = append(out, patina.Event{Kind: patina.EventChange, Change: ch.kind, RowID: ch.rowid, Cells: mustDecode(ch.cells), ChangeID: ch.id})
	}
	return out, nil
}

// Resume implements patina.SubscriptionService.
func (s *Service) Resume(ctx context.Context, id string, opts patina.SubscribeOptions) (patina.Subscription, error) {
	if s.closed.Load() {
		return nil, patina.Errorf(patina.EUNAVAILABLE, "the agent is shutting down; resume once it is back")
	}
	s.mu.Lock()
	sb := s.byID[id]
	s.mu.Unlock()
	if sb == nil {
		return nil, patina.Errorf(patina.ENOTFOUND, "no subscription %s on this agent (it expired after %s without clients, or the agent lost its state); subscribe again with its SQL", id, s.IdleTimeout)
	}
	return s.attach(sb, opts)
}

// Updates implements patina.SubscriptionService.
func (s *Service) Updates(ctx context.Context, table string) (patina.UpdateStream, error) {
	if s.closed.Load() {
		return nil, patina.Errorf(patina.EUNAVAILABLE, "the agent is shutting down; retry once it is back")
	}
	s.initMu.Lock()
	err := s.an.loadTables()
	var names []string
	t, ok := s.an.tables[lowerTable(table)]
	if !ok {
		names = s.an.tableNames()
	}
	s.initMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	if !ok {
		return nil, patina.Errorf(patina.ENOTFOUND, "no replicated table %q; the tables are %v", table, names)
	}
	s.mu.Lock()
	if s.nlisteners >= s.MaxListeners {
		s.mu.Unlock()
		return nil, patina.Errorf(patina.EUNAVAILABLE, "this agent already serves %d streams, its limit; retry later or raise the limit", s.MaxListeners)
	}
	s.nlisteners++
	s.mu.Unlock()
	st := s.upd.open(lowerTable(t.name), s.ListenerBuffer)
	return &countedUpdates{updateStream: st, svc: s}, nil
}

// countedUpdates gives back its listener slot on Close.
type countedUpdates struct {
	*updateStream
	svc  *Service
	once sync.Once
}

func (c *countedUpdates) Close() error {
	c.once.Do(func() {
		c.svc.mu.Lock()
		c.svc.nlisteners--
		c.svc.mu.Unlock()
	})
	return c.updateStream.Close()
}

// tempName returns the temp table holding a pass's changed keys of table.
func (s *Service) tempName(table string) string {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	t := lowerTable(table)
	if n, ok := s.temps[t]; ok {
		return n
	}
	n := fmt.Sprintf("pubsub_keys_%d", len(s.temps)+1)
	s.temps[t] = n
	return n
}

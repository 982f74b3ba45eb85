package pubsub

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/patinadb/patina"
)

// updateNamespace derives a table's update-stream id, stable across
// restarts (Corrosion keeps one handle per table).
var updateNamespace = uuid.MustParse("4f0e6f3a-3b53-4d3b-9d59-8a7c0e1f2a10")

// clCacheMax bounds the per-table memory of the highest causal length seen
// per key, which drops a notification older than one already sent.
const clCacheMax = 4096

// updates fans changed primary keys out to update streams. Notify only
// records (key -> highest causal length) per table and wakes a goroutine,
// so the apply path never waits for a client.
type updates struct {
	svc    *Service
	active atomic.Int32 // open streams; Notify skips note when zero

	mu      sync.Mutex
	streams map[string]map[*updateStream]struct{} // lower table -> streams
	pending map[string]map[string]int64           // lower table -> packed pk -> cl
	order   map[string][]string                   // first-seen order of pending keys
	cls     map[string]map[string]int64           // lower table -> packed pk -> last cl sent
	wake    chan struct{}
}

func newUpdates(svc *Service) *updates {
	return &updates{svc: svc, streams: map[string]map[*updateStream]struct{}{}, pending: map[string]map[string]int64{},
		order: map[string][]string{}, cls: map[string]map[string]int64{}, wake: make(chan struct{}, 1)}
}

// noteBatch collects the changed keys of one Notify call, so that all
// changes of a transaction reach update streams as one notification per
// key.
type noteBatch struct {
	tables []string
	keys   [][]byte
	cls    []int64
}

func (b *noteBatch) add(table string, pk []byte, cl int64) {
	b.tables, b.keys, b.cls = append(b.tables, table), append(b.keys, pk), append(b.cls, cl)
}

// note records a batch for the update streams of its tables.
func (u *updates) note(b *noteBatch) {
	u.mu.Lock()
	defer u.mu.Unlock()
	woke := false
	for i, table := range b.tables {
		if len(u.streams[table]) == 0 {
			continue
		}
		p := u.pending[table]
		if p == nil {
			p = map[string]int64{}
			u.pending[table] = p
		}
		k, cl := string(b.keys[i]), b.cls[i]
		if old, ok := p[k]; !ok {
			u.order[table] = append(u.order[table], k)
			p[k] = cl
		} else if cl > old {
			p[k] = cl
		}
		woke = true
	}
	if woke {
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
}

func (u *updates) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		}
		u.mu.Lock()
		pending, order := u.pending, u.order
		u.pending, u.order = map[string]map[string]int64{}, map[string][]string{}
		for table, keys := range order {
			cache := u.cls[table]
			if cache == nil || len(cache) > clCacheMax {
				cache = map[string]int64{}
				u.cls[table] = cache
			}
			for _, k := range keys {
				cl := pending[table][k]
				if prev, ok := cache[k]; ok && cl < prev {
					continue // an older state than one already announced
				}
				cache[k] = cl
				vals, err := patina.UnpackPK([]byte(k))
				if err != nil {
					continue
				}
				n := patina.Notification{Kind: patina.ChangeUpdate, PK: vals}
				if cl%2 == 0 {
					n.Kind = patina.ChangeDelete
				}
				for st := range u.streams[table] {
					st.push(n)
				}
			}
		}
		u.mu.Unlock()
	}
}

func (u *updates) open(table string, max int) *updateStream {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := &updateStream{u: u, table: table, id: uuid.NewSHA1(updateNamespace, []byte(table)).String(), max: max, wake: make(chan struct{}, 1)}
	if u.streams[table] == nil {
		u.streams[table] = map[*updateStream]struct{}{}
	}
	u.streams[table][st] = struct{}{}
	u.active.Add(1)
	return st
}

func (u *updates) remove(st *updateStream) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.streams[st.table][st]; ok {
		delete(u.streams[st.table], st)
		u.active.Add(-1)
	}
	if len(u.streams[st.table]) == 0 {
		delete(u.streams, st.table)
		delete(u.cls, st.table)
	}
}

func (u *updates) closeAll(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, sts := range u.streams {
		for st := range sts {
			st.end(err)
		}
	}
}

func (u *updates) watching(table string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.streams[table]) > 0
}

var _ patina.UpdateStream = (*updateStream)(nil)

// updateStream is one client's update stream.
type updateStream struct {
	u     *updates
	table string
	id    string
	max   int
	wake  chan struct{}

	mu     sync.Mutex
	buf    []patina.Notification
	err    error
	closed bool
}

func (s *updateStream) ID() string { return s.id }

// push is called with u.mu held; it never blocks.
func (s *updateStream) push(n patina.Notification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed {
		return
	}
	if len(s.buf) >= s.max {
		s.buf = nil
		s.err = patina.Errorf(patina.EUNAVAILABLE, "update stream of table %s: this client fell more than %d notifications behind and was disconnected (the agent never buffers without bound); reconnect and re-read the table, since updates carry no history", s.table, s.max)
	} else {
		s.buf = append(s.buf, n)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *updateStream) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *updateStream) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

func (s *updateStream) Next(ctx context.Context) (patina.Notification, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return patina.Notification{}, patina.Errorf(patina.EUNAVAILABLE, "update stream closed")
		}
		if len(s.buf) > 0 {
			n := s.buf[0]
			s.buf = s.buf[1:]
			s.mu.Unlock()
			return n, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return patina.Notification{}, err
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return patina.Notification{}, ctx.Err()
		}
	}
}

func (s *updateStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.buf = nil
	s.mu.Unlock()
	s.u.remove(s)
	return nil
}

func lowerTable(t string) string { return strings.ToLower(t) }

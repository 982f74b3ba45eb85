package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/patinadb/patina"
	phttp "github.com/patinadb/patina/http"
)

// SubOption tunes where a subscription starts.
type SubOption func(*patina.SubscribeOptions)

// From starts after change id (a resume): only the changes that follow.
func From(changeID uint64) SubOption {
	return func(o *patina.SubscribeOptions) { o.HasFrom, o.From = true, changeID }
}

// SkipRows starts with the changes from now on, without the current rows.
func SkipRows() SubOption { return func(o *patina.SubscribeOptions) { o.SkipRows = true } }

// Subscription is a stream of a subscription's events that resumes by
// itself: when the stream breaks (the connection dropped, the agent
// restarted, the client fell behind), Next reconnects with ?from= the last
// change it returned, backing off between attempts, so the caller sees
// every change exactly once and in order. It gives up with an error after
// ResumeAttempts failed attempts in a row, when the agent no longer keeps
// the changes needed (code EGONE: subscribe again), or when the
// subscription is gone (ENOTFOUND).
type Subscription struct {
	c    *Client
	id   string
	hash string

	mu     sync.Mutex // guards cur and closed for Close
	cur    *stream
	closed bool

	columns   []string
	last      uint64
	resumable bool // the client has the rows (or asked for changes only)
	attempts  int
	rng       *rand.Rand
}

// Subscribe subscribes to a read-only query; identical queries share one
// subscription on the agent.
func (c *Client) Subscribe(ctx context.Context, stmt patina.Statement, opts ...SubOption) (*Subscription, error) {
	var o patina.SubscribeOptions
	for _, f := range opts {
		f(&o)
	}
	body, err := phttp.MarshalStatement(stmt)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/subscriptions", subQuery(o), body, false)
	if err != nil {
		return nil, err
	}
	s := c.newSubscription(resp, o)
	if o.HasFrom {
		s.last = o.From
	}
	return s, nil
}

// Resume attaches to subscription id after change id from (0 for a
// subscription that has sent no change yet).
func (c *Client) Resume(ctx context.Context, id string, from uint64) (*Subscription, error) {
	o := patina.SubscribeOptions{HasFrom: true, From: from}
	resp, err := c.do(ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(id), subQuery(o), nil, false)
	if err != nil {
		return nil, err
	}
	s := c.newSubscription(resp, o)
	s.last = from
	return s, nil
}

func subQuery(o patina.SubscribeOptions) url.Values {
	q := url.Values{}
	if o.HasFrom {
		q.Set("from", strconv.FormatUint(o.From, 10))
	}
	if o.SkipRows {
		q.Set("skip_rows", "true")
	}
	return q
}

func (c *Client) newSubscription(resp *http.Response, o patina.SubscribeOptions) *Subscription {
	id := resp.Header.Get(phttp.HeaderPatinaQueryID)
	if id == "" {
		id = resp.Header.Get(phttp.HeaderQueryID)
	}
	return &Subscription{c: c, id: id, hash: resp.Header.Get(phttp.HeaderQueryHash), cur: newStream(resp.Body),
		resumable: o.HasFrom || o.SkipRows, rng: rand.New(rand.NewPCG(rand.Uint64(), 0))}
}

// ID is the subscription's id, for Resume.
func (s *Subscription) ID() string { return s.id }

// Hash identifies the query.
func (s *Subscription) Hash() string { return s.hash }

// Columns are the result's columns (once the columns event was read).
func (s *Subscription) Columns() []string { return s.columns }

// LastChangeID is the last change id Next returned (or the snapshot's):
// resume from it to continue where this stream stopped.
func (s *Subscription) LastChangeID() uint64 { return s.last }

// Next returns the next event: EventColumns, one EventRow per current row,
// EventEndOfQuery, then an EventChange per change, resuming the stream as
// needed. Row ids are stable: an update or delete names the row id its
// insert (or snapshot row) had.
func (s *Subscription) Next(ctx context.Context) (patina.Event, error) {
	for {
		s.mu.Lock()
		cur := s.cur
		s.mu.Unlock()
		if cur == nil {
			if err := s.reconnect(ctx); err != nil {
				return patina.Event{}, err
			}
			continue
		}
		l, err := cur.next(ctx)
		if err != nil && ctx.Err() != nil {
			return patina.Event{}, ctx.Err()
		}
		if err == nil && l.Error != nil {
			err = patina.Errorf(patina.EUNAVAILABLE, "%s", *l.Error)
		}
		if err != nil {
			s.drop()
			if s.isClosed() {
				return patina.Event{}, patina.Errorf(patina.EUNAVAILABLE, "subscription stream closed")
			}
			if !s.resumable {
				return patina.Event{}, fmt.Errorf("subscription %s broke before its initial rows ended (%w); subscribe again", s.id, err)
			}
			continue
		}
		ev, err := s.event(l)
		if err != nil {
			s.drop()
			return patina.Event{}, err
		}
		s.attempts = 0
		return ev, nil
	}
}

// event converts a line to an event and tracks the stream's position.
func (s *Subscription) event(l *line) (patina.Event, error) {
	switch {
	case l.Columns != nil:
		s.columns = l.Columns
		return patina.Event{Kind: patina.EventColumns, Columns: l.Columns}, nil
	case l.Row != nil:
		id, cells, err := l.row()
		if err != nil {
			return patina.Event{}, fmt.Errorf("subscription %s: %w", s.id, err)
		}
		return patina.Event{Kind: patina.EventRow, RowID: id, Cells: cells}, nil
	case l.EOQ != nil:
		ev := patina.Event{Kind: patina.EventEndOfQuery, Seconds: l.EOQ.Time}
		if l.EOQ.ChangeID != nil {
			ev.ChangeID = *l.EOQ.ChangeID
		}
		s.last, s.resumable = ev.ChangeID, true
		return ev, nil
	case l.Change != nil:
		if len(l.Change) != 4 {
			return patina.Event{}, fmt.Errorf("subscription %s: change line is not [type, rowid, [cells], change_id]", s.id)
		}
		var kind string
		var ev patina.Event
		ev.Kind = patina.EventChange
		if err := json.Unmarshal(l.Change[0], &kind); err != nil {
			return patina.Event{}, fmt.Errorf("subscription %s: change type: %w", s.id, err)
		}
		k, err := patina.ParseChangeKind(kind)
		if err != nil {
			return patina.Event{}, err
		}
		ev.Change = k
		if err := json.Unmarshal(l.Change[1], &ev.RowID); err != nil {
			return patina.Event{}, fmt.Errorf("subscription %s: change row id: %w", s.id, err)
		}
		if ev.Cells, err = decodeCells(l.Change[2]); err != nil {
			return patina.Event{}, fmt.Errorf("subscription %s: %w", s.id, err)
		}
		if err := json.Unmarshal(l.Change[3], &ev.ChangeID); err != nil {
			return patina.Event{}, fmt.Errorf("subscription %s: change id: %w", s.id, err)
		}
		if s.resumable && ev.ChangeID != s.last+1 {
			return patina.Event{}, patina.Errorf(patina.EINTERNAL, "subscription %s sent change %d after %d: a gap; subscribe again", s.id, ev.ChangeID, s.last)
		}
		s.last = ev.ChangeID
		return ev, nil
	}
	return patina.Event{}, fmt.Errorf("subscription %s: unknown stream line", s.id)
}

// reconnect resumes after the last change, with backoff between attempts.
func (s *Subscription) reconnect(ctx context.Context) error {
	max := s.c.ResumeAttempts
	if max <= 0 {
		max = DefaultResumeAttempts
	}
	lo, hi := s.c.MinBackoff, s.c.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	var lastErr error
	for s.attempts < max {
		if s.isClosed() {
			return patina.Errorf(patina.EUNAVAILABLE, "subscription stream closed")
		}
		if s.attempts > 0 {
			d := min(lo<<(s.attempts-1), hi)
			d = d/2 + time.Duration(s.rng.Int64N(int64(d/2)+1))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		s.attempts++
		o := patina.SubscribeOptions{HasFrom: true, From: s.last}
		resp, err := s.c.do(ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(s.id), subQuery(o), nil, false)
		if err == nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed {
				resp.Body.Close()
				return patina.Errorf(patina.EUNAVAILABLE, "subscription stream closed")
			}
			s.cur = newStream(resp.Body)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch patina.ErrorCode(err) {
		case patina.EGONE:
			return fmt.Errorf("subscription %s cannot resume after change %d: %w", s.id, s.last, err)
		case patina.ENOTFOUND, patina.EINVALID, patina.EUNAUTHORIZED:
			return fmt.Errorf("subscription %s cannot resume: %w; subscribe again", s.id, err)
		}
		lastErr = err
	}
	return patina.Errorf(patina.EUNAVAILABLE, "subscription %s: gave up after %d resume attempts (last: %v); check that the agent at %s is up, then resume from change %d or subscribe again",
		s.id, s.attempts, lastErr, s.c.BaseURL, s.last)
}

func (s *Subscription) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
}

func (s *Subscription) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close ends the stream (the subscription lives on for others and for
// resumes); a Next in progress returns.
func (s *Subscription) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
	return nil
}

// stream reads one response's lines in the background, so that a Next
// whose context ends leaves the connection intact.
type stream struct {
	body  io.ReadCloser
	lines chan lineOrErr
	done  chan struct{}
	once  sync.Once
}

type lineOrErr struct {
	l   *line
	err error
}

func newStream(body io.ReadCloser) *stream {
	st := &stream{body: body, lines: make(chan lineOrErr), done: make(chan struct{})}
	go func() {
		rd := newLineReader(body)
		for {
			l, err := rd.next()
			select {
			case st.lines <- lineOrErr{l, err}:
			case <-st.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return st
}

func (st *stream) next(ctx context.Context) (*line, error) {
	select {
	case le := <-st.lines:
		return le.l, le.err
	case <-st.done:
		return nil, io.ErrClosedPipe
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (st *stream) close() {
	st.once.Do(func() {
		close(st.done)
		st.body.Close()
	})
}

// UpdateStream is a stream of a table's changed primary keys. It carries
// no history, so it does not resume: after an error, open a new one and
// re-read the table.
type UpdateStream struct {
	id  string
	cur *stream
}

// Updates streams the changed primary keys of table.
func (c *Client) Updates(ctx context.Context, table string) (*UpdateStream, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/updates/"+url.PathEscape(table), nil, []byte{}, false)
	if err != nil {
		return nil, err
	}
	id := resp.Header.Get(phttp.HeaderPatinaQueryID)
	if id == "" {
		id = resp.Header.Get(phttp.HeaderQueryID)
	}
	return &UpdateStream{id: id, cur: newStream(resp.Body)}, nil
}

// ID is the stream's id.
func (u *UpdateStream) ID() string { return u.id }

// Next returns the next notification.
func (u *UpdateStream) Next(ctx context.Context) (patina.Notification, error) {
	l, err := u.cur.next(ctx)
	if err != nil {
		return patina.Notification{}, err
	}
	if l.Error != nil {
		return patina.Notification{}, patina.Errorf(patina.EUNAVAILABLE, "%s", *l.Error)
	}
	if len(l.Notify) != 2 {
		return patina.Notification{}, fmt.Errorf("update stream: line is not {\"notify\": [type, [pk]]}")
	}
	var kind string
	if err := json.Unmarshal(l.Notify[0], &kind); err != nil {
		return patina.Notification{}, fmt.Errorf("update stream: %w", err)
	}
	k, err := patina.ParseChangeKind(kind)
	if err != nil {
		return patina.Notification{}, err
	}
	pk, err := decodeCells(l.Notify[1])
	if err != nil {
		return patina.Notification{}, fmt.Errorf("update stream: %w", err)
	}
	return patina.Notification{Kind: k, PK: pk}, nil
}

// Close ends the stream.
func (u *UpdateStream) Close() error {
	u.cur.close()
	return nil
}

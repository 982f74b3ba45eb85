// Package pubsubtest holds test helpers for subscriptions: a Mirror that
// applies a stream's events to its own copy of the result, checking the
// stream's invariants, as a program routing traffic would.
package pubsubtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/patinadb/patina"
)

// Stream is what a Mirror reads: a patina.Subscription, or a client's
// stream adapted to it.
type Stream interface {
	Next(ctx context.Context) (patina.Event, error)
}

// Mirror is a client's copy of a subscription's result.
type Mirror struct {
	Stream  Stream
	Columns []string
	Rows    map[int64][]patina.Value
	// Last is the last change id applied (or the snapshot's).
	Last    uint64
	Changes []patina.Event
	EOQ     bool
}

// New returns an empty mirror of s.
func New(s Stream) *Mirror { return &Mirror{Stream: s, Rows: map[int64][]patina.Value{}} }

// Apply applies one event, failing tb when the stream breaks an invariant:
// change ids contiguous, inserts of new row ids, updates and deletes of
// existing ones.
func (m *Mirror) Apply(tb testing.TB, ev patina.Event) {
	tb.Helper()
	if err := m.Step(ev); err != nil {
		tb.Fatal(err)
	}
}

// Step is Apply returning the broken invariant instead of failing a test
// (for reader goroutines).
func (m *Mirror) Step(ev patina.Event) error {
	switch ev.Kind {
	case patina.EventColumns:
		m.Columns = ev.Columns
	case patina.EventRow:
		if _, dup := m.Rows[ev.RowID]; dup {
			return fmt.Errorf("row id %d sent twice", ev.RowID)
		}
		m.Rows[ev.RowID] = ev.Cells
	case patina.EventEndOfQuery:
		m.EOQ, m.Last = true, ev.ChangeID
	case patina.EventChange:
		if ev.ChangeID != m.Last+1 {
			return fmt.Errorf("change id %d after %d: not contiguous", ev.ChangeID, m.Last)
		}
		m.Last = ev.ChangeID
		m.Changes = append(m.Changes, ev)
		_, had := m.Rows[ev.RowID]
		switch ev.Change {
		case patina.ChangeInsert:
			if had {
				return fmt.Errorf("change %d inserts row id %d, which exists", ev.ChangeID, ev.RowID)
			}
			m.Rows[ev.RowID] = ev.Cells
		case patina.ChangeUpdate:
			if !had {
				return fmt.Errorf("change %d updates row id %d, which does not exist", ev.ChangeID, ev.RowID)
			}
			m.Rows[ev.RowID] = ev.Cells
		case patina.ChangeDelete:
			if !had {
				return fmt.Errorf("change %d deletes row id %d, which does not exist", ev.ChangeID, ev.RowID)
			}
			delete(m.Rows, ev.RowID)
		default:
			return fmt.Errorf("change %d has kind %v", ev.ChangeID, ev.Change)
		}
	}
	return nil
}

// Sorted returns the rows as sorted strings (see Format).
func (m *Mirror) Sorted() []string {
	out := make([]string, 0, len(m.Rows))
	for _, r := range m.Rows {
		out = append(out, Format(r))
	}
	sort.Strings(out)
	return out
}

// Format renders cells as "a|b|c".
func Format(vals []patina.Value) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = v.String()
	}
	return strings.Join(parts, "|")
}

func (m *Mirror) next(d time.Duration) (patina.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.Stream.Next(ctx)
}

// ReadSnapshot reads columns, rows and end of query within d.
func (m *Mirror) ReadSnapshot(tb testing.TB, d time.Duration) {
	tb.Helper()
	for !m.EOQ {
		ev, err := m.next(d)
		if err != nil {
			tb.Fatalf("read snapshot: %v", err)
		}
		m.Apply(tb, ev)
	}
}

// Converge applies events until the mirror's rows equal want() (rows
// sorted as Format renders them), failing at the deadline with the
// difference.
func (m *Mirror) Converge(tb testing.TB, d time.Duration, want func() []string) {
	tb.Helper()
	if err := m.converge(d, want); err != nil {
		tb.Fatal(err)
	}
}

func (m *Mirror) converge(d time.Duration, want func() []string) error {
	deadline := time.Now().Add(d)
	for {
		w := want()
		got := m.Sorted()
		if slices.Equal(w, got) {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("subscription never converged:\n got  %v\n want %v", got, w)
		}
		ev, err := m.next(min(left, 200*time.Millisecond))
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			return fmt.Errorf("subscription stream ended: %v (got %v, want %v)", err, got, w)
		}
		if err := m.Step(ev); err != nil {
			return err
		}
	}
}

// Describe renders changes as "kind rowid cells #id; ...".
func Describe(evs []patina.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %d %s #%d; ", ev.Change, ev.RowID, Format(ev.Cells), ev.ChangeID)
	}
	return b.String()
}

// Rows runs a query through q (a Store or an Agent) and returns its rows
// sorted as Format renders them.
func Rows(tb testing.TB, q interface {
	Query(context.Context, patina.Statement) (patina.Rows, error)
}, st patina.Statement) []string {
	tb.Helper()
	rows, err := q.Query(context.Background(), st)
	if err != nil {
		tb.Fatalf("query %q: %v", st.SQL, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		out = append(out, Format(rows.Values()))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("query %q: %v", st.SQL, err)
	}
	sort.Strings(out)
	return out
}

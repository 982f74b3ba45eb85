package pubsub_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/defaultschema"
	"github.com/patinadb/patina/pubsub"
	"github.com/patinadb/patina/sqlite"
)

// env is a store and a subscription service over it, wired as the agent
// wires them: every write is followed by Notify.
type env struct {
	tb  testing.TB
	dir string
	db  *sqlite.DB
	svc *pubsub.Service
}

// MustEnv opens a store with schema (default: the built-in one) and a
// service; tune adjusts the service before it opens.
func MustEnv(tb testing.TB, schema string, tune func(*pubsub.Service)) *env {
	tb.Helper()
	e := &env{tb: tb, dir: tb.TempDir()}
	if schema == "" {
		schema = defaultschema.SQL
	}
	e.db = sqlite.NewDB(filepath.Join(e.dir, "state.db"))
	if err := e.db.Open(); err != nil {
		tb.Fatal(err)
	}
	if err := e.db.ApplySchema([]sqlite.SchemaFile{{Name: "test.sql", SQL: schema}}); err != nil {
		tb.Fatal(err)
	}
	e.open(tune)
	tb.Cleanup(func() {
		e.svc.Close()
		e.db.Close()
	})
	return e
}

func (e *env) open(tune func(*pubsub.Service)) {
	e.tb.Helper()
	e.svc = pubsub.New(e.db.Path)
	e.svc.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if tune != nil {
		tune(e.svc)
	}
	if err := e.svc.Open(); err != nil {
		e.tb.Fatal(err)
	}
}

// restart closes and reopens the service (an agent restart, as far as
// subscriptions go).
func (e *env) restart(tune func(*pubsub.Service)) {
	e.tb.Helper()
	if err := e.svc.Close(); err != nil {
		e.tb.Fatal(err)
	}
	e.open(tune)
}

// exec runs statements as one transaction and notifies the service.
func (e *env) exec(sqls ...string) {
	e.tb.Helper()
	stmts := make([]patina.Statement, len(sqls))
	for i, s := range sqls {
		stmts[i] = patina.Statement{SQL: s}
	}
	res, err := e.db.Transact(context.Background(), stmts)
	if err != nil {
		e.tb.Fatalf("exec %v: %v", sqls, err)
	}
	if res.Changeset != nil {
		e.svc.Notify([]patina.Changeset{*res.Changeset})
	}
}

// rows runs a query on the store and returns its rows as sorted strings.
func rowsOf(tb testing.TB, db *sqlite.DB, st patina.Statement) []string {
	tb.Helper()
	rows, err := db.Query(context.Background(), st)
	if err != nil {
		tb.Fatalf("query %q: %v", st.SQL, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		out = append(out, cellsString(rows.Values()))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func cellsString(vals []patina.Value) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = v.String()
	}
	return strings.Join(parts, "|")
}

// mirror is a client that applies a subscription's events to its own
// copy of the result, as a program routing traffic would.
type mirror struct {
	sub     patina.Subscription
	cols    []string
	rows    map[int64][]patina.Value
	last    uint64 // last change id applied
	changes []patina.Event
	eoq     bool
}

func newMirror(sub patina.Subscription) *mirror {
	return &mirror{sub: sub, rows: map[int64][]patina.Value{}}
}

// apply applies one event, checking the stream's invariants.
func (m *mirror) apply(tb testing.TB, ev patina.Event) {
	tb.Helper()
	switch ev.Kind {
	case patina.EventColumns:
		m.cols = ev.Columns
	case patina.EventRow:
		if _, dup := m.rows[ev.RowID]; dup {
			tb.Fatalf("row id %d sent twice", ev.RowID)
		}
		m.rows[ev.RowID] = ev.Cells
	case patina.EventEndOfQuery:
		m.eoq, m.last = true, ev.ChangeID
	case patina.EventChange:
		if ev.ChangeID != m.last+1 {
			tb.Fatalf("change id %d after %d: not contiguous", ev.ChangeID, m.last)
		}
		m.last = ev.ChangeID
		m.changes = append(m.changes, ev)
		_, had := m.rows[ev.RowID]
		switch ev.Change {
		case patina.ChangeInsert:
			if had {
				tb.Fatalf("change %d inserts row id %d, which exists", ev.ChangeID, ev.RowID)
			}
			m.rows[ev.RowID] = ev.Cells
		case patina.ChangeUpdate:
			if !had {
				tb.Fatalf("change %d updates row id %d, which does not exist", ev.ChangeID, ev.RowID)
			}
			m.rows[ev.RowID] = ev.Cells
		case patina.ChangeDelete:
			if !had {
				tb.Fatalf("change %d deletes row id %d, which does not exist", ev.ChangeID, ev.RowID)
			}
			delete(m.rows, ev.RowID)
		}
	}
}

func (m *mirror) sorted() []string {
	out := make([]string, 0, len(m.rows))
	for _, r := range m.rows {
		out = append(out, cellsString(r))
	}
	sort.Strings(out)
	return out
}

// next reads one event within d.
func (m *mirror) next(tb testing.TB, d time.Duration) (patina.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.sub.Next(ctx)
}

// readSnapshot reads columns, rows and end of query.
func (m *mirror) readSnapshot(tb testing.TB) {
	tb.Helper()
	for !m.eoq {
		ev, err := m.next(tb, 10*time.Second)
		if err != nil {
			tb.Fatalf("read snapshot: %v", err)
		}
		m.apply(tb, ev)
	}
}

// converge applies events until the mirror equals want(), failing at the
// deadline with the difference.
func (m *mirror) converge(tb testing.TB, d time.Duration, want func() []string) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		w := want()
		got := m.sorted()
		if slices.Equal(w, got) {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("subscription never converged:\n got  %v\n want %v", got, w)
		}
		ev, err := m.next(tb, min(left, 200*time.Millisecond))
		if err == context.DeadlineExceeded {
			continue
		}
		if err != nil {
			tb.Fatalf("subscription stream ended: %v (got %v, want %v)", err, got, w)
		}
		m.apply(tb, ev)
	}
}

// drain applies events until none arrives within d.
func (m *mirror) drain(tb testing.TB, d time.Duration) {
	tb.Helper()
	for {
		ev, err := m.next(tb, d)
		if err == context.DeadlineExceeded {
			return
		}
		if err != nil {
			tb.Fatalf("drain: %v", err)
		}
		m.apply(tb, ev)
	}
}

func mustSubscribe(tb testing.TB, svc patina.SubscriptionService, sql string, params ...patina.Value) patina.Subscription {
	tb.Helper()
	sub, err := svc.Subscribe(context.Background(), patina.Statement{SQL: sql, Params: params}, patina.SubscribeOptions{})
	if err != nil {
		tb.Fatalf("subscribe %q: %v", sql, err)
	}
	tb.Cleanup(func() { sub.Close() })
	return sub
}

func describe(evs []patina.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %d %s #%d; ", ev.Change, ev.RowID, cellsString(ev.Cells), ev.ChangeID)
	}
	return b.String()
}

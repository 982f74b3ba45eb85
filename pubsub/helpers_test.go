package pubsub_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/defaultschema"
	"github.com/patinadb/patina/pubsub"
	"github.com/patinadb/patina/pubsub/pubsubtest"
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
	return pubsubtest.Rows(tb, db, st)
}

// mirror is a client applying a subscription's events to its own rows.
type mirror struct {
	*pubsubtest.Mirror
	sub patina.Subscription
}

func newMirror(sub patina.Subscription) *mirror {
	return &mirror{Mirror: pubsubtest.New(sub), sub: sub}
}

// attach points the mirror at a resumed stream.
func (m *mirror) attach(sub patina.Subscription) {
	m.sub, m.Stream = sub, sub
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

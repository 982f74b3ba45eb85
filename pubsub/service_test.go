package pubsub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/pubsub"
	"github.com/patinadb/patina/pubsub/pubsubtest"
)

const wait = 10 * time.Second

func TestService_Subscribe(t *testing.T) {
	e := MustEnv(t, "", nil)
	e.exec(`INSERT INTO services (id, name, port) VALUES ('a', 'web', 80), ('b', 'web', 81), ('c', 'db', 5432)`)
	queries := []string{
		`SELECT id, name, port FROM services WHERE name = 'web'`,
		`SELECT port FROM services WHERE port > 80 ORDER BY port`,
		`SELECT s.id, m.name FROM services s JOIN machines m ON m.id = s.machine_id`,
		`SELECT s.id, m.name FROM services s LEFT JOIN machines m ON m.id = s.machine_id`,
		`SELECT name, count(*), sum(port) FROM services GROUP BY name`,
		`SELECT DISTINCT name FROM services`,
		`SELECT count(*) FROM services`,
		`SELECT id FROM services ORDER BY port DESC LIMIT 2`,
		`SELECT id FROM services WHERE machine_id IN (SELECT id FROM machines WHERE state = 'started')`,
		`SELECT name FROM services UNION SELECT name FROM machines`,
		`WITH w AS (SELECT * FROM services WHERE name = 'web') SELECT id, port FROM w`,
		`SELECT id FROM services WHERE port = '90'`,
		`SELECT id, port FROM services WHERE port >= 81 AND port < '90'`,
		`SELECT id FROM services WHERE 100 > port AND name > 'b'`,
		`SELECT s.id, j.value FROM services s, json_each(s.tags) j`,
	}
	mirrors := make([]*mirror, len(queries))
	for i, q := range queries {
		mirrors[i] = newMirror(mustSubscribe(t, e.svc, q))
		mirrors[i].ReadSnapshot(t, wait)
		if got, want := mirrors[i].Sorted(), rowsOf(t, e.db, patina.Statement{SQL: q}); !slices.Equal(got, want) {
			t.Fatalf("%s: snapshot %v, want %v", q, got, want)
		}
	}
	steps := [][]string{
		{`INSERT INTO services (id, name, port) VALUES ('d', 'web', 82)`},
		{`UPDATE services SET port = 90 WHERE id = 'a'`},
		{`UPDATE services SET name = 'api' WHERE id = 'b'`}, // leaves the WHERE: a delete
		{`INSERT INTO machines (id, name, state) VALUES ('m1', 'host-1', 'started')`, `UPDATE services SET machine_id = 'm1' WHERE id IN ('a', 'c')`},
		{`UPDATE machines SET name = 'host-one' WHERE id = 'm1'`},
		{`DELETE FROM services WHERE id = 'c'`},
		{`UPDATE machines SET state = 'stopped'`},
		{`UPDATE services SET id = 'z' WHERE id = 'a'`}, // key change
	}
	for _, step := range steps {
		e.exec(step...)
		for i, q := range queries {
			mirrors[i].Converge(t, wait, func() []string { return rowsOf(t, e.db, patina.Statement{SQL: q}) })
		}
	}
	// Row identity: the update of a keyed row is an update, not a
	// delete and insert.
	var kinds []string
	for _, ev := range mirrors[0].Changes {
		kinds = append(kinds, ev.Change.String())
	}
	if want := []string{"insert", "update", "delete", "delete", "insert"}; !slices.Equal(kinds, want) {
		t.Errorf("changes of %q: %v (%s), want %v", queries[0], kinds, pubsubtest.Describe(mirrors[0].Changes), want)
	}
	infos := e.svc.Subscriptions(context.Background())
	if len(infos) != len(queries) {
		t.Fatalf("listed %d subscriptions, want %d", len(infos), len(queries))
	}
	strategies := map[string]string{}
	for _, in := range infos {
		strategies[in.SQL] = in.Strategy
	}
	for q, want := range map[string]string{queries[0]: "primary-key", queries[2]: "full", queries[4]: "full-content", queries[7]: "full"} {
		if strategies[q] != want {
			t.Errorf("%s: strategy %s, want %s", q, strategies[q], want)
		}
	}
}

func TestService_SubscribeShares(t *testing.T) {
	e := MustEnv(t, "", nil)
	a := mustSubscribe(t, e.svc, `SELECT id FROM services WHERE port = ?`, patina.Int(1))
	b := mustSubscribe(t, e.svc, `SELECT id FROM services WHERE port = ?`, patina.Int(1))
	c := mustSubscribe(t, e.svc, `SELECT id FROM services WHERE port = ?`, patina.Int(2))
	if a.ID() != b.ID() {
		t.Errorf("identical statements got subscriptions %s and %s", a.ID(), b.ID())
	}
	if a.ID() == c.ID() {
		t.Errorf("different parameters share subscription %s", a.ID())
	}
	info, err := e.svc.SubscriptionInfo(context.Background(), a.ID())
	if err != nil || info.Subscribers != 2 {
		t.Errorf("info %+v, %v; want 2 subscribers", info, err)
	}
}

func TestService_SubscribeRefuses(t *testing.T) {
	e := MustEnv(t, "", nil)
	for _, tc := range []struct{ sql, want string }{
		{`INSERT INTO services (id) VALUES ('x')`, "read-only"},
		{`SELECT * FROM nope`, "no such table"},
		{`SELECT * FROM __patina_state`, "bookkeeping"},
		{`SELECT * FROM sqlite_master`, "not a replicated table"},
		{`SELECT id, random() FROM services`, "random"},
		{`SELECT 1; SELECT 2`, "more than one"},
		{`PRAGMA table_info(services)`, "not allowed"},
		{``, "empty"},
	} {
		_, err := e.svc.Subscribe(context.Background(), patina.Statement{SQL: tc.sql}, patina.SubscribeOptions{})
		if err == nil || patina.ErrorCode(err) != patina.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("subscribe %q: %v (code %s), want EINVALID mentioning %q", tc.sql, err, patina.ErrorCode(err), tc.want)
		}
	}
}

func TestService_Resume(t *testing.T) {
	e := MustEnv(t, "", nil)
	q := `SELECT id, port FROM services WHERE name = 'web'`
	m := newMirror(mustSubscribe(t, e.svc, q))
	m.ReadSnapshot(t, wait)
	// ref stays connected: what a resumed client gets must be exactly what
	// ref got after the resume point, in the same order.
	ref := newMirror(mustSubscribe(t, e.svc, q))
	ref.ReadSnapshot(t, wait)
	want := func() []string { return rowsOf(t, e.db, patina.Statement{SQL: q}) }
	e.exec(`INSERT INTO services (id, name, port) VALUES ('a', 'web', 1)`)
	m.Converge(t, wait, want)
	id, seen := m.sub.ID(), m.Last
	m.sub.Close()

	// Writes while disconnected.
	e.exec(`INSERT INTO services (id, name, port) VALUES ('b', 'web', 2)`)
	e.exec(`UPDATE services SET port = 3 WHERE id = 'a'`)
	e.exec(`DELETE FROM services WHERE id = 'b'`)
	e.exec(`INSERT INTO services (id, name, port) VALUES ('c', 'web', 4)`)
	ref.Converge(t, wait, want)
	missed := ref.Changes[len(ref.Changes)-int(ref.Last-seen):]

	sub, err := e.svc.Resume(context.Background(), id, patina.SubscribeOptions{HasFrom: true, From: seen})
	if err != nil {
		t.Fatal(err)
	}
	m.attach(sub)
	m.Changes = nil
	m.Converge(t, wait, want)
	if got, want := pubsubtest.Describe(m.Changes), pubsubtest.Describe(missed); got != want {
		t.Errorf("resumed changes:\n%s\nwant\n%s", got, want)
	}
	if n := sub.Pending(); n != 0 {
		t.Errorf("%d more events pending after the missed ones", n)
	}

	// The same across a restart: the log outlives the service.
	sub.Close()
	seen = m.Last
	e.restart(nil)
	e.exec(`UPDATE services SET port = 5 WHERE id = 'c'`)
	waitLastChange(t, e.svc, id, seen+1)
	sub, err = e.svc.Resume(context.Background(), id, patina.SubscribeOptions{HasFrom: true, From: seen})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	m.attach(sub)
	m.Converge(t, wait, want)
	if last := m.Changes[len(m.Changes)-1]; last.ChangeID != seen+1 || last.Change != patina.ChangeUpdate {
		t.Fatalf("after restart: %s; want the update of c as change %d", pubsubtest.Describe(m.Changes), seen+1)
	}
}

func TestService_ResumeTooOld(t *testing.T) {
	e := MustEnv(t, "", func(s *pubsub.Service) { s.MaxChanges = 3 })
	q := `SELECT id, port FROM services`
	m := newMirror(mustSubscribe(t, e.svc, q))
	m.ReadSnapshot(t, wait)
	for i := 0; i < 6; i++ {
		e.exec(`INSERT INTO services (id, port) VALUES ('s` + string(rune('a'+i)) + `', 1)`)
	}
	waitLastChange(t, e.svc, m.sub.ID(), 6)
	_, err := e.svc.Resume(context.Background(), m.sub.ID(), patina.SubscribeOptions{HasFrom: true, From: 1})
	if patina.ErrorCode(err) != patina.EGONE || !strings.Contains(err.Error(), "resubscribe") {
		t.Fatalf("resume from a trimmed change: %v, want EGONE telling to resubscribe", err)
	}
	sub, err := e.svc.Resume(context.Background(), m.sub.ID(), patina.SubscribeOptions{HasFrom: true, From: 3})
	if err != nil {
		t.Fatalf("resume from the oldest kept: %v", err)
	}
	sub.Close()
	if _, err := e.svc.Resume(context.Background(), m.sub.ID(), patina.SubscribeOptions{HasFrom: true, From: 7}); patina.ErrorCode(err) != patina.EINVALID {
		t.Errorf("resume from the future: %v, want EINVALID", err)
	}
	if _, err := e.svc.Resume(context.Background(), "nope", patina.SubscribeOptions{}); patina.ErrorCode(err) != patina.ENOTFOUND {
		t.Errorf("resume unknown id: %v, want ENOTFOUND", err)
	}
}

func TestService_SlowClientIsCutOff(t *testing.T) {
	e := MustEnv(t, "", func(s *pubsub.Service) { s.ListenerBuffer = 4 })
	q := `SELECT id, port FROM services`
	slow := newMirror(mustSubscribe(t, e.svc, q))
	slow.ReadSnapshot(t, wait)
	for i := 0; i < 10; i++ {
		e.exec(`INSERT INTO services (id, port) VALUES ('s` + string(rune('a'+i)) + `', 1)`)
	}
	waitLastChange(t, e.svc, slow.sub.ID(), 10)
	var err error
	for err == nil {
		var ev patina.Event
		if ev, err = slow.sub.Next(ctxWithin(t, wait)); err == nil {
			slow.Apply(t, ev)
		}
	}
	if patina.ErrorCode(err) != patina.EUNAVAILABLE || !strings.Contains(err.Error(), "from=") {
		t.Fatalf("slow client: %v, want an error telling where to resume", err)
	}
	if q := e.svc.Queues()["subscription_clients"]; q.Dropped != 1 {
		t.Errorf("clients queue %+v, want one cut off", q)
	}
	sub, err := e.svc.Resume(context.Background(), slow.sub.ID(), patina.SubscribeOptions{HasFrom: true, From: slow.Last})
	if err != nil {
		t.Fatal(err)
	}
	slow.attach(sub)
	defer sub.Close()
	slow.Converge(t, wait, func() []string { return rowsOf(t, e.db, patina.Statement{SQL: q}) })
}

func TestService_Updates(t *testing.T) {
	e := MustEnv(t, "", nil)
	st, err := e.svc.Updates(context.Background(), "services")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e.exec(`INSERT INTO services (id, port) VALUES ('a', 1)`)
	e.exec(`UPDATE services SET port = 2 WHERE id = 'a'`)
	e.exec(`DELETE FROM services WHERE id = 'a'`)
	// Notifications of one key coalesce between two deliveries; the last
	// one must be the delete.
	var got []string
	for len(got) == 0 || got[len(got)-1] != `delete "a"` {
		n, err := st.Next(ctxWithin(t, wait))
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, n.Kind.String()+" "+pubsubtest.Format(n.PK))
	}
	for _, g := range got[:len(got)-1] {
		if g != `update "a"` {
			t.Errorf("notifications %v, want updates of a then its delete", got)
		}
	}
	if _, err := e.svc.Updates(context.Background(), "nope"); patina.ErrorCode(err) != patina.ENOTFOUND {
		t.Errorf("updates of an unknown table: %v, want ENOTFOUND", err)
	}
}

func TestService_RestoreSeesWritesMadeWhileDown(t *testing.T) {
	e := MustEnv(t, "", nil)
	q := `SELECT name, count(*) FROM services GROUP BY name`
	m := newMirror(mustSubscribe(t, e.svc, q))
	m.ReadSnapshot(t, wait)
	id := m.sub.ID()
	m.sub.Close()
	e.svc.Close()
	// Written without Notify: the service is down.
	if _, err := e.db.Transact(context.Background(), []patina.Statement{{SQL: `INSERT INTO services (id, name) VALUES ('a', 'web'), ('b', 'web')`}}); err != nil {
		t.Fatal(err)
	}
	e.open(nil)
	sub, err := e.svc.Resume(context.Background(), id, patina.SubscribeOptions{HasFrom: true, From: m.Last})
	if err != nil {
		t.Fatal(err)
	}
	m.attach(sub)
	defer sub.Close()
	m.Converge(t, wait, func() []string { return rowsOf(t, e.db, patina.Statement{SQL: q}) })
}

func waitLastChange(t *testing.T, svc patina.SubscriptionService, id string, want uint64) {
	t.Helper()
	waitFor(t, wait, func() (bool, string) {
		info, err := svc.SubscriptionInfo(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return info.LastChangeID >= want, fmt.Sprintf("subscription %s is at change %d, want %d", id, info.LastChangeID, want)
	})
}

// waitFor polls cond with a growing interval until it holds, failing at
// the deadline with its last detail.
func waitFor(t testing.TB, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.Millisecond
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", d, detail)
		}
		tm := time.NewTimer(tick)
		<-tm.C
		tick = min(2*tick, 50*time.Millisecond)
	}
}

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

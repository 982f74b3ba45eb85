package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/client"
	"github.com/patinadb/patina/internal/testcluster"
	"github.com/patinadb/patina/pubsub"
	"github.com/patinadb/patina/pubsub/pubsubtest"
)

const wait = 15 * time.Second

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustTransact(t *testing.T, c *client.Client, sqls ...string) client.TxResult {
	t.Helper()
	stmts := make([]patina.Statement, len(sqls))
	for i, s := range sqls {
		stmts[i] = patina.Statement{SQL: s}
	}
	res, err := c.Transact(ctxWithin(t, wait), stmts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestClient_SubscriptionResumesAcrossRestart: the client's stream breaks
// when its agent restarts; it resumes by itself from the last change and
// sees the writes made meanwhile, exactly once and in order.
func TestClient_SubscriptionResumesAcrossRestart(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Nodes: 2, Subscriptions: true, API: true})
	testcluster.WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(1) })
	writer := client.New(c.Nodes[0].API.URL())
	reader := client.New(c.Nodes[1].API.URL())
	reader.MinBackoff = 20 * time.Millisecond
	q := patina.Statement{SQL: `SELECT id, port FROM services WHERE name = 'web'`}
	sub, err := reader.Subscribe(ctxWithin(t, wait), q)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	m := pubsubtest.New(sub)
	m.ReadSnapshot(t, wait)
	want := func() []string { return pubsubtest.Rows(t, c.Nodes[1].Agent, q) }

	mustTransact(t, writer, `INSERT INTO services (id, name, port) VALUES ('a', 'web', 1)`)
	testcluster.WaitFor(t, wait, "convergence", func() (bool, string) { return c.Converged("services") })
	m.Converge(t, wait, want)
	seen := m.Last

	c.Kill(1)
	mustTransact(t, writer, `INSERT INTO services (id, name, port) VALUES ('b', 'web', 2)`)
	mustTransact(t, writer, `UPDATE services SET port = 3 WHERE id = 'a'`)
	c.Restart(1)
	mustTransact(t, writer, `DELETE FROM services WHERE id = 'b'`)
	testcluster.WaitFor(t, wait, "convergence", func() (bool, string) { return c.Converged("services") })
	m.Converge(t, wait, want)
	// The mirror checked that change ids stayed contiguous across the
	// restart and that no row was inserted twice; the stream went on past
	// what it had seen before the restart.
	if m.Last <= seen {
		t.Errorf("no change after the restart (last %d, before %d): %s", m.Last, seen, pubsubtest.Describe(m.Changes))
	}
}

// TestClient_ResumeTooOld: a resume from a change the agent no longer keeps
// gives up at once with EGONE and says to resubscribe.
func TestClient_ResumeTooOld(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Nodes: 1, Subscriptions: true, API: true,
		TunePubSub: func(_ int, s *pubsub.Service) { s.MaxChanges = 2 }})
	cl := client.New(c.Nodes[0].API.URL())
	q := patina.Statement{SQL: `SELECT id FROM services`}
	sub, err := cl.Subscribe(ctxWithin(t, wait), q)
	if err != nil {
		t.Fatal(err)
	}
	m := pubsubtest.New(sub)
	m.ReadSnapshot(t, wait)
	sub.Close()
	for i := 0; i < 5; i++ {
		mustTransact(t, cl, fmt.Sprintf(`INSERT INTO services (id) VALUES ('s%d')`, i))
	}
	testcluster.WaitFor(t, wait, "5 changes", func() (bool, string) {
		in, err := cl.SubscriptionInfo(ctxWithin(t, wait), sub.ID())
		return err == nil && in.LastChangeID == 5, fmt.Sprintf("%+v %v", in, err)
	})
	_, err = cl.Resume(ctxWithin(t, wait), sub.ID(), 1)
	if patina.ErrorCode(err) != patina.EGONE || !strings.Contains(err.Error(), "resubscribe") {
		t.Fatalf("resume from a trimmed change: %v, want EGONE saying to resubscribe", err)
	}
	infos, err := cl.Subscriptions(ctxWithin(t, wait))
	if err != nil || len(infos) != 1 || infos[0].OldestChangeID != 4 {
		t.Errorf("list: %+v %v, want one subscription keeping changes from 4", infos, err)
	}
}

// TestClient_GivesUpAfterAttempts: with the agent gone for good, Next gives
// up after ResumeAttempts with an actionable error.
func TestClient_GivesUpAfterAttempts(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Nodes: 1, Subscriptions: true, API: true})
	cl := client.New(c.Nodes[0].API.URL())
	cl.ResumeAttempts, cl.MinBackoff, cl.MaxBackoff = 3, time.Millisecond, 5*time.Millisecond
	sub, err := cl.Subscribe(ctxWithin(t, wait), patina.Statement{SQL: `SELECT id FROM services`}, client.SkipRows())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	c.Kill(0)
	_, err = sub.Next(ctxWithin(t, wait))
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 resume attempts") {
		t.Fatalf("next after the agent died: %v", err)
	}
}

func TestClient_Updates(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Nodes: 1, Subscriptions: true, API: true})
	cl := client.New(c.Nodes[0].API.URL())
	st, err := cl.Updates(ctxWithin(t, wait), "health_checks")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mustTransact(t, cl, `INSERT INTO health_checks (service_id, name, status) VALUES ('s1', 'http', 'passing')`)
	n, err := st.Next(ctxWithin(t, wait))
	if err != nil || n.Kind != patina.ChangeUpdate || pubsubtest.Format(n.PK) != `"s1"|"http"` {
		t.Fatalf("notification %+v %v", n, err)
	}
	mustTransact(t, cl, `DELETE FROM health_checks`)
	n, err = st.Next(ctxWithin(t, wait))
	if err != nil || n.Kind != patina.ChangeDelete {
		t.Fatalf("notification %+v %v, want the delete", n, err)
	}
	if _, err := cl.Updates(ctxWithin(t, wait), "nope"); patina.ErrorCode(err) != patina.ENOTFOUND {
		t.Errorf("updates of an unknown table: %v", err)
	}
}

// TestClient_WaitAll covers ?wait= through HTTP: the answer comes once
// every node has the row, and a partitioned node makes it time out naming
// that node while the write stays committed.
func TestClient_WaitAll(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Nodes: 3, API: true})
	testcluster.WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(2) })
	cl := client.New(c.Nodes[0].API.URL())
	for i := 0; i < 5; i++ {
		_, err := cl.Transact(ctxWithin(t, wait), []patina.Statement{{SQL: fmt.Sprintf(`INSERT INTO machines (id) VALUES ('m%d')`, i)}}, client.Wait("all"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes {
			rows, err := n.Query(fmt.Sprintf(`SELECT id FROM machines WHERE id = 'm%d'`, i))
			if err != nil || len(rows) != 1 {
				t.Fatalf("wait=all returned but node %d answers %v %v", n.Index, rows, err)
			}
		}
	}
	c.Net.Partition([]string{c.Nodes[0].Addr, c.Nodes[1].Addr}, []string{c.Nodes[2].Addr})
	_, err := cl.Transact(ctxWithin(t, wait), []patina.Statement{{SQL: `INSERT INTO machines (id) VALUES ('cut')`}}, client.Wait("all"), client.Timeout(time.Second))
	var txErr *client.TxError
	if !errors.As(err, &txErr) || patina.ErrorCode(err) != patina.ETIMEOUT || txErr.Result.Version == 0 {
		t.Fatalf("wait across a partition: %v, want a timeout carrying the committed version", err)
	}
	missing := c.Nodes[2].Store.Actor().String()
	if !strings.Contains(err.Error(), missing) || strings.Contains(err.Error(), c.Nodes[1].Store.Actor().String()) {
		t.Errorf("timeout error %q should name node 2 (%s) and only it", err, missing)
	}
	if !strings.Contains(err.Error(), "stays committed") {
		t.Errorf("timeout error %q should say the write stays committed", err)
	}
	if _, err := cl.Transact(ctxWithin(t, wait), []patina.Statement{{SQL: `INSERT INTO machines (id) VALUES ('two')`}}, client.Wait("2")); err != nil {
		t.Errorf("wait=2 with two connected nodes: %v", err)
	}
	c.Net.Heal()
	if _, err := cl.Transact(ctxWithin(t, 30*time.Second), []patina.Statement{{SQL: `INSERT INTO machines (id) VALUES ('healed')`}}, client.Wait("all"), client.Timeout(20*time.Second)); err != nil {
		t.Errorf("wait=all after healing: %v", err)
	}
}

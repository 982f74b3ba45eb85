package testcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/pubsub/pubsubtest"
)

// subscriptionShapes covers every strategy and the shapes Corrosion gets
// wrong: joins, filters on non-key columns, ORDER BY/LIMIT, subqueries,
// aggregates, GROUP BY, DISTINCT, compound selects and CTEs.
var subscriptionShapes = []patina.Statement{
	{SQL: `SELECT id, name, port FROM services WHERE name = 'web'`},
	{SQL: `SELECT id, port FROM services WHERE port > 300`},
	{SQL: `SELECT * FROM machines WHERE region = ? AND state = 'started'`, Params: []patina.Value{patina.Text("fra")}},
	{SQL: `SELECT service_id, name, status FROM health_checks WHERE status = :s`, Named: map[string]patina.Value{":s": patina.Text("critical")}},
	{SQL: `SELECT id, port * 2 AS p2, upper(name) FROM services WHERE port BETWEEN 100 AND 500 AND name != 'db'`},
	{SQL: `SELECT s.id, s.port, m.region FROM services s JOIN machines m ON m.id = s.machine_id`},
	{SQL: `SELECT s.id, h.name, h.status FROM services s LEFT JOIN health_checks h ON h.service_id = s.id`},
	{SQL: `SELECT name, count(*), sum(port), max(port) FROM services GROUP BY name`},
	{SQL: `SELECT DISTINCT region FROM machines`},
	{SQL: `SELECT count(*) FROM health_checks WHERE status = 'passing'`},
	{SQL: `SELECT id FROM services ORDER BY port DESC, id LIMIT 3`},
	{SQL: `SELECT id, name FROM services WHERE machine_id IN (SELECT id FROM machines WHERE state = 'started')`},
	{SQL: `SELECT name FROM services UNION SELECT name FROM machines`},
	{SQL: `WITH c AS (SELECT service_id, count(*) AS n FROM health_checks GROUP BY service_id) SELECT service_id, n FROM c WHERE n > 1`},
	{SQL: `SELECT m.region, count(s.id) FROM machines m LEFT JOIN services s ON s.machine_id = m.id GROUP BY m.region`},
	{SQL: `SELECT id FROM services WHERE port = '250'`}, // text constant against an INTEGER column
}

// randomWrite returns one statement of a random workload over small key
// spaces, so rows are inserted, updated, moved in and out of filters and
// deleted concurrently from several nodes.
func randomWrite(rng *rand.Rand) string {
	names := []string{"web", "api", "db"}
	switch rng.IntN(7) {
	case 0, 1:
		return fmt.Sprintf(`INSERT INTO services (id, name, machine_id, port) VALUES ('s%d', '%s', 'm%d', %d)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, machine_id = excluded.machine_id, port = excluded.port`,
			rng.IntN(10), names[rng.IntN(3)], rng.IntN(5), 50*rng.IntN(12))
	case 2:
		return fmt.Sprintf(`UPDATE services SET port = %d WHERE id = 's%d'`, 50*rng.IntN(12), rng.IntN(10))
	case 3:
		return fmt.Sprintf(`DELETE FROM services WHERE id = 's%d'`, rng.IntN(10))
	case 4:
		return fmt.Sprintf(`INSERT INTO machines (id, name, region, state) VALUES ('m%d', '%s', '%s', '%s')
			ON CONFLICT (id) DO UPDATE SET region = excluded.region, state = excluded.state`,
			rng.IntN(5), names[rng.IntN(3)], []string{"iad", "fra", "syd"}[rng.IntN(3)], []string{"started", "stopped"}[rng.IntN(2)])
	case 5:
		return fmt.Sprintf(`INSERT INTO health_checks (service_id, name, status) VALUES ('s%d', '%s', '%s')
			ON CONFLICT (service_id, name) DO UPDATE SET status = excluded.status`,
			rng.IntN(10), []string{"http", "tcp"}[rng.IntN(2)], []string{"passing", "critical", "warning"}[rng.IntN(3)])
	default:
		if rng.IntN(2) == 0 {
			return fmt.Sprintf(`DELETE FROM health_checks WHERE service_id = 's%d'`, rng.IntN(10))
		}
		return fmt.Sprintf(`DELETE FROM machines WHERE id = 'm%d'`, rng.IntN(5))
	}
}

// TestCluster_SubscriptionsMatchQueries is the subscriptions property: while
// random writes land on every node, a client applying each subscription's
// event stream to its own rows ends, at quiescence, with exactly the rows
// re-running the query on that node gives.
func TestCluster_SubscriptionsMatchQueries(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			c := New(t, Config{Nodes: 3, Regions: []string{"iad", "fra"}, Seed: int64(seed), Subscriptions: true})
			WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(2) })
			rng := rand.New(rand.NewPCG(seed, 7))
			// Some rows before anyone subscribes.
			for i := 0; i < 10; i++ {
				c.Exec(rng.IntN(3), randomWrite(rng))
			}
			type watch struct {
				node int
				st   patina.Statement
				m    *pubsubtest.Mirror
			}
			var watches []*watch
			for _, node := range []int{1, 2} {
				for _, st := range subscriptionShapes {
					sub, err := c.Nodes[node].PubSub.Subscribe(context.Background(), st, patina.SubscribeOptions{})
					if err != nil {
						t.Fatalf("node %d: subscribe %q: %v", node, st.SQL, err)
					}
					t.Cleanup(func() { sub.Close() })
					w := &watch{node: node, st: st, m: pubsubtest.New(sub)}
					w.m.ReadSnapshot(t, 10*time.Second)
					watches = append(watches, w)
				}
			}
			// Clients read concurrently with the writes, as real ones do.
			ctx, stop := context.WithCancel(context.Background())
			var readers sync.WaitGroup
			errs := make(chan error, len(watches))
			for _, w := range watches {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for {
						ev, err := w.m.Stream.Next(ctx)
						if err != nil {
							if ctx.Err() == nil {
								errs <- fmt.Errorf("node %d %q: %v", w.node, w.st.SQL, err)
							}
							return
						}
						if err := w.m.Step(ev); err != nil {
							errs <- fmt.Errorf("node %d %q: %v", w.node, w.st.SQL, err)
							return
						}
					}
				}()
			}
			var writers sync.WaitGroup
			for wr := 0; wr < 3; wr++ {
				r := rand.New(rand.NewPCG(seed, uint64(100+wr)))
				writers.Add(1)
				go func() {
					defer writers.Done()
					for i := 0; i < 40; i++ {
						stmts := []string{randomWrite(r)}
						if r.IntN(4) == 0 {
							stmts = append(stmts, randomWrite(r))
						}
						c.Exec(wr, stmts...)
					}
				}()
			}
			writers.Wait()
			WaitFor(t, 30*time.Second, "convergence", func() (bool, string) {
				return c.Converged("services", "machines", "health_checks")
			})
			stop()
			readers.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for _, w := range watches {
				n := c.Nodes[w.node]
				w.m.Converge(t, 10*time.Second, func() []string { return pubsubtest.Rows(t, n.Agent, w.st) })
			}
			var strategies []string
			for _, in := range c.Nodes[1].PubSub.Subscriptions(context.Background()) {
				strategies = append(strategies, in.Strategy)
			}
			t.Logf("strategies: %s", strings.Join(strategies, ", "))
		})
	}
}

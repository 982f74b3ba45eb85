package client_test

import (
	"context"
	"fmt"
	"os"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/client"
	"github.com/patinadb/patina/internal/testcluster"
)

// startAgent runs a real one-node patina agent in process (store, hub,
// subscriptions and HTTP API, wired as `patina agent` wires them) and
// returns its API address.
func startAgent() (addr string, stop func()) {
	tb := &exampleTB{}
	c := testcluster.New(tb, testcluster.Config{Nodes: 1, Subscriptions: true, API: true})
	return c.Nodes[0].API.URL(), tb.cleanup
}

func Example() {
	addr, stop := startAgent()
	defer stop()
	ctx := context.Background()
	c := client.New(addr)

	res, err := c.Transact(ctx, []patina.Statement{
		{SQL: "INSERT INTO services (id, name, address, port) VALUES ('web-1', 'web', '10.0.0.1', 8080)"},
		{SQL: "INSERT INTO services (id, name, address, port) VALUES (?, ?, ?, ?)",
			Params: []patina.Value{patina.Text("web-2"), patina.Text("web"), patina.Text("10.0.0.2"), patina.Int(8080)}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("version", res.Version, "rows", res.RowsAffected)

	rows, err := c.Query(ctx, patina.Statement{SQL: "SELECT id, address FROM services ORDER BY id"})
	if err != nil {
		panic(err)
	}
	fmt.Println(rows.Columns)
	for _, r := range rows.Rows {
		fmt.Println(r[0], r[1])
	}
	// Output:
	// version 1 rows [1 1]
	// [id address]
	// "web-1" "10.0.0.1"
	// "web-2" "10.0.0.2"
}

// A program routing traffic subscribes to the instances of a service and
// applies the changes as they come.
func ExampleClient_Subscribe() {
	addr, stop := startAgent()
	defer stop()
	ctx := context.Background()
	c := client.New(addr)
	exec := func(sql string) {
		if _, err := c.Transact(ctx, []patina.Statement{{SQL: sql}}); err != nil {
			panic(err)
		}
	}
	exec("INSERT INTO services (id, name, address, port) VALUES ('web-1', 'web', '10.0.0.1', 8080)")

	sub, err := c.Subscribe(ctx, patina.Statement{SQL: "SELECT id, address, port FROM services WHERE name = 'web'"})
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	next := func() patina.Event {
		ev, err := sub.Next(ctx)
		if err != nil {
			panic(err)
		}
		return ev
	}
	fmt.Println("columns:", next().Columns)
	ev := next()
	fmt.Println("row", ev.RowID, ev.Cells)
	fmt.Println("end of rows at change", next().ChangeID)

	exec("INSERT INTO services (id, name, address, port) VALUES ('web-2', 'web', '10.0.0.2', 8080)")
	exec("UPDATE services SET port = 9090 WHERE id = 'web-1'")
	exec("UPDATE services SET name = 'old-web' WHERE id = 'web-2'") // leaves the result
	for i := 0; i < 3; i++ {
		ev := next()
		fmt.Println(ev.Change, "row", ev.RowID, ev.Cells, "change", ev.ChangeID)
	}
	// Output:
	// columns: [id address port]
	// row 1 ["web-1" "10.0.0.1" 8080]
	// end of rows at change 0
	// insert row 2 ["web-2" "10.0.0.2" 8080] change 1
	// update row 1 ["web-1" "10.0.0.1" 9090] change 2
	// delete row 2 ["web-2" "10.0.0.2" 8080] change 3
}

// Aggregates stay correct: a changed group is a delete of the old row and
// an insert of the new one.
func ExampleClient_Subscribe_aggregate() {
	addr, stop := startAgent()
	defer stop()
	ctx := context.Background()
	c := client.New(addr)
	sub, err := c.Subscribe(ctx, patina.Statement{SQL: "SELECT name, count(*) FROM services GROUP BY name"})
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	for i := 0; i < 2; i++ { // columns, end of rows (no rows yet)
		if _, err := sub.Next(ctx); err != nil {
			panic(err)
		}
	}
	for _, id := range []string{"a", "b"} {
		if _, err := c.Transact(ctx, []patina.Statement{{SQL: "INSERT INTO services (id, name) VALUES ('" + id + "', 'web')"}}); err != nil {
			panic(err)
		}
		ev, err := sub.Next(ctx)
		for err == nil && ev.Change == patina.ChangeDelete {
			fmt.Println(ev.Change, ev.Cells)
			ev, err = sub.Next(ctx)
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(ev.Change, ev.Cells)
	}
	// Output:
	// insert ["web" 1]
	// delete ["web" 1]
	// insert ["web" 2]
}

// Transact can wait until the write is visible on other nodes (here the
// only node).
func ExampleWait() {
	addr, stop := startAgent()
	defer stop()
	res, err := client.New(addr).Transact(context.Background(),
		[]patina.Statement{{SQL: "INSERT INTO machines (id, name) VALUES ('m-1', 'host-1')"}},
		client.Wait("all"))
	if err != nil {
		panic(err)
	}
	fmt.Println("applied everywhere:", res.Version)
	// Output:
	// applied everywhere: 1
}

// exampleTB lets examples run a testcluster outside a test.
type exampleTB struct {
	cleanups []func()
}

func (*exampleTB) Helper()                           {}
func (*exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (*exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (*exampleTB) Logf(string, ...any)               {}
func (tb *exampleTB) Cleanup(f func())               { tb.cleanups = append(tb.cleanups, f) }

func (tb *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "patina-example-")
	if err != nil {
		panic(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (tb *exampleTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}

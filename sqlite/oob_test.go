package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// plainExec writes to the database file with a bare SQLite connection, as
// the sqlite3 shell or another program would: no patina code involved.
func plainExec(t *testing.T, path, sql string) {
	t.Helper()
	c, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Exec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestDB_OutOfBandWrites checks that writes made by a plain SQLite client
// while the agent is down are captured by the triggers and join the next
// transaction, and that a replica converges on them.
func TestDB_OutOfBandWrites(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	MustApply(t, b, *MustExec(t, a, `INSERT INTO machines (id, name, state) VALUES ('m1', 'web', 'up'), ('m2', 'db', 'up')`))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	plainExec(t, a.Path, `
BEGIN;
INSERT INTO machines (id, name) VALUES ('m3', 'cache');
UPDATE machines SET state = 'down' WHERE id = 'm1';
DELETE FROM machines WHERE id = 'm2';
INSERT INTO kv VALUES (x'01', 'v');
COMMIT;
UPDATE kv SET v = 'w';`)
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	res, err := a.Transact(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := res.Changeset
	if cs == nil || cs.Version != 2 {
		t.Fatalf("changeset %+v", cs)
	}
	// m3: sentinel + 3 columns; m1.state; m2 tombstone; kv: sentinel + v.
	if len(cs.Changes) != 4+1+1+2 {
		t.Fatalf("%d changes: %s", len(cs.Changes), renderCS(cs))
	}
	MustApply(t, b, *cs)
	assertConverged(t, a, b)
	if got := MustQuery(t, b, `SELECT id, state FROM machines ORDER BY id`); !slices.Equal(got, []string{`"m1"|"down"`, `"m3"|NULL`}) {
		t.Fatalf("replica rows %v", got)
	}
	// Nothing is pending any more.
	if res, err := a.Transact(context.Background(), nil); err != nil || res.Changeset != nil {
		t.Fatalf("second flush: %v %+v", err, res)
	}
}

// TestDB_OutOfBandWritesWhileOpen checks a plain client writing next to a
// running store: its writes join the next local transaction.
func TestDB_OutOfBandWritesWhileOpen(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	plainExec(t, a.Path, `INSERT INTO machines (id, name) VALUES ('oob', 'x')`)
	cs := MustTransact(t, a, patina.Statement{SQL: `INSERT INTO machines (id, name) VALUES ('api', 'y')`})
	if cs.Version != 1 || len(cs.Changes) != 8 {
		t.Fatalf("changeset: %s", renderCS(cs))
	}
	MustApply(t, b, *cs)
	assertConverged(t, a, b)
	// Remote changes applied meanwhile are not mistaken for local ones.
	MustApply(t, a, *MustExec(t, b, `UPDATE machines SET state = 'remote'`))
	if res, err := a.Transact(context.Background(), nil); err != nil || res.Changeset != nil {
		t.Fatalf("flush after apply: %v %+v", err, res)
	}
}

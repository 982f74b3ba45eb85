package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/patinadb/patina"
)

func TestDB_TransactAndApply(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	cs := MustExec(t, a, `INSERT INTO machines (id, name, state) VALUES ('m1', 'web', 'started')`,
		`INSERT INTO pairs VALUES (1, x'00ff', -0.0)`)
	if cs == nil || cs.Version != 1 || len(cs.Changes) != 1+3+1+1 {
		t.Fatalf("changeset = %+v", cs)
	}
	if got := MustApply(t, b, *cs); got[0] != patina.ApplyNew {
		t.Fatalf("outcome %v", got)
	}
	if got := MustApply(t, b, *cs); got[0] != patina.ApplyDuplicate {
		t.Fatalf("second apply outcome %v", got)
	}
	da, ca := dumpState(t, a)
	db, cb := dumpState(t, b)
	if !slices.Equal(da, db) || !slices.Equal(ca, cb) {
		t.Fatalf("diverged:\n%v\n%v\n%v\n%v", da, db, ca, cb)
	}
	cs2 := MustExec(t, a, `UPDATE machines SET state = 'stopped' WHERE id = 'm1'`)
	if cs2.Version != 2 || len(cs2.Changes) != 1 || cs2.Changes[0].Column != "state" || cs2.Changes[0].ColVersion != 2 {
		t.Fatalf("update changeset = %+v", cs2)
	}
	cs3 := MustExec(t, a, `DELETE FROM machines WHERE id = 'm1'`)
	MustApply(t, b, *cs3, *cs2)
	if rows := MustQuery(t, b, `SELECT * FROM machines`); len(rows) != 0 {
		t.Fatalf("rows after delete: %v", rows)
	}
	da, ca = dumpState(t, a)
	db, cb = dumpState(t, b)
	if !slices.Equal(da, db) || !slices.Equal(ca, cb) {
		t.Fatalf("diverged:\n%v\n%v\n%v\n%v", da, db, ca, cb)
	}
	if res, err := a.Transact(context.Background(), []patina.Statement{{SQL: `SELECT 1`}}); err != nil || res.Changeset != nil {
		t.Fatalf("read-only tx: %v %+v", err, res)
	}
	st := b.SyncState()
	if st.Heads[a.Actor()] != 3 {
		t.Fatalf("heads %v", st.Heads)
	}
}

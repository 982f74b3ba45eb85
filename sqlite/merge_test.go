package sqlite

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// tx is one transaction's statements.
type tx []string

// TestDB_Apply_MergeRules runs every merge rule (DESIGN.md §1) through real
// stores: a setup replicated everywhere, then concurrent transactions on
// nodes A and B, exchanged; node C1 receives A's side first, node C2 B's
// side first. Every node must end with the wanted rows and identical clocks.
func TestDB_Apply_MergeRules(t *testing.T) {
	const m1 = `INSERT INTO machines (id, name, state, cpus) VALUES ('m1', 'old', 'created', 4)`
	tests := []struct {
		name  string
		setup []string
		a, b  []tx
		query string
		want  []string
	}{
		{
			name:  "equal col_version larger value wins",
			setup: []string{m1},
			a:     []tx{{`UPDATE machines SET state = 'started' WHERE id = 'm1'`}},
			b:     []tx{{`UPDATE machines SET state = 'destroyed' WHERE id = 'm1'`}},
			want:  []string{`"m1"|"old"|"started"|4`},
		},
		{
			name:  "equal col_version larger value wins from the other side",
			setup: []string{m1},
			a:     []tx{{`UPDATE machines SET state = 'destroyed' WHERE id = 'm1'`}},
			b:     []tx{{`UPDATE machines SET state = 'started' WHERE id = 'm1'`}},
			want:  []string{`"m1"|"old"|"started"|4`},
		},
		{
			name:  "equal col_version across storage classes",
			setup: []string{m1},
			a:     []tx{{`UPDATE machines SET state = 42 WHERE id = 'm1'`}},
			b:     []tx{{`UPDATE machines SET state = x'00' WHERE id = 'm1'`}},
			want:  []string{`"m1"|"old"|x'00'|4`},
		},
		{
			name:  "more edits beat a larger value",
			setup: []string{m1},
			a:     []tx{{`UPDATE machines SET state = 'a' WHERE id = 'm1'`}, {`UPDATE machines SET state = 'b' WHERE id = 'm1'`}},
			b:     []tx{{`UPDATE machines SET state = 'zzz' WHERE id = 'm1'`}},
			want:  []string{`"m1"|"old"|"b"|4`},
		},
		{
			name:  "delete beats a concurrent update",
			setup: []string{m1},
			a:     []tx{{`DELETE FROM machines WHERE id = 'm1'`}},
			b:     []tx{{`UPDATE machines SET state = 'zzz' WHERE id = 'm1'`}, {`UPDATE machines SET name = 'n', cpus = 9 WHERE id = 'm1'`}},
			want:  nil,
		},
		{
			name:  "re-insert after delete beats a concurrent delete with fresh values",
			setup: []string{m1},
			a:     []tx{{`DELETE FROM machines WHERE id = 'm1'`}, {`INSERT INTO machines (id, name) VALUES ('m1', 'new')`}},
			b:     []tx{{`DELETE FROM machines WHERE id = 'm1'`}},
			want:  []string{`"m1"|"new"|NULL|1`},
		},
		{
			name:  "re-insert in one transaction beats a concurrent update",
			setup: []string{m1},
			a:     []tx{{`DELETE FROM machines WHERE id = 'm1'`, `INSERT INTO machines (id, name) VALUES ('m1', 'new')`}},
			b:     []tx{{`UPDATE machines SET state = 'zzz', cpus = 99 WHERE id = 'm1'`}},
			want:  []string{`"m1"|"new"|NULL|1`},
		},
		{
			name: "concurrent inserts of the same key converge",
			a:    []tx{{`INSERT INTO machines (id, name, cpus) VALUES ('m1', 'a', 2)`}},
			b:    []tx{{`INSERT INTO machines (id, name, cpus) VALUES ('m1', 'b', 1)`}},
			want: []string{`"m1"|"b"|NULL|2`},
		},
		{
			name:  "concurrent deletes converge",
			setup: []string{m1},
			a:     []tx{{`DELETE FROM machines WHERE id = 'm1'`}},
			b:     []tx{{`DELETE FROM machines WHERE id = 'm1'`}},
			want:  nil,
		},
		{
			name:  "concurrent re-inserts converge",
			setup: []string{m1, `DELETE FROM machines WHERE id = 'm1'`},
			a:     []tx{{`INSERT INTO machines (id, name) VALUES ('m1', 'a')`}},
			b:     []tx{{`INSERT INTO machines (id, state) VALUES ('m1', 'b')`}},
			want:  []string{`"m1"|"a"|"b"|1`},
		},
		{
			name:  "insert or replace rewrites every column",
			setup: []string{m1},
			a:     []tx{{`INSERT OR REPLACE INTO machines (id, name) VALUES ('m1', 'y')`}},
			want:  []string{`"m1"|"y"|NULL|1`},
		},
		{
			name:  "insert or replace against a concurrent update",
			setup: []string{m1},
			a:     []tx{{`REPLACE INTO machines (id, name) VALUES ('m1', 'y')`}},
			b:     []tx{{`UPDATE machines SET state = 'zzz' WHERE id = 'm1'`}},
			// Both wrote state at col_version 2: 'zzz' > NULL.
			want: []string{`"m1"|"y"|"zzz"|1`},
		},
		{
			name:  "upsert updates the existing row",
			setup: []string{m1},
			a:     []tx{{`INSERT INTO machines (id, name) VALUES ('m1', 'up') ON CONFLICT (id) DO UPDATE SET cpus = cpus + 1`}},
			b:     []tx{{`INSERT INTO machines (id, name) VALUES ('m2', 'up') ON CONFLICT (id) DO UPDATE SET cpus = cpus + 1`}},
			want:  []string{`"m1"|"old"|"created"|5`, `"m2"|"up"|NULL|1`},
		},
		{
			name:  "update of the primary key is a delete and an insert",
			setup: []string{m1},
			a:     []tx{{`UPDATE machines SET id = 'm2' WHERE id = 'm1'`}},
			b:     []tx{{`UPDATE machines SET state = 'zzz' WHERE id = 'm1'`}},
			want:  []string{`"m2"|"old"|"created"|4`},
		},
		{
			name:  "update of the primary key onto a deleted key",
			setup: []string{m1, `INSERT INTO machines (id) VALUES ('m2')`, `DELETE FROM machines WHERE id = 'm2'`},
			a:     []tx{{`UPDATE machines SET id = 'm2', cpus = 8 WHERE id = 'm1'`}},
			want:  []string{`"m2"|"old"|"created"|8`},
		},
		{
			name: "multi-statement transaction",
			a: []tx{{
				`INSERT INTO machines (id, name) VALUES ('m1', 'a'), ('m2', 'b')`,
				`UPDATE machines SET state = 'up' WHERE id = 'm1'`,
				`INSERT INTO machines (id) VALUES ('m3')`,
				`DELETE FROM machines WHERE id = 'm2'`,
			}},
			b:    []tx{{`INSERT INTO machines (id, name) VALUES ('m2', 'c')`}},
			want: []string{`"m1"|"a"|"up"|1`, `"m3"|""|NULL|1`},
		},
		{
			name:  "composite blob key",
			query: `SELECT * FROM pairs ORDER BY a, b`,
			setup: []string{`INSERT INTO pairs VALUES (1, x'00', 1.5), (2, x'', 2.5)`},
			a:     []tx{{`UPDATE pairs SET v = 9 WHERE a = 1`}, {`DELETE FROM pairs WHERE a = 2`}},
			b:     []tx{{`UPDATE pairs SET v = 7 WHERE a = 1`, `UPDATE pairs SET v = 3 WHERE a = 2`}},
			want:  []string{`1|x'00'|9`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// C1 hears A first, C2 hears B first.
			a, b, c1, c2 := MustOpen(t, testSchema), MustOpen(t, testSchema), MustOpen(t, testSchema), MustOpen(t, testSchema)
			for _, s := range tc.setup {
				cs := MustExec(t, a, s)
				MustApply(t, b, *cs)
				MustApply(t, c1, *cs)
				MustApply(t, c2, *cs)
			}
			var csA, csB []patina.Changeset
			for _, x := range tc.a {
				if cs := MustExec(t, a, x...); cs != nil {
					csA = append(csA, *cs)
				}
			}
			for _, x := range tc.b {
				if cs := MustExec(t, b, x...); cs != nil {
					csB = append(csB, *cs)
				}
			}
			MustApply(t, a, csB...)
			MustApply(t, b, csA...)
			MustApply(t, c1, csA...)
			MustApply(t, c1, csB...)
			MustApply(t, c2, csB...)
			MustApply(t, c2, csA...)
			q := tc.query
			if q == "" {
				q = `SELECT * FROM machines ORDER BY id`
			}
			for i, db := range []*DB{a, b, c1, c2} {
				if got := MustQuery(t, db, q); !slices.Equal(got, tc.want) {
					t.Errorf("%s: rows = %q, want %q", []string{"A", "B", "C1 (A first)", "C2 (B first)"}[i], got, tc.want)
				}
			}
			assertConverged(t, a, b, c1, c2)
		})
	}
}

// TestDB_Apply_SentinelSite checks that concurrent inserts keep the larger
// site's sentinel everywhere (rule 4 for row clocks).
func TestDB_Apply_SentinelSite(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	csA := MustExec(t, a, `INSERT INTO kv VALUES (x'01', 'a')`)
	csB := MustExec(t, b, `INSERT INTO kv VALUES (x'01', 'b')`)
	MustApply(t, a, *csB)
	MustApply(t, b, *csA)
	assertConverged(t, a, b)
	big := a.Actor()
	if string(b.actor[:]) > string(big[:]) {
		big = b.Actor()
	}
	_, clocks := dumpState(t, a)
	want := `kv:x'01'|"-1"|1|1|` + big.String() + `|0`
	if !slices.Contains(clocks, want) {
		t.Fatalf("clocks %q lack %q", clocks, want)
	}
}

// TestDB_Apply_OutOfOrderVersions delivers an actor's versions newest first:
// the update arrives before the insert that created the row, and the
// delete before both. Rows and clocks (including the sentinel's version and
// seq) must end as on the origin.
func TestDB_Apply_OutOfOrderVersions(t *testing.T) {
	a, b, c := MustOpen(t, testSchema), MustOpen(t, testSchema), MustOpen(t, testSchema)
	v1 := MustExec(t, a, `INSERT INTO machines (id, name, state) VALUES ('m1', 'web', 'created')`)
	v2 := MustExec(t, a, `UPDATE machines SET state = 'started' WHERE id = 'm1'`)
	v3 := MustExec(t, a, `INSERT INTO machines (id) VALUES ('m2')`)
	v4 := MustExec(t, a, `DELETE FROM machines WHERE id = 'm2'`)
	MustApply(t, b, *v2)
	if got := MustQuery(t, b, `SELECT * FROM machines`); !slices.Equal(got, []string{`"m1"|""|"started"|1`}) {
		t.Fatalf("after v2 alone: %q", got)
	}
	if st := b.SyncState(); !slices.Equal(st.Gaps[a.Actor()], []patina.Range{{Start: 1, End: 1}}) {
		t.Fatalf("gaps after v2 alone: %v", st.Gaps)
	}
	MustApply(t, b, *v4, *v1, *v3)
	assertConverged(t, a, b)
	if st := b.SyncState(); len(st.Gaps[a.Actor()]) != 0 || st.Heads[a.Actor()] != 4 {
		t.Fatalf("state after all: %+v", st)
	}
	// C learns the same from B's sync answers, newest first.
	syncPair(t, b, c, 0)
	assertConverged(t, a, b, c)
}

func TestDB_Transact_NoChangeNoVersion(t *testing.T) {
	a := MustOpen(t, testSchema)
	MustExec(t, a, `INSERT INTO machines (id, name) VALUES ('m1', 'web')`)
	before := ctlState(t, a)
	for _, sql := range []string{
		`UPDATE machines SET name = 'web' WHERE id = 'm1'`,
		`UPDATE machines SET name = name, cpus = cpus`,
		`UPDATE machines SET name = 'x' WHERE id = 'nope'`,
		`DELETE FROM machines WHERE id = 'nope'`,
		`INSERT OR IGNORE INTO machines (id) VALUES ('m1')`,
		`SELECT * FROM machines`,
	} {
		if cs := MustExec(t, a, sql); cs != nil {
			t.Errorf("%s: changeset %+v, want none", sql, cs)
		}
	}
	if after := ctlState(t, a); after != before {
		t.Fatalf("ctl %s -> %s", before, after)
	}
	if cs := MustExec(t, a, `UPDATE machines SET name = 'api'`); cs == nil || cs.Version != 2 {
		t.Fatalf("next version: %+v", cs)
	}
}

// TestDB_Transact_CapturesBytes checks that an UPDATE is captured when the
// stored bytes change even if SQL calls the values equal: a NOCASE column
// changing case, an integer becoming a real.
func TestDB_Transact_CapturesBytes(t *testing.T) {
	const schema = `CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT COLLATE NOCASE, v BLOB);`
	a, b := MustOpen(t, schema), MustOpen(t, schema)
	MustApply(t, b, *MustExec(t, a, `INSERT INTO t VALUES (1, 'abc', 1)`))
	for _, sql := range []string{`UPDATE t SET s = 'ABC'`, `UPDATE t SET v = 1.0`, `UPDATE t SET v = '1'`, `UPDATE t SET v = CAST('1' AS BLOB)`} {
		cs := MustExec(t, a, sql)
		if cs == nil {
			t.Fatalf("%s: not captured", sql)
		}
		MustApply(t, b, *cs)
		assertConverged(t, a, b)
	}
	if got := MustQueryRaw(t, b, `SELECT s, typeof(v) FROM t`); !slices.Equal(got, []string{`"ABC"|"blob"`}) {
		t.Fatalf("replica: %q", got)
	}
}

// TestDB_Apply_Idempotent applies every changeset twice and in reverse; the
// duplicate is reported and changes nothing.
func TestDB_Apply_Idempotent(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	var css []patina.Changeset
	for _, sql := range []string{
		`INSERT INTO machines (id, name) VALUES ('m1', 'a'), ('m2', 'b')`,
		`UPDATE machines SET state = 'x'`,
		`DELETE FROM machines WHERE id = 'm1'`,
		`INSERT INTO machines (id, name) VALUES ('m1', 'c')`,
	} {
		css = append(css, *MustExec(t, a, sql))
	}
	slices.Reverse(css)
	MustApply(t, b, css...)
	outs := MustApply(t, b, css...)
	for i, o := range outs {
		if o != patina.ApplyDuplicate {
			t.Errorf("second apply of changeset %d: %v", i, o)
		}
	}
	assertConverged(t, a, b)
	// Own changesets coming back are duplicates too.
	if outs := MustApply(t, a, css...); outs[0] != patina.ApplyDuplicate {
		t.Fatalf("own changeset: %v", outs)
	}
}

func TestDB_Transact_Errors(t *testing.T) {
	a := MustOpen(t, testSchema)
	ctx := context.Background()
	for _, tc := range []struct {
		sql  string
		want string
	}{
		{`BEGIN`, "BEGIN statements are not allowed"},
		{`CREATE TABLE x (id INTEGER PRIMARY KEY)`, "CREATE statements are not allowed"},
		{`DELETE FROM machines__patina_clock`, "bookkeeping tables"},
		{`SELECT 1; SELECT 2`, "more than one SQL statement"},
		{`INSERT INTO nope VALUES (1)`, "no such table: nope"},
		{`INSERT INTO machines (id) VALUES (NULL)`, "NOT NULL constraint failed"},
	} {
		_, err := a.Transact(ctx, []patina.Statement{{SQL: `INSERT INTO machines (id) VALUES ('ok')`}, {SQL: tc.sql}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.sql, err, tc.want)
		}
	}
	// Nothing of the failed transactions stayed.
	if got := MustQuery(t, a, `SELECT count(*) FROM machines`); got[0] != "0" {
		t.Fatalf("rows after failed transactions: %v", got)
	}
	if cs := MustExec(t, a, `INSERT INTO machines (id) VALUES ('m1')`); cs.Version != 1 || len(cs.Changes) != 4 {
		t.Fatalf("first successful changeset: %+v", cs)
	}
}

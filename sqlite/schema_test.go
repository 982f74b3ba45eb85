package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

func applySchema(db *DB, sql string) error {
	return db.ApplySchema([]SchemaFile{{Name: "test.sql", SQL: sql}})
}

func mustApplySchema(t testing.TB, db *DB, sql string) {
	t.Helper()
	if err := applySchema(db, sql); err != nil {
		t.Fatal(err)
	}
}

// TestParseSchema_Rules checks every refusal names the file, the table, the
// column and the rule.
func TestParseSchema_Rules(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{
			name: "nullable primary key",
			sql:  `CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT);`,
			want: []string{`schema file "services.sql"`, `table "t"`, `column "id"`, "primary key column is nullable", "rule: primary keys must be NOT NULL", `"id TEXT NOT NULL"`},
		},
		{
			name: "nullable composite key column",
			sql:  `CREATE TABLE t (a TEXT NOT NULL, b INTEGER, PRIMARY KEY (a, b));`,
			want: []string{`schema file "services.sql"`, `table "t"`, `column "b"`, "rule: primary keys must be NOT NULL"},
		},
		{
			name: "not null without default",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, v TEXT NOT NULL);`,
			want: []string{`schema file "services.sql"`, `table "t"`, `column "v"`, "NOT NULL without DEFAULT", "rule: non-key NOT NULL columns need a DEFAULT"},
		},
		{
			name: "unique index",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, v TEXT, w TEXT); CREATE UNIQUE INDEX t_vw ON t (v, w);`,
			want: []string{`schema file "services.sql"`, `table "t"`, `column "v, w"`, `UNIQUE index "t_vw"`, "rule: no UNIQUE indexes besides the primary key", "plain CREATE INDEX"},
		},
		{
			name: "unique column constraint",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, v TEXT UNIQUE);`,
			want: []string{`schema file "services.sql"`, `table "t"`, `column "v"`, "UNIQUE constraint", "rule: no UNIQUE indexes besides the primary key"},
		},
		{
			name: "foreign key",
			sql:  `CREATE TABLE p (id TEXT NOT NULL PRIMARY KEY); CREATE TABLE c (id TEXT NOT NULL PRIMARY KEY, pid TEXT REFERENCES p (id));`,
			want: []string{`schema file "services.sql"`, `table "c"`, `column "pid"`, `REFERENCES "p"`, "rule: no foreign keys"},
		},
		{
			name: "create table as",
			sql:  `CREATE TABLE t AS SELECT 1 AS id;`,
			want: []string{`schema file "services.sql"`, "table t", "CREATE TABLE ... AS SELECT is not allowed", "rule: replicated tables declare their columns and a primary key"},
		},
		{
			name: "create table if not exists as",
			sql:  "CREATE TABLE IF NOT EXISTS \"my t\"\nAS SELECT 1 AS id;",
			want: []string{`schema file "services.sql"`, `table "my t"`, "CREATE TABLE ... AS SELECT is not allowed"},
		},
		{
			name: "view",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY); CREATE VIEW v AS SELECT * FROM t;`,
			want: []string{`schema file "services.sql"`, `CREATE VIEW v AS SELECT * FROM t`, "CREATE VIEW is not allowed", "rule: schema files hold only CREATE TABLE, CREATE INDEX and DROP INDEX IF EXISTS"},
		},
		{
			name: "trigger",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;`,
			want: []string{`schema file "services.sql"`, "CREATE TRIGGER is not allowed", "rule: schema files hold only"},
		},
		{
			name: "insert",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY); INSERT INTO t VALUES ('x');`,
			want: []string{`schema file "services.sql"`, "INSERT INTO is not allowed", "rule: schema files hold only"},
		},
		{
			name: "temporary table",
			sql:  `CREATE TEMP TABLE t (id TEXT NOT NULL PRIMARY KEY);`,
			want: []string{`schema file "services.sql"`, "CREATE TEMP TABLE is not allowed"},
		},
		{
			name: "virtual table",
			sql:  `CREATE VIRTUAL TABLE t USING fts5(body);`,
			want: []string{`schema file "services.sql"`, "CREATE VIRTUAL TABLE is not allowed"},
		},
		{
			name: "no primary key",
			sql:  `CREATE TABLE t (a TEXT, b TEXT);`,
			want: []string{`schema file "services.sql"`, `table "t"`, "no PRIMARY KEY", "rule: every replicated table needs a non-null primary key"},
		},
		{
			name: "collated primary key",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY COLLATE NOCASE);`,
			want: []string{`schema file "services.sql"`, `table "t"`, `column "id"`, "COLLATE NOCASE", "rule: primary key columns compare bytewise"},
		},
		{
			name: "reserved name",
			sql:  `CREATE TABLE x__patina_clock (id TEXT NOT NULL PRIMARY KEY);`,
			want: []string{`schema file "services.sql"`, `table "x__patina_clock"`, "reserved"},
		},
		{
			name: "syntax error",
			sql:  `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY,);`,
			want: []string{`schema file "services.sql"`, "syntax error"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchema([]SchemaFile{{Name: "services.sql", SQL: tc.sql}})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// ApplySchema refuses the same way and changes nothing.
			db := MustOpen(t, "")
			if err := applySchema(db, tc.sql); err == nil {
				t.Fatal("ApplySchema accepted")
			}
			if n := len(db.Schema().Tables); n != 0 {
				t.Fatalf("schema has %d tables after refusal", n)
			}
		})
	}
}

// TestParseSchema_Accepts checks the shapes that must work: WITHOUT ROWID,
// composite keys, BLOB/TEXT/INTEGER keys, generated columns, comments and
// index statements.
func TestParseSchema_Accepts(t *testing.T) {
	const schema = `
-- services known to the cluster
CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port INTEGER) WITHOUT ROWID;
/* composite */ CREATE TABLE ep (svc BLOB NOT NULL, n INTEGER NOT NULL, addr TEXT, PRIMARY KEY (svc, n));
CREATE TABLE nums (id INTEGER PRIMARY KEY, v REAL, doubled REAL GENERATED ALWAYS AS (v * 2));
CREATE TABLE astable (id TEXT NOT NULL PRIMARY KEY, "as" TEXT DEFAULT 'as is');
CREATE INDEX ep_addr ON ep (addr);
DROP INDEX IF EXISTS gone;
`
	s, err := ParseSchema([]SchemaFile{{Name: "a.sql", SQL: schema}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.TableNames(); !slices.Equal(got, []string{"astable", "ep", "nums", "svc"}) {
		t.Fatalf("tables %v", got)
	}
	if ep := s.Tables["ep"]; !slices.Equal(ep.PK, []string{"svc", "n"}) || !slices.Equal(ep.NonPK, []string{"addr"}) || ep.Indexes["ep_addr"] == "" {
		t.Fatalf("ep: %+v", ep)
	}
	if nums := s.Tables["nums"]; !slices.Equal(nums.NonPK, []string{"v"}) {
		t.Fatalf("nums non-key columns %v (generated columns are not replicated)", nums.NonPK)
	}
	a, b := MustOpen(t, schema), MustOpen(t, schema)
	cs := MustExec(t, a,
		`INSERT INTO svc VALUES ('web', 'w', 80)`,
		`INSERT INTO ep VALUES (x'0102', 1, '10.0.0.1'), (x'', 2, NULL)`,
		`INSERT INTO nums (id, v) VALUES (7, 1.5)`,
		`INSERT INTO astable (id) VALUES ('x')`)
	MustApply(t, b, *cs)
	assertConverged(t, a, b)
	if got := MustQuery(t, b, `SELECT doubled FROM nums`); !slices.Equal(got, []string{"3"}) {
		t.Fatalf("generated column on the replica: %v", got)
	}
}

// TestDB_ApplySchema_CorrosionTestSchema loads Corrosion's own test schema
// unchanged and replicates rows in every table.
func TestDB_ApplySchema_CorrosionTestSchema(t *testing.T) {
	path := filepath.Join("testdata", "corrosion_test_schema.sql")
	var dbs []*DB
	for i := 0; i < 2; i++ {
		db := MustOpen(t, "")
		if err := db.ApplySchemaFiles([]string{path}); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	a, b := dbs[0], dbs[1]
	if got := a.Schema().TableNames(); !slices.Equal(got, []string{"tests", "tests2", "tests3", "testsblob", "testsbool", "wide"}) {
		t.Fatalf("tables %v", got)
	}
	if f := a.Schema().Tables["wide"].File; f != path {
		t.Fatalf("wide recorded from %q", f)
	}
	cs := MustExec(t, a,
		`INSERT INTO tests (id, text) VALUES (1, 'hello'), (2, 'world')`,
		`INSERT INTO tests2 (id) VALUES (1)`,
		`INSERT INTO tests3 (id, text, num) VALUES (1, 'a', 5)`,
		`INSERT INTO testsblob (id, text) VALUES (x'deadbeef', 'blob key')`,
		`INSERT INTO testsbool (id, b) VALUES (1, true), (2, false)`,
		`INSERT INTO wide (id1, id2, blob) VALUES (x'01', 'two', x'ff')`,
	)
	MustApply(t, b, *cs)
	cs = MustExec(t, b,
		`UPDATE tests SET text = 'changed' WHERE id = 2`,
		`UPDATE tests3 SET num2 = num2 + 1`,
		`UPDATE wide SET float = 2.5, int = 3`,
		`DELETE FROM testsbool WHERE id = 2`)
	MustApply(t, a, *cs)
	assertConverged(t, a, b)
	for _, q := range []struct{ sql, want string }{
		{`SELECT text FROM tests ORDER BY id`, `"hello","changed"`},
		{`SELECT * FROM tests2`, `1|""`},
		{`SELECT * FROM tests3`, `1|"a"|""|5|1`},
		{`SELECT * FROM testsblob`, `x'deadbeef'|"blob key"`},
		{`SELECT * FROM testsbool`, `1|1`},
		{`SELECT * FROM wide`, `x'01'|"two"|3|2.5|x'ff'`},
	} {
		if got := strings.Join(MustQuery(t, a, q.sql), ","); got != q.want {
			t.Errorf("%s: %s, want %s", q.sql, got, q.want)
		}
	}
}

func schemaObjects(t *testing.T, db *DB) []string {
	t.Helper()
	return MustQueryRaw(t, db, `SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name`)
}

func TestDB_ApplySchema_Evolution(t *testing.T) {
	const v1 = `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port INTEGER);
CREATE INDEX svc_name ON svc (name);`
	t.Run("reapplying the same schema changes nothing", func(t *testing.T) {
		db := MustOpen(t, v1)
		MustExec(t, db, `INSERT INTO svc (id) VALUES ('a')`)
		before, ctl, st := schemaObjects(t, db), ctlState(t, db), db.SyncState()
		mustApplySchema(t, db, v1)
		if after := schemaObjects(t, db); !slices.Equal(before, after) {
			t.Fatalf("schema changed:\n%s", diffLines(before, after))
		}
		if ctlState(t, db) != ctl || db.SyncState().Heads[db.Actor()] != st.Heads[db.Actor()] {
			t.Fatal("bookkeeping changed")
		}
		if res, err := db.Transact(context.Background(), nil); err != nil || res.Changeset != nil {
			t.Fatalf("pending changes after reapply: %v %+v", err, res)
		}
	})
	t.Run("added columns are metadata only", func(t *testing.T) {
		a, b := MustOpen(t, v1), MustOpen(t, v1)
		MustApply(t, b, *MustExec(t, a, `INSERT INTO svc (id, name) VALUES ('a', 'x'), ('b', 'y')`))
		clocks := MustQueryRaw(t, a, `SELECT count(*) FROM svc__patina_clock`)
		ctl, st := ctlState(t, a), a.SyncState()
		const v2 = v1 + `
ALTER TABLE ignored_by_parser_anyway ADD COLUMN x;`
		if err := applySchema(a, v2); err == nil || !strings.Contains(err.Error(), "ALTER TABLE is not allowed") {
			t.Fatalf("ALTER in a schema file: %v", err)
		}
		const v3 = `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port INTEGER, region TEXT, weight REAL NOT NULL DEFAULT 1.5);
CREATE INDEX svc_name ON svc (name);`
		mustApplySchema(t, a, v3)
		if got := MustQueryRaw(t, a, `SELECT count(*) FROM svc__patina_clock`); !slices.Equal(got, clocks) {
			t.Fatalf("clock rows %v -> %v", clocks, got)
		}
		if ctlState(t, a) != ctl || a.SyncState().Heads[a.Actor()] != st.Heads[a.Actor()] {
			t.Fatal("bookkeeping changed")
		}
		if res, err := a.Transact(context.Background(), nil); err != nil || res.Changeset != nil {
			t.Fatalf("adding columns produced changes: %v %+v", err, res)
		}
		if got := MustQuery(t, a, `SELECT * FROM svc ORDER BY id`); !slices.Equal(got, []string{`"a"|"x"|NULL|NULL|1.5`, `"b"|"y"|NULL|NULL|1.5`}) {
			t.Fatalf("rows %v", got)
		}
		cs := MustExec(t, a, `UPDATE svc SET region = 'fra' WHERE id = 'a'`)
		if len(cs.Changes) != 1 || cs.Changes[0].Column != "region" {
			t.Fatalf("changeset after adding columns: %+v", cs.Changes)
		}
		// B lacks the column: the change waits, then applies.
		if outs := MustApply(t, b, *cs); outs[0] != patina.ApplyDeferred {
			t.Fatalf("outcome on the old schema: %v", outs)
		}
		mustApplySchema(t, b, v3)
		assertConverged(t, a, b)
	})
	t.Run("destructive changes are refused", func(t *testing.T) {
		for _, tc := range []struct{ name, sql, want string }{
			{"removed column", `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '');`, `column "port" was removed`},
			{"changed type", `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port TEXT);`, `column "port" changed definition`},
			{"changed default", `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT 'x', port INTEGER);`, `column "name" changed definition`},
			{"changed key", `CREATE TABLE svc (id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', port INTEGER NOT NULL, PRIMARY KEY (id, port));`, "primary key changed from (id) to (id, port)"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db := MustOpen(t, v1)
				MustExec(t, db, `INSERT INTO svc (id, port) VALUES ('a', 1)`)
				before := schemaObjects(t, db)
				err := applySchema(db, tc.sql)
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range []string{`schema file "test.sql"`, `table "svc"`, tc.want, "reseed the cluster", "docs/reseed.md", "add a new column instead"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if after := schemaObjects(t, db); !slices.Equal(before, after) {
					t.Fatalf("refused change altered the schema:\n%s", diffLines(before, after))
				}
				MustExec(t, db, `UPDATE svc SET port = 2`) // still working
			})
		}
	})
	t.Run("indexes follow the files", func(t *testing.T) {
		db := MustOpen(t, v1)
		mustApplySchema(t, db, `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port INTEGER);
CREATE INDEX svc_port ON svc (port);
DROP INDEX IF EXISTS svc_name;`)
		got := MustQueryRaw(t, db, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'svc' AND sql IS NOT NULL`)
		if !slices.Equal(got, []string{`"svc_port"`}) {
			t.Fatalf("indexes %v", got)
		}
		// Tables missing from the files are kept.
		mustApplySchema(t, db, `CREATE TABLE other (id INTEGER NOT NULL PRIMARY KEY);`)
		if got := db.Schema().TableNames(); !slices.Equal(got, []string{"other", "svc"}) {
			t.Fatalf("tables %v", got)
		}
	})
	t.Run("an existing plain table is adopted with its rows", func(t *testing.T) {
		db := MustOpen(t, "")
		db.mu.Lock()
		err := db.w.Exec(`CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port INTEGER); INSERT INTO svc VALUES ('a', 'x', 1), ('b', 'y', 2)`)
		db.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		mustApplySchema(t, db, v1)
		res, err := db.Transact(context.Background(), nil)
		if err != nil || res.Changeset == nil || len(res.Changeset.Changes) != 2*3 {
			t.Fatalf("backfill changeset: %v %+v", err, res)
		}
		other := MustOpen(t, v1)
		MustApply(t, other, *res.Changeset)
		assertConverged(t, db, other)
	})
}

// TestDB_ApplySchema_AddColumnToLargeTable adds columns to a 100k-row table:
// no clock row, no change, no version.
func TestDB_ApplySchema_AddColumnToLargeTable(t *testing.T) {
	rowsN := 100_000
	if raceEnabled {
		rowsN = 10_000 // the race detector makes the SQLite translation ~10x slower; the size does not matter to the rule
	}
	const v1 = `CREATE TABLE svc (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '');`
	db := MustOpen(t, v1)
	cs := MustExec(t, db, fmt.Sprintf(`INSERT INTO svc (id, name) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) SELECT i, 'svc-' || i FROM n`, rowsN))
	if len(cs.Changes) != 2*rowsN {
		t.Fatalf("insert captured %d changes", len(cs.Changes))
	}
	clocks, ctl, st := MustQueryRaw(t, db, `SELECT count(*) FROM svc__patina_clock`), ctlState(t, db), db.SyncState()
	mustApplySchema(t, db, `CREATE TABLE svc (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', region TEXT, weight INTEGER NOT NULL DEFAULT 1);`)
	if got := MustQueryRaw(t, db, `SELECT count(*) FROM svc__patina_clock`); !slices.Equal(got, clocks) || clocks[0] != fmt.Sprint(2*rowsN) {
		t.Fatalf("clock rows %v -> %v", clocks, got)
	}
	if got := ctlState(t, db); got != ctl {
		t.Fatalf("ctl %s -> %s", ctl, got)
	}
	if got := db.SyncState(); got.Heads[db.Actor()] != st.Heads[db.Actor()] || got.NeedCount() != 0 {
		t.Fatalf("sync state %+v -> %+v", st, got)
	}
	cs = MustExec(t, db, `UPDATE svc SET region = 'ams' WHERE id = 7`)
	if cs.Version != 2 || len(cs.Changes) != 1 || cs.Changes[0].Column != "region" {
		t.Fatalf("next changeset: version %d, %d changes", cs.Version, len(cs.Changes))
	}
}

// TestDB_Apply_Deferred checks that changes naming a table or column this
// node lacks wait (ApplyDeferred), are served to peers as they arrived, and
// apply once ApplySchema brings the schema; beyond MaxDeferredChanges they
// are rejected and not recorded as known.
func TestDB_Apply_Deferred(t *testing.T) {
	const v1 = `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT);`
	const v2 = `CREATE TABLE svc (id TEXT NOT NULL PRIMARY KEY, name TEXT, port INTEGER);
CREATE TABLE hosts (id TEXT NOT NULL PRIMARY KEY, addr TEXT);`
	a, b, c := MustOpen(t, v2), MustOpen(t, v1), MustOpen(t, v2)
	cs1 := MustExec(t, a, `INSERT INTO svc VALUES ('web', 'w', 80)`)
	cs2 := MustExec(t, a, `INSERT INTO hosts VALUES ('h1', '10.0.0.1')`)
	cs3 := MustExec(t, a, `UPDATE svc SET name = 'web2'`)
	outs := MustApply(t, b, *cs1, *cs2, *cs3)
	if !slices.Equal(outs, []patina.ApplyOutcome{patina.ApplyDeferred, patina.ApplyDeferred, patina.ApplyNew}) {
		t.Fatalf("outcomes %v", outs)
	}
	if n := b.DeferredChanges(); n != len(cs1.Changes)+len(cs2.Changes) {
		t.Fatalf("deferred %d", n)
	}
	if st := b.SyncState(); st.Heads[a.Actor()] != 3 || st.NeedCount() != 0 {
		t.Fatalf("deferred versions not known: %+v", st)
	}
	if got := MustQuery(t, b, `SELECT * FROM svc`); !slices.Equal(got, []string{`"web"|"web2"`}) {
		t.Fatalf("rows on the old schema: %v", got)
	}
	// B serves the deferred versions as they arrived, not as cleared.
	syncPair(t, b, c, 0)
	if got := MustQuery(t, c, `SELECT * FROM hosts`); !slices.Equal(got, []string{`"h1"|"10.0.0.1"`}) {
		t.Fatalf("C got from B: %v", got)
	}
	assertConverged(t, a, c)
	// A duplicate of a deferred version is a duplicate.
	if outs := MustApply(t, b, *cs1); outs[0] != patina.ApplyDuplicate {
		t.Fatalf("deferred duplicate: %v", outs)
	}
	// The deferred changes survive a restart and apply with the schema.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	if n := b.DeferredChanges(); n == 0 {
		t.Fatal("deferred changes lost on restart")
	}
	mustApplySchema(t, b, v2)
	if n := b.DeferredChanges(); n != 0 {
		t.Fatalf("deferred after schema: %d", n)
	}
	assertConverged(t, a, b, c)

	t.Run("bound", func(t *testing.T) {
		d := MustOpen(t, v1)
		d.MaxDeferredChanges = 2
		res, err := d.Apply(context.Background(), []patina.Changeset{*cs1, *cs2, *cs3})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcomes[0] != patina.ApplyRejected || !strings.Contains(res.Errors[0].Error(), "deferred-change store is full") {
			t.Fatalf("over the bound: %v %v", res.Outcomes, res.Errors)
		}
		if res.Outcomes[1] != patina.ApplyDeferred || res.Outcomes[2] != patina.ApplyNew {
			t.Fatalf("outcomes %v", res.Outcomes)
		}
		if st := d.SyncState(); !slices.Equal(st.Gaps[a.Actor()], []patina.Range{{Start: 1, End: 1}}) {
			t.Fatalf("rejected version recorded as known: %+v", st)
		}
	})
}

package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

const testSchema = `
CREATE TABLE machines (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', state TEXT, cpus INTEGER NOT NULL DEFAULT 1);
CREATE INDEX machines_state ON machines (state);
CREATE TABLE pairs (a INTEGER NOT NULL, b BLOB NOT NULL, v REAL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE kv (k BLOB NOT NULL PRIMARY KEY, v ANY) WITHOUT ROWID;
`

// MustOpen opens a store in a temp dir with the given schema.
func MustOpen(tb testing.TB, schema string) *DB {
	tb.Helper()
	db := NewDB(filepath.Join(tb.TempDir(), "state.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if schema != "" {
		if err := db.ApplySchema([]SchemaFile{{Name: "test.sql", SQL: schema}}); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// MustExec runs statements as one transaction.
func MustExec(tb testing.TB, db *DB, sqls ...string) *patina.Changeset {
	tb.Helper()
	stmts := make([]patina.Statement, len(sqls))
	for i, s := range sqls {
		stmts[i] = patina.Statement{SQL: s}
	}
	res, err := db.Transact(context.Background(), stmts)
	if err != nil {
		tb.Fatal(err)
	}
	return res.Changeset
}

// MustApply applies changesets and fails on rejections.
func MustApply(tb testing.TB, db *DB, css ...patina.Changeset) []patina.ApplyOutcome {
	tb.Helper()
	res, err := db.Apply(context.Background(), css)
	if err != nil {
		tb.Fatal(err)
	}
	for i, e := range res.Errors {
		if e != nil {
			tb.Fatalf("changeset %d rejected: %v", i, e)
		}
	}
	return res.Outcomes
}

// MustQuery returns rows rendered as strings.
func MustQuery(tb testing.TB, db *DB, sql string, params ...patina.Value) []string {
	tb.Helper()
	rows, err := db.Query(context.Background(), patina.Statement{SQL: sql, Params: params})
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		parts := make([]string, 0, len(rows.Values()))
		for _, v := range rows.Values() {
			parts = append(parts, v.String())
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// dumpState renders every replicated table and its clocks with sites as
// actor ids (ordinals differ between nodes), sorted.
func dumpState(tb testing.TB, db *DB) (data, clocks []string) {
	tb.Helper()
	schema := db.Schema()
	for _, name := range schema.TableNames() {
		t := schema.Tables[name]
		for _, r := range MustQueryRaw(tb, db, fmt.Sprintf(`SELECT * FROM %s`, quoteIdent(name))) {
			data = append(data, name+":"+r)
		}
		db.siteMu.RLock()
		sites := map[string]string{}
		for o, a := range db.siteOf {
			sites[fmt.Sprint(o)] = a.String()
		}
		db.siteMu.RUnlock()
		q := fmt.Sprintf(`SELECT %s, c.cid, c.col_version, c.db_version, c.site, c.seq FROM %s c JOIN %s p ON p.key = c.key`,
			t.pkList("p."), clockTable(name), pksTable(name))
		for _, r := range MustQueryRaw(tb, db, q) {
			parts := strings.Split(r, "|")
			parts[len(parts)-2] = sites[parts[len(parts)-2]]
			clocks = append(clocks, name+":"+strings.Join(parts, "|"))
		}
	}
	sort.Strings(data)
	sort.Strings(clocks)
	return data, clocks
}

// MustQueryRaw queries without the bookkeeping-table guard.
func MustQueryRaw(tb testing.TB, db *DB, sql string) []string {
	tb.Helper()
	rc, err := db.reader(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.release(rc)
	stmt, _, err := rc.c.Prepare(sql)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	defer stmt.Close()
	var out []string
	for stmt.Step() {
		parts := make([]string, stmt.ColumnCount())
		for i := range parts {
			parts[i] = columnValue(stmt, i).String()
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := stmt.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

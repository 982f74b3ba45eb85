package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/patinadb/patina"
)

const testSchema = `
CREATE TABLE machines (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', state TEXT, cpus INTEGER NOT NULL DEFAULT 1);
CREATE INDEX machines_state ON machines (state);
CREATE TABLE pairs (a INTEGER NOT NULL, b BLOB NOT NULL, v REAL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE kv (k BLOB NOT NULL PRIMARY KEY, v ANY) WITHOUT ROWID;
`

// TB is what the helpers need of a test: testing.TB and *rapid.T both fit.
type TB = rapid.TB

// MustOpen opens a store in a temp dir with the given schema. Stores with a
// schema start as a copy of a template file that has it (ApplySchema costs
// most of an open, ten times more under -race), with a fresh actor id.
func MustOpen(tb testing.TB, schema string) *DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "state.db")
	if schema != "" {
		copyFile(tb, templateFor(tb, schema), path)
	}
	db := NewDB(path)
	db.ReadConns = 1 // each connection parses the schema (triggers included)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if schema != "" {
		var a patina.ActorID
		if _, err := rand.Read(a[:]); err != nil {
			tb.Fatal(err)
		}
		setActor(tb, db, a)
		if got := len(db.Schema().Tables); got == 0 {
			tb.Fatalf("template store has no tables")
		}
	}
	return db
}

var (
	templateMu   sync.Mutex
	templateDir  string
	templatePath = map[string]string{} // schema -> file
)

// templateFor returns a closed store file with schema applied and nothing
// else.
func templateFor(tb testing.TB, schema string) string {
	tb.Helper()
	templateMu.Lock()
	defer templateMu.Unlock()
	if p, ok := templatePath[schema]; ok {
		return p
	}
	if templateDir == "" {
		dir, err := os.MkdirTemp("", "patina-sqlite-templates-")
		if err != nil {
			tb.Fatal(err)
		}
		templateDir = dir
	}
	p := filepath.Join(templateDir, fmt.Sprintf("t%d.db", len(templatePath)))
	db := NewDB(p)
	db.ReadConns = 1
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	if err := db.ApplySchema([]SchemaFile{{Name: "test.sql", SQL: schema}}); err != nil {
		db.Close()
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p + "-wal"); err == nil {
		tb.Fatalf("template %s kept its WAL", p)
	}
	templatePath[schema] = p
	return p
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if templateDir != "" {
		os.RemoveAll(templateDir)
	}
	os.Exit(code)
}

// MustExec runs statements as one transaction.
func MustExec(tb TB, db *DB, sqls ...string) *patina.Changeset {
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
func MustApply(tb TB, db *DB, css ...patina.Changeset) []patina.ApplyOutcome {
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
func MustQuery(tb TB, db *DB, sql string, params ...patina.Value) []string {
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
func dumpState(tb TB, db *DB) (data, clocks []string) {
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
func MustQueryRaw(tb TB, db *DB, sql string) []string {
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

// MustOpenN opens n stores with the same schema.
func MustOpenN(tb testing.TB, n int, schema string) []*DB {
	tb.Helper()
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = MustOpen(tb, schema)
	}
	return dbs
}

// MustChangesFor collects what ChangesFor serves.
func MustChangesFor(tb TB, db *DB, actor patina.ActorID, r patina.Range, maxBytes int) []patina.Changeset {
	tb.Helper()
	var out []patina.Changeset
	if err := db.ChangesFor(context.Background(), actor, r, maxBytes, func(cs patina.Changeset) error {
		out = append(out, cs)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}

// syncPair makes dst pull from src everything src holds that dst lacks,
// the way anti-entropy does: whole missing versions through ChangesFor and
// missing seqs of partial versions through PartialChangesFor.
func syncPair(tb TB, src, dst *DB, maxBytes int) {
	tb.Helper()
	have, want := src.SyncState(), dst.SyncState()
	for actor, head := range have.Heads {
		if actor == dst.Actor() {
			continue
		}
		var css []patina.Changeset
		collect := func(cs patina.Changeset) error { css = append(css, cs); return nil }
		ctx := context.Background()
		mine := want.Heads[actor]
		if head > mine {
			if err := src.ChangesFor(ctx, actor, patina.Range{Start: mine + 1, End: head}, maxBytes, collect); err != nil {
				tb.Fatal(err)
			}
		}
		for _, g := range want.Gaps[actor] {
			if err := src.ChangesFor(ctx, actor, g, maxBytes, collect); err != nil {
				tb.Fatal(err)
			}
		}
		for v, p := range want.Partials[actor] {
			missing := rangesetMissing(p.Have, p.LastSeq)
			if err := src.PartialChangesFor(ctx, actor, v, missing, maxBytes, collect); err != nil {
				tb.Fatal(err)
			}
		}
		if lt, ok := tb.(interface{ Logf(string, ...any) }); ok && len(css) > 0 {
			lt.Logf("sync %s -> %s: %s", src.Actor().String()[:4], dst.Actor().String()[:4], renderCSs(css))
		}
		MustApply(tb, dst, css...)
	}
}

// rangesetMissing returns the ranges of 0..=last not in have (sorted,
// disjoint).
func rangesetMissing(have []patina.Range, last patina.Seq) []patina.Range {
	var out []patina.Range
	next := uint64(0)
	for _, r := range have {
		if r.Start > next {
			out = append(out, patina.Range{Start: next, End: r.Start - 1})
		}
		next = r.End + 1
	}
	if next <= last {
		out = append(out, patina.Range{Start: next, End: last})
	}
	return out
}

// syncAll runs anti-entropy between every ordered pair until nothing moves.
func syncAll(tb TB, dbs ...*DB) {
	tb.Helper()
	for round := 0; round < 2; round++ {
		for _, src := range dbs {
			for _, dst := range dbs {
				if src != dst {
					syncPair(tb, src, dst, 0)
				}
			}
		}
	}
}

// assertConverged fails unless every store holds the same rows and clocks.
func assertConverged(tb TB, dbs ...*DB) {
	tb.Helper()
	d0, c0 := dumpState(tb, dbs[0])
	for i, db := range dbs[1:] {
		d, c := dumpState(tb, db)
		if !slices.Equal(d0, d) {
			tb.Fatalf("rows differ between node 0 and node %d:\n%s", i+1, diffLines(d0, d))
		}
		if !slices.Equal(c0, c) {
			tb.Fatalf("clocks differ between node 0 and node %d:\n%s", i+1, diffLines(c0, c))
		}
	}
}

// diffLines renders the lines only in a (-) or only in b (+).
func diffLines(a, b []string) string {
	in := func(s []string, x string) bool { return slices.Contains(s, x) }
	var out []string
	for _, x := range a {
		if !in(b, x) {
			out = append(out, "- "+x)
		}
	}
	for _, x := range b {
		if !in(a, x) {
			out = append(out, "+ "+x)
		}
	}
	return strings.Join(out, "\n")
}

// MustTransact runs statements with parameters as one transaction.
func MustTransact(tb TB, db *DB, stmts ...patina.Statement) *patina.Changeset {
	tb.Helper()
	res, err := db.Transact(context.Background(), stmts)
	if err != nil {
		tb.Fatal(err)
	}
	return res.Changeset
}

// ctlState reads __patina_ctl (db_version, seq).
func ctlState(tb TB, db *DB) string {
	tb.Helper()
	return strings.Join(MustQueryRaw(tb, db, `SELECT db_version, seq FROM __patina_ctl`), ";")
}

// setActor gives a freshly opened store a chosen actor id, so that tests
// depending on site order are reproducible.
func setActor(tb TB, db *DB, a patina.ActorID) {
	tb.Helper()
	db.mu.Lock()
	defer db.mu.Unlock()
	old := db.actor
	if err := db.exec(`UPDATE __patina_sites SET site_id = ? WHERE ordinal = 0`, a[:]); err != nil {
		tb.Fatal(err)
	}
	db.siteMu.Lock()
	delete(db.sites, old)
	db.sites[a] = 0
	db.siteOf[0] = a
	db.siteMu.Unlock()
	db.actor = a
}

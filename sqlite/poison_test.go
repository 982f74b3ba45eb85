package sqlite

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// TestDB_Apply_Poison feeds changesets that can never apply: each is
// rejected with an error naming the origin, the version, the table and the
// reason, quarantined, and the good changesets of the same call apply.
func TestDB_Apply_Poison(t *testing.T) {
	a := MustOpen(t, testSchema)
	good := MustExec(t, a, `INSERT INTO machines (id, name) VALUES ('m1', 'web')`)
	good2 := MustExec(t, a, `INSERT INTO kv VALUES (x'01', 2)`)
	mutate := func(cs *patina.Changeset, f func(cs *patina.Changeset)) patina.Changeset {
		c := *cs
		c.Changes = slices.Clone(cs.Changes)
		f(&c)
		return c
	}
	tests := []struct {
		name  string
		cs    patina.Changeset
		table string
		want  string
	}{
		{"bad packed key", mutate(good, func(c *patina.Changeset) { c.Changes[0].PK = []byte{1, 0x1b, 'x'} }), "machines", "unpack pk"},
		{"truncated key", mutate(good, func(c *patina.Changeset) { c.Changes[2].PK = c.Changes[2].PK[:2] }), "machines", "unpack pk"},
		{"key arity", mutate(good, func(c *patina.Changeset) {
			pk := PackPK([]patina.Value{patina.Text("m1"), patina.Int(2)})
			for i := range c.Changes {
				c.Changes[i].PK = pk
			}
		}), "machines", "primary key has 2 values, table has 1 key columns"},
		{"null key", mutate(good, func(c *patina.Changeset) { c.Changes[1].PK = PackPK([]patina.Value{patina.Null()}) }), "machines", "primary key value 1 is NULL"},
		{"NaN key", mutate(good2, func(c *patina.Changeset) { c.Changes[0].PK = PackPK([]patina.Value{patina.Real(math.NaN())}) }), "kv", "NaN"},
		{"NaN value", mutate(good2, func(c *patina.Changeset) { c.Changes[1].Value = patina.Real(math.NaN()) }), "kv", "NaN is not a storable REAL value"},
		{"unknown value type", mutate(good2, func(c *patina.Changeset) { c.Changes[1].Value = patina.Value{Type: 9} }), "kv", "unknown value type"},
		{"seq outside range", mutate(good, func(c *patina.Changeset) { c.Changes[3].Seq = 99 }), "machines", "change seq 99 outside the chunk's range 0..=3"},
		{"seq range past last seq", mutate(good, func(c *patina.Changeset) { c.Seqs.End = 9 }), "", "seq range 0..=9 does not fit last seq 3"},
		{"version zero", mutate(good, func(c *patina.Changeset) { c.Version = 0 }), "", "version 0 does not exist"},
		{"empty cleared range", patina.Changeset{Actor: a.Actor(), Version: 5, Cleared: true, ClearedTo: 4}, "", "cleared range 5..=4 is empty"},
		{"sentinel col_version", mutate(good, func(c *patina.Changeset) { c.Changes[0].ColVersion = 3 }), "machines", "sentinel col_version 3 differs from causal length 1"},
		{"column at even cl", mutate(good, func(c *patina.Changeset) { c.Changes[1].CL = 2 }), "machines", "changed at even causal length"},
		{"zero cl", mutate(good, func(c *patina.Changeset) { c.Changes[1].CL = 0 }), "machines", "causal length 0 is not positive"},
		{"NULL into NOT NULL", mutate(good, func(c *patina.Changeset) { c.Changes[1].Value = patina.Null() }), "machines", "NOT NULL constraint failed"},
		{"one key in two encodings", patina.Changeset{Actor: a.Actor(), Version: 3, Seqs: patina.Range{Start: 0, End: 1}, LastSeq: 1, Changes: []patina.Change{
			{Table: "pairs", PK: PackPK([]patina.Value{patina.Int(1), patina.Blob([]byte{0})}), Column: "-1", ColVersion: 1, CL: 1, Seq: 0},
			{Table: "pairs", PK: PackPK([]patina.Value{patina.Text("1"), patina.Blob([]byte{0})}), Column: "-1", ColVersion: 1, CL: 1, Seq: 1},
		}}, "pairs", "duplicates after type affinity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := MustOpen(t, testSchema)
			bad := tc.cs
			res, err := b.Apply(context.Background(), []patina.Changeset{bad, *good2})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcomes[0] != patina.ApplyRejected || res.Errors[0] == nil {
				t.Fatalf("outcome %v %v", res.Outcomes[0], res.Errors[0])
			}
			if res.Outcomes[1] != patina.ApplyNew || res.Errors[1] != nil {
				t.Fatalf("good changeset: %v %v", res.Outcomes[1], res.Errors[1])
			}
			msg := res.Errors[0].Error()
			want := []string{"reject changeset from actor " + a.Actor().String(), tc.want}
			if bad.Version != 0 {
				want = append(want, "version "+strconv.FormatUint(bad.Version, 10))
			}
			if tc.table != "" {
				want = append(want, `table "`+tc.table+`"`)
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			q := MustQueryRaw(t, b, `SELECT hex(site), version, tbl, reason FROM __patina_quarantine`)
			if len(q) != 1 || !strings.Contains(q[0], strings.ToUpper(a.Actor().String())) || !strings.Contains(q[0], tc.want) {
				t.Fatalf("quarantine %q", q)
			}
			if tc.table != "" && !strings.Contains(q[0], `|"`+tc.table+`"|`) {
				t.Fatalf("quarantine names no table: %q", q)
			}
			// Nothing of the poison stayed; the good version did.
			if got := MustQuery(t, b, `SELECT count(*) FROM machines`); got[0] != "0" {
				t.Fatalf("machines rows %v", got)
			}
			if got := MustQuery(t, b, `SELECT v FROM kv`); !slices.Equal(got, []string{"2"}) && bad.Version != good2.Version {
				t.Fatalf("kv rows %v", got)
			}
			st := b.SyncState()
			if bad.Version == good.Version && st.Heads[a.Actor()] != good2.Version {
				t.Fatalf("heads %v", st.Heads)
			}
			// The real version still applies afterwards.
			MustApply(t, b, *good)
			assertConverged(t, a, b)
		})
	}
}

// TestDB_Apply_PoisonChunk rejects a version whose last chunk completes it
// with poison: the earlier chunks stay buffered, the bookkeeping is as
// before the bad chunk, and the good version completes later.
func TestDB_Apply_PoisonChunk(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	cs := MustExec(t, a, `INSERT INTO machines (id, name) VALUES ('m1', 'web'), ('m2', 'db')`)
	chunks := Chunk(cs.Actor, cs.Version, cs.Changes, cs.LastSeq, cs.TS, 1)
	MustApply(t, b, chunks[:len(chunks)-1]...)
	before := b.SyncState()
	last := chunks[len(chunks)-1]
	bad := last
	bad.Changes = slices.Clone(last.Changes)
	bad.Changes[0].PK = []byte{0xff}
	res, err := b.Apply(context.Background(), []patina.Changeset{bad})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[0] != patina.ApplyRejected {
		t.Fatalf("outcome %v", res.Outcomes)
	}
	assertSameSyncState(t, before, b.SyncState())
	// Poison found only when the version completes (text keys on a node
	// whose key column is an INTEGER rowid) rolls back the completing chunk
	// alone.
	c := MustOpen(t, `CREATE TABLE machines (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', state TEXT, cpus INTEGER NOT NULL DEFAULT 1);`)
	res, err = c.Apply(context.Background(), chunks)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[len(chunks)-1] != patina.ApplyRejected || !strings.Contains(res.Errors[len(chunks)-1].Error(), "datatype mismatch") {
		t.Fatalf("text key into an integer key: %v %v", res.Outcomes, res.Errors)
	}
	if st := c.SyncState(); len(st.Partials[a.Actor()]) != 1 {
		t.Fatalf("partial lost: %+v", st)
	}
	MustApply(t, b, last)
	assertConverged(t, a, b)
}

// TestDB_Apply_PoisonFromNewActor rejects the first changeset ever seen
// from an actor, whole transactions roll back, and the site ordinals the
// store hands out stay consistent with the file across a restart.
func TestDB_Apply_PoisonFromNewActor(t *testing.T) {
	a, c, b := MustOpen(t, testSchema), MustOpen(t, testSchema), MustOpen(t, testSchema)
	orig := MustExec(t, a, `INSERT INTO machines (id) VALUES ('x')`)
	bad := *orig
	bad.Changes = slices.Clone(bad.Changes)
	bad.Changes[1].Value = patina.Null() // NOT NULL column
	res, err := b.Apply(context.Background(), []patina.Changeset{bad})
	if err != nil || res.Outcomes[0] != patina.ApplyRejected {
		t.Fatalf("%v %v", res, err)
	}
	// A cancelled Apply rolls back everything, sites included.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Apply(ctx, []patina.Changeset{*MustExec(t, c, `INSERT INTO machines (id) VALUES ('y')`)}); err == nil {
		t.Fatal("cancelled apply succeeded")
	}
	good := MustExec(t, c, `INSERT INTO machines (id) VALUES ('z')`)
	MustApply(t, b, *good)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	got := MustChangesFor(t, b, c.Actor(), patina.Range{Start: 1, End: 10}, 0)
	if len(got) != 1 || got[0].Version != good.Version || len(got[0].Changes) != len(good.Changes) {
		t.Fatalf("after restart B serves %+v", got)
	}
	if st := b.SyncState(); st.Heads[c.Actor()] != 2 || !slices.Equal(st.Gaps[c.Actor()], []patina.Range{{Start: 1, End: 1}}) {
		t.Fatalf("state %+v", st)
	}
	syncPair(t, c, b, 0)
	MustApply(t, b, *orig)
	syncPair(t, a, b, 0)
	syncPair(t, b, c, 0)
	syncPair(t, b, a, 0)
	assertConverged(t, a, b, c)
}

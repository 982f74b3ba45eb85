package sqlite

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

const valuesSchema = `
CREATE TABLE vals (id INTEGER NOT NULL PRIMARY KEY, v, r REAL, t TEXT, b BLOB);
CREATE TABLE tkeys (k TEXT NOT NULL PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE bkeys (k BLOB NOT NULL PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE ikeys (k INTEGER NOT NULL PRIMARY KEY, v);
`

func queryOne(t *testing.T, db *DB, sql string, params ...patina.Value) patina.Value {
	t.Helper()
	rows, err := db.Query(context.Background(), patina.Statement{SQL: sql, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", sql, rows.Err())
	}
	v := rows.Values()[0]
	v.Bytes = append([]byte(nil), v.Bytes...)
	return v
}

// TestDB_Values_RoundTrip writes values on one node and reads them on
// another: the storage class and every bit must survive Transact, the
// changeset, Apply and Query.
func TestDB_Values_RoundTrip(t *testing.T) {
	values := []struct {
		name string
		v    patina.Value
	}{
		{"int64 min", patina.Int(math.MinInt64)},
		{"int64 max", patina.Int(math.MaxInt64)},
		{"zero", patina.Int(0)},
		{"minus one", patina.Int(-1)},
		{"negative zero", patina.Real(math.Copysign(0, -1))},
		{"positive zero", patina.Real(0)},
		{"plus infinity", patina.Real(math.Inf(1))},
		{"minus infinity", patina.Real(math.Inf(-1))},
		{"smallest denormal", patina.Real(math.SmallestNonzeroFloat64)},
		{"max float", patina.Real(math.MaxFloat64)},
		{"tenth", patina.Real(0.1)},
		{"real holding an integer", patina.Real(3)},
		{"utf-8 text", patina.Text("héllo ✓ 日本語 🚀")},
		{"text with NUL", patina.Text("a\x00b\x00")},
		{"empty text", patina.Text("")},
		{"null", patina.Null()},
		{"empty blob", patina.Blob([]byte{})},
		{"blob", patina.Blob([]byte{0, 1, 2, 0xff, 0})},
		{"text that looks like a number", patina.Text("12")},
	}
	a, b := MustOpen(t, valuesSchema), MustOpen(t, valuesSchema)
	for i, tc := range values {
		id := patina.Int(int64(i))
		stmts := []patina.Statement{{SQL: `INSERT INTO vals (id, v, r) VALUES (?, ?, ?)`, Params: []patina.Value{id, tc.v, tc.v}}}
		if tc.v.Type == patina.TypeText || tc.v.Type == patina.TypeBlob {
			stmts = append(stmts,
				patina.Statement{SQL: `INSERT INTO tkeys VALUES (?, ?)`, Params: []patina.Value{tc.v, id}},
				patina.Statement{SQL: `INSERT INTO bkeys VALUES (?, ?)`, Params: []patina.Value{tc.v, id}})
		}
		if tc.v.Type == patina.TypeInteger {
			stmts = append(stmts, patina.Statement{SQL: `INSERT INTO ikeys VALUES (?, ?)`, Params: []patina.Value{tc.v, id}})
		}
		cs := MustTransact(t, a, stmts...)
		MustApply(t, b, *cs)
		t.Run(tc.name, func(t *testing.T) {
			// An untyped column keeps the value exactly.
			for _, db := range []*DB{a, b} {
				if got := queryOne(t, db, `SELECT v FROM vals WHERE id = ?`, id); !got.Equal(tc.v) {
					t.Fatalf("untyped column: got %v (%v), want %v (%v)", got, got.Type, tc.v, tc.v.Type)
				}
			}
			// A REAL column converts as SQLite does (-0.0 and 3.0 come back
			// as 0.0 and 3.0 stored as integers, read as REAL): the replica
			// holds exactly what the origin holds.
			if ga, gb := queryOne(t, a, `SELECT r FROM vals WHERE id = ?`, id), queryOne(t, b, `SELECT r FROM vals WHERE id = ?`, id); !ga.Equal(gb) {
				t.Fatalf("REAL column: origin %v (%v), replica %v (%v)", ga, ga.Type, gb, gb.Type)
			}
			// Keys: the same bytes name the same row on both nodes.
			switch tc.v.Type {
			case patina.TypeText, patina.TypeBlob:
				for _, tbl := range []string{"tkeys", "bkeys"} {
					ka := queryOne(t, a, `SELECT k FROM `+tbl+` WHERE v = ?`, id)
					kb := queryOne(t, b, `SELECT k FROM `+tbl+` WHERE v = ?`, id)
					if !ka.Equal(kb) {
						t.Fatalf("%s key: origin %v (%v), replica %v (%v)", tbl, ka, ka.Type, kb, kb.Type)
					}
				}
			case patina.TypeInteger:
				if got := queryOne(t, b, `SELECT k FROM ikeys WHERE v = ?`, id); !got.Equal(tc.v) {
					t.Fatalf("integer key: got %v want %v", got, tc.v)
				}
			}
		})
	}
	assertConverged(t, a, b)
	// Empty text, NULL and the empty blob stay three different things.
	got := MustQuery(t, b, `SELECT typeof(v) FROM vals WHERE id IN (14, 15, 16) ORDER BY id`)
	if strings.Join(got, ",") != `"text","null","blob"` {
		t.Fatalf("types of '', NULL, x'': %v", got)
	}
}

// TestDB_Values_NaN checks that NaN is refused with a clear error, as a
// parameter and in an incoming change, and that the node keeps serving.
func TestDB_Values_NaN(t *testing.T) {
	a, b := MustOpen(t, valuesSchema), MustOpen(t, valuesSchema)
	ctx := context.Background()
	_, err := a.Transact(ctx, []patina.Statement{{SQL: `INSERT INTO vals (id, v) VALUES (?, ?)`, Params: []patina.Value{patina.Int(1), patina.Real(math.NaN())}}})
	if patina.ErrorCode(err) != patina.EINVALID || !strings.Contains(patina.ErrorMessage(err), "NaN is not a storable REAL value") || !strings.Contains(patina.ErrorMessage(err), "parameter 2") {
		t.Fatalf("NaN parameter: %v", err)
	}
	_, err = a.Transact(ctx, []patina.Statement{{SQL: `INSERT INTO vals (id, v) VALUES (1, :x)`, Named: map[string]patina.Value{":x": patina.Real(math.NaN())}}})
	if patina.ErrorCode(err) != patina.EINVALID || !strings.Contains(patina.ErrorMessage(err), "NaN") {
		t.Fatalf("NaN named parameter: %v", err)
	}
	if _, err := a.Query(ctx, patina.Statement{SQL: `SELECT ?`, Params: []patina.Value{patina.Real(math.NaN())}}); patina.ErrorCode(err) != patina.EINVALID {
		t.Fatalf("NaN query parameter: %v", err)
	}

	good := MustExec(t, a, `INSERT INTO vals (id, v) VALUES (1, 1.5)`)
	bad := *good
	bad.Changes = append([]patina.Change(nil), good.Changes...)
	for i := range bad.Changes {
		if bad.Changes[i].Column == "v" {
			bad.Changes[i].Value = patina.Real(math.NaN())
		}
	}
	other := MustExec(t, a, `INSERT INTO vals (id, v) VALUES (2, 2.5)`)
	res, err := b.Apply(ctx, []patina.Changeset{bad, *other})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[0] != patina.ApplyRejected || res.Outcomes[1] != patina.ApplyNew {
		t.Fatalf("outcomes %v", res.Outcomes)
	}
	msg := res.Errors[0].Error()
	for _, want := range []string{a.Actor().String(), "version 1", `table "vals"`, `column "v"`, "NaN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("rejection %q lacks %q", msg, want)
		}
	}
	// Still serving: queries, and the good version applies afterwards.
	if got := MustQuery(t, b, `SELECT id, v FROM vals`); strings.Join(got, ",") != "2|2.5" {
		t.Fatalf("rows after rejection: %v", got)
	}
	MustApply(t, b, *good)
	assertConverged(t, a, b)
}

package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/patinadb/patina"
)

func FuzzUnpackPK(f *testing.F) {
	for _, vals := range [][]patina.Value{
		{patina.Int(0)},
		{patina.Int(-1), patina.Int(math.MaxInt64), patina.Int(math.MinInt64), patina.Int(255), patina.Int(-129)},
		{patina.Text(""), patina.Blob(nil), patina.Null()},
		{patina.Text("héllo"), patina.Blob(bytes.Repeat([]byte{7}, 300))},
		{patina.Real(math.Copysign(0, -1)), patina.Real(math.Inf(1)), patina.Real(1.5)},
	} {
		f.Add(PackPK(vals))
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 0x11, 0, 0})
	f.Add([]byte{1, 0x0b, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := UnpackPK(b)
		if err != nil {
			return
		}
		if len(vals) == 0 {
			t.Fatalf("%x: no values and no error", b)
		}
		if again := PackPK(vals); !bytes.Equal(again, b) {
			t.Fatalf("%x unpacks to %v, which packs to %x", b, vals, again)
		}
	})
}

func TestPackPK_RoundTrip(t *testing.T) {
	for _, v := range []patina.Value{
		patina.Int(0), patina.Int(1), patina.Int(-1), patina.Int(127), patina.Int(128), patina.Int(-128), patina.Int(-129),
		patina.Int(1 << 40), patina.Int(math.MaxInt64), patina.Int(math.MinInt64),
		patina.Real(0.5), patina.Real(math.Copysign(0, -1)), patina.Real(math.Inf(-1)),
		patina.Text(""), patina.Text("a\x00b"), patina.Blob([]byte{}), patina.Blob(bytes.Repeat([]byte{1}, 70000)), patina.Null(),
	} {
		b := PackPK([]patina.Value{v, patina.Text("x")})
		got, err := UnpackPK(b)
		if err != nil || len(got) != 2 || !got[0].Equal(v) || !got[1].Equal(patina.Text("x")) {
			t.Fatalf("%v: %v %v", v, got, err)
		}
	}
	// Non-canonical forms of valid values are refused.
	for _, b := range [][]byte{
		{1, 2<<3 | packInteger, 0, 5},                      // 5 in two bytes
		{1, 1<<3 | packText, 0},                            // length 0 in one byte
		{1, 1<<3 | packNull},                               // NULL with a width
		{1, 4<<3 | packReal, 0, 0, 0, 0},                   // short real
		{2, 1<<3 | packInteger, 1},                         // count says 2
		{1, 1<<3 | packInteger, 1, 0},                      // trailing byte
		{1, 7},                                             // unknown type
		{1, 9<<3 | packInteger, 1, 1, 1, 1, 1, 1, 1, 1, 1}, // 9-byte integer
	} {
		if vals, err := UnpackPK(b); err == nil {
			t.Errorf("%x accepted as %v", b, vals)
		}
	}
}

// fuzzReader turns fuzz bytes into choices; exhausted, it reads zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) bytes(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzReader) u64() uint64 {
	var buf [8]byte
	copy(buf[:], r.bytes(8))
	return binary.LittleEndian.Uint64(buf[:])
}

func (r *fuzzReader) value() patina.Value {
	switch r.byte() % 7 {
	case 0:
		return patina.Null()
	case 1:
		return patina.Int(int64(r.byte()) - 100)
	case 2:
		return patina.Int(int64(r.u64()))
	case 3:
		return patina.Real(math.Float64frombits(r.u64()))
	case 4:
		return patina.Text(string(r.bytes(int(r.byte() % 8))))
	case 5:
		return patina.Blob(r.bytes(int(r.byte() % 8)))
	}
	return patina.Value{Type: patina.ValueType(r.byte())}
}

var fuzzTables = []struct {
	name string
	cols []string
	pk   func(r *fuzzReader) []patina.Value
}{
	{"machines", []string{"name", "state", "cpus"}, func(r *fuzzReader) []patina.Value {
		return []patina.Value{patina.Text(string('a' + rune(r.byte()%3)))}
	}},
	{"pairs", []string{"v"}, func(r *fuzzReader) []patina.Value {
		return []patina.Value{patina.Int(int64(r.byte() % 2)), patina.Blob(r.bytes(int(r.byte() % 2)))}
	}},
	{"kv", []string{"v"}, func(r *fuzzReader) []patina.Value {
		return []patina.Value{patina.Blob(r.bytes(int(r.byte() % 2)))}
	}},
	{"nope", []string{"x"}, func(r *fuzzReader) []patina.Value { return []patina.Value{r.value()} }},
}

// fuzzChangesets decodes fuzz bytes into changesets that are mostly
// plausible: real tables and columns, small versions, causal lengths and
// col_versions, with any value, key, seq or column where the bytes say so.
func fuzzChangesets(data []byte) []patina.Changeset {
	r := &fuzzReader{b: data}
	var css []patina.Changeset
	for n := int(r.byte()%4) + 1; n > 0 && len(r.b) > 0; n-- {
		cs := patina.Changeset{Actor: patina.ActorID{0xa0 + r.byte()%3}, Version: uint64(r.byte() % 6)}
		if r.byte()%8 == 0 {
			cs.Cleared, cs.ClearedTo = true, cs.Version+uint64(r.byte()%3)
			css = append(css, cs)
			continue
		}
		var seq uint64
		for k := int(r.byte() % 6); k > 0; k-- {
			t := fuzzTables[r.byte()%byte(len(fuzzTables))]
			pk := PackPK(t.pk(r))
			if r.byte()%16 == 0 {
				pk = r.bytes(int(r.byte() % 6))
			}
			cl := int64(r.byte()%4) + 1
			col := patina.SentinelColumn
			var colVersion int64
			switch c := r.byte(); {
			case c%3 == 0:
				colVersion = cl
			case c%17 == 1:
				col = "bogus"
				colVersion = int64(r.byte() % 3)
			default:
				col = t.cols[int(c)%len(t.cols)]
				colVersion = int64(r.byte() % 4)
			}
			var v patina.Value
			if col != patina.SentinelColumn {
				v = r.value()
			}
			seq += uint64(r.byte() % 3)
			cs.Changes = append(cs.Changes, patina.Change{Table: t.name, PK: pk, Column: col, Value: v, ColVersion: colVersion, CL: cl, Seq: seq, DBVersion: cs.Version, Site: cs.Actor})
			seq++
		}
		cs.LastSeq = seq + uint64(r.byte()%2)
		cs.Seqs = patina.Range{Start: 0, End: cs.LastSeq}
		if r.byte()%4 == 0 && cs.LastSeq > 0 {
			cs.Seqs.Start = uint64(r.byte()) % cs.LastSeq
		}
		css = append(css, cs)
	}
	return css
}

// checkStoreInvariants verifies what no input may break: every row has a
// key and a live sentinel, dead rows have no column clocks, the file is
// intact and still answers queries.
func checkStoreInvariants(t testing.TB, db *DB) {
	t.Helper()
	if got := MustQueryRaw(t, db, `PRAGMA quick_check`); len(got) != 1 || got[0] != `"ok"` {
		t.Fatalf("quick_check: %v", got)
	}
	for _, name := range db.Schema().TableNames() {
		tb := db.Schema().Tables[name]
		q := fmt.Sprintf(`SELECT count(*) FROM %s t LEFT JOIN %s p ON %s LEFT JOIN %s s ON s.key = p.key AND s.cid = '-1' WHERE p.key IS NULL OR s.col_version IS NULL OR s.col_version %% 2 = 0`,
			quoteIdent(name), pksTable(name), tb.pkMatch("p.", "t."), clockTable(name))
		if got := MustQueryRaw(t, db, q); got[0] != "0" {
			t.Fatalf("%s: %s rows without a live sentinel", name, got[0])
		}
		q = fmt.Sprintf(`SELECT count(*) FROM %s s JOIN %s c ON c.key = s.key AND c.cid != '-1' WHERE s.cid = '-1' AND s.col_version %% 2 = 0`, clockTable(name), clockTable(name))
		if got := MustQueryRaw(t, db, q); got[0] != "0" {
			t.Fatalf("%s: %s column clocks of deleted rows", name, got[0])
		}
		q = fmt.Sprintf(`SELECT count(*) FROM %s s JOIN %s p ON p.key = s.key LEFT JOIN %s t ON %s WHERE s.cid = '-1' AND s.col_version %% 2 = 1 AND t.%s IS NULL`,
			clockTable(name), pksTable(name), quoteIdent(name), tb.pkMatch("t.", "p."), quoteIdent(tb.PK[0]))
		if got := MustQueryRaw(t, db, q); got[0] != "0" {
			t.Fatalf("%s: %s live sentinels without a row", name, got[0])
		}
	}
	MustQuery(t, db, `SELECT count(*) FROM machines`)
}

// FuzzApply applies changesets built from fuzz bytes. Whatever they hold,
// Apply must not panic or return an error (poison is an outcome), and the
// store must keep its invariants and keep serving.
func FuzzApply(f *testing.F) {
	src := MustOpen(f, testSchema)
	for _, sql := range []string{
		`INSERT INTO machines (id, name, state) VALUES ('a', 'x', 'y')`,
		`UPDATE machines SET state = 'z'`,
		`DELETE FROM machines WHERE id = 'a'`,
		`INSERT INTO kv VALUES (x'', 1.5), (x'00', 'v')`,
		`INSERT INTO pairs VALUES (1, x'01', 2)`,
	} {
		MustExec(f, src, sql)
	}
	f.Add([]byte{})
	f.Add([]byte("\x03\x01\x01\x05\x00\x00\x01\x02\x00\x01\x03\x04\x05"))
	f.Add(bytes.Repeat([]byte{1, 2, 3, 5, 7, 11, 13}, 20))
	f.Add(bytes.Repeat([]byte{0xff, 0x80, 0x10}, 30))
	db := NewDB(filepath.Join(f.TempDir(), "fuzz.db"))
	db.ReadConns = 1
	if err := db.Open(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if err := db.ApplySchema([]SchemaFile{{Name: "test.sql", SQL: testSchema}}); err != nil {
		f.Fatal(err)
	}
	// Real changesets first, so fuzzed ones meet existing rows.
	MustApply(f, db, MustChangesFor(f, src, src.Actor(), patina.Range{Start: 1, End: 10}, 0)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		css := fuzzChangesets(data)
		res, err := db.Apply(context.Background(), css)
		if err != nil {
			t.Fatalf("apply returned an error: %v", err)
		}
		for i, o := range res.Outcomes {
			if (o == patina.ApplyRejected) != (res.Errors[i] != nil) {
				t.Fatalf("changeset %d: outcome %v with error %v", i, o, res.Errors[i])
			}
		}
		checkStoreInvariants(t, db)
		// Local writes still work on top.
		if _, err := db.Transact(context.Background(), []patina.Statement{{SQL: `INSERT OR REPLACE INTO machines (id, name) VALUES ('local', 'x')`}}); err != nil {
			t.Fatalf("transact after fuzz: %v", err)
		}
	})
}

// Type codes of the packed-key format (patina.PackPK), for hand-built
// malformed keys.
const (
	packInteger = 1
	packReal    = 2
	packText    = 3
	packNull    = 5
)

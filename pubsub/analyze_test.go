package pubsub

import (
	"path/filepath"
	"testing"

	"github.com/patinadb/patina"
)

const analyzeSchema = `
CREATE TABLE services (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', port INTEGER NOT NULL DEFAULT 0, weight REAL, tag NOCASE_IS_NOT_A_TYPE, note TEXT COLLATE NOCASE, raw BLOB);
CREATE TABLE checks (service_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT, PRIMARY KEY (service_id, name)) WITHOUT ROWID;
`

func mustAnalyzer(t *testing.T) *analyzer {
	t.Helper()
	c, err := openConn(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Exec(analyzeSchema); err != nil {
		t.Fatal(err)
	}
	return &analyzer{conn: c, tempName: func(table string) string { return "keys_" + table }}
}

func TestAnalyzer_Analyze(t *testing.T) {
	a := mustAnalyzer(t)
	for _, tc := range []struct {
		name     string
		st       patina.Statement
		strategy strategy
		eq       string // "col key" or ""
		hidden   int
	}{
		{"eq text", patina.Statement{SQL: `SELECT id, port FROM services WHERE name = 'web'`}, stratPK, "name tweb", 1},
		{"eq reversed qualified", patina.Statement{SQL: `SELECT s.id FROM services AS s WHERE 'web' = s.name AND port > 1`}, stratPK, "name tweb", 1},
		{"text constant on integer column", patina.Statement{SQL: `SELECT id FROM services WHERE port = '250'`}, stratPK, "port i250", 1},
		{"real constant on integer column", patina.Statement{SQL: `SELECT id FROM services WHERE port = 80.0`}, stratPK, "port i80", 1},
		{"integer constant on text column", patina.Statement{SQL: `SELECT id FROM services WHERE name = 12`}, stratPK, "name t12", 1},
		{"negative", patina.Statement{SQL: `SELECT id FROM services WHERE port = -5`}, stratPK, "port i-5", 1},
		{"positional param", patina.Statement{SQL: `SELECT id FROM services WHERE port > ? AND name = ?`, Params: []patina.Value{patina.Int(1), patina.Text("x")}}, stratPK, "name tx", 1},
		{"named param", patina.Statement{SQL: `SELECT id FROM services WHERE name = :n`, Named: map[string]patina.Value{":n": patina.Text("y")}}, stratPK, "name ty", 1},
		{"numbered param", patina.Statement{SQL: `SELECT id FROM services WHERE port = ?2 AND name = ?1`, Params: []patina.Value{patina.Text("z"), patina.Int(3)}}, stratPK, "port i3", 1},
		{"nocase column not indexed", patina.Statement{SQL: `SELECT id FROM services WHERE note = 'a'`}, stratPK, "", 1},
		{"collate not indexed", patina.Statement{SQL: `SELECT id FROM services WHERE name = 'a' COLLATE NOCASE`}, stratPK, "", 1},
		{"or not indexed", patina.Statement{SQL: `SELECT id FROM services WHERE name = 'a' OR port = 1`}, stratPK, "", 1},
		{"between not indexed", patina.Statement{SQL: `SELECT id FROM services WHERE port BETWEEN 1 AND 2 AND name = 'x'`}, stratPK, "", 1},
		{"null not indexed", patina.Statement{SQL: `SELECT id FROM services WHERE name = NULL`}, stratPK, "", 1},
		{"composite key", patina.Statement{SQL: `SELECT status FROM checks WHERE status = 'ok'`}, stratPK, "status tok", 2},
		{"order by kept", patina.Statement{SQL: `SELECT id FROM services ORDER BY port`}, stratPK, "", 1},
		{"limit", patina.Statement{SQL: `SELECT id FROM services ORDER BY port LIMIT 3`}, stratKeyed, "", 1},
		{"join", patina.Statement{SQL: `SELECT s.id, c.status FROM services s JOIN checks c ON c.service_id = s.id`}, stratKeyed, "", 3},
		{"comma join", patina.Statement{SQL: `SELECT * FROM services, checks`}, stratKeyed, "", 3},
		{"left join using", patina.Statement{SQL: `SELECT * FROM checks c LEFT OUTER JOIN services s ON s.id = c.service_id WHERE s.port > 0`}, stratKeyed, "", 3},
		{"subquery", patina.Statement{SQL: `SELECT id FROM services WHERE id IN (SELECT service_id FROM checks)`}, stratKeyed, "", 1},
		{"aggregate", patina.Statement{SQL: `SELECT count(*) FROM services`}, stratContent, "", 0},
		{"group by", patina.Statement{SQL: `SELECT name, sum(port) FROM services GROUP BY name`}, stratContent, "", 0},
		{"distinct", patina.Statement{SQL: `SELECT DISTINCT name FROM services`}, stratContent, "", 0},
		{"scalar max is not an aggregate", patina.Statement{SQL: `SELECT id, max(port, 10) FROM services`}, stratPK, "", 1},
		{"window", patina.Statement{SQL: `SELECT id, row_number() OVER (ORDER BY port) FROM services`}, stratContent, "", 0},
		{"union", patina.Statement{SQL: `SELECT name FROM services UNION SELECT name FROM checks`}, stratContent, "", 0},
		{"cte", patina.Statement{SQL: `WITH x AS (SELECT * FROM services) SELECT id FROM x`}, stratContent, "", 0},
		{"is distinct from", patina.Statement{SQL: `SELECT id, name IS DISTINCT FROM 'a' FROM services`}, stratPK, "", 1},
		{"table-valued function", patina.Statement{SQL: `SELECT s.id, j.value FROM services s, json_each(s.name) j`}, stratContent, "", 0},
		{"no table", patina.Statement{SQL: `SELECT 1`}, stratContent, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.analyze(tc.st)
			if err != nil {
				t.Fatal(err)
			}
			eq := ""
			if p.eq != nil {
				eq = p.eq.col + " " + p.eq.key
			}
			if p.strategy != tc.strategy || eq != tc.eq || p.nhidden != tc.hidden {
				t.Errorf("strategy %s eq %q hidden %d, want %s %q %d\nfull: %s\nrestricted: %s", p.strategy, eq, p.nhidden, tc.strategy, tc.eq, tc.hidden, p.fullSQL, p.restrictSQL)
			}
		})
	}
}

func TestLex(t *testing.T) {
	toks, ok := lex(`SELECT "a""b", [c d], x'0A', 'it''s', 1.5e3, ?2, :n -- comment
	/* block */ FROM t WHERE (a = 1)`)
	if !ok {
		t.Fatal("lex failed")
	}
	var got []string
	for _, tk := range toks {
		got = append(got, tk.text)
	}
	want := []string{"SELECT", `"a""b"`, ",", "[c d]", ",", "x'0A'", ",", "'it''s'", ",", "1.5e3", ",", "?2", ",", ":n", "FROM", "t", "WHERE", "(", "a", "=", "1", ")"}
	if len(got) != len(want) {
		t.Fatalf("tokens %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tokens %q, want %q", got, want)
		}
	}
	if id, _ := toks[1].ident(); id != `a"b` {
		t.Errorf("ident %q", id)
	}
	if _, ok := lex(`SELECT 'open`); ok {
		t.Error("unterminated string lexed")
	}
}

func TestUnpackPK(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{[]byte{1, 0x09, 1}, "1"},
		{[]byte{1, 0x09, 0xff}, "-1"},
		{[]byte{1, 0x0b, 1, 'a'}, `"a"`},
		{[]byte{2, 0x11, 0x01, 0x00, 0x05}, "256|NULL"},
	} {
		vals, err := patina.UnpackPK(tc.b)
		if err != nil {
			t.Fatalf("%x: %v", tc.b, err)
		}
		var parts []string
		for _, v := range vals {
			parts = append(parts, v.String())
		}
		if got := join(parts); got != tc.want {
			t.Errorf("%x: %s, want %s", tc.b, got, tc.want)
		}
	}
	if _, err := patina.UnpackPK([]byte{1, 0x0b, 5, 'a'}); err == nil {
		t.Error("short text accepted")
	}
}

func join(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "|"
		}
		out += p
	}
	return out
}

func FuzzDecodeValues(f *testing.F) {
	f.Add([]byte(encodeValues([]patina.Value{patina.Int(1), patina.Text("a"), patina.Null(), patina.Real(1.5), patina.Blob([]byte{0})})))
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := decodeValues(string(b))
		if err != nil {
			return
		}
		if again := encodeValues(vals); again != string(b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}

func TestAnalyzer_Conds(t *testing.T) {
	a := mustAnalyzer(t)
	for _, tc := range []struct {
		sql  string
		want string
	}{
		{`SELECT id FROM services WHERE port >= 10 AND port < '20'`, `port >= 10; port < 20`},
		{`SELECT id FROM services WHERE 100 > port AND name != 'x'`, `port < 100; name != "x"`},
		{`SELECT id FROM services WHERE weight <= 1 AND raw = x'00'`, `weight <= 1; raw = x'00'`},
		{`SELECT id FROM services WHERE port + 1 > 10 AND note < 'a'`, ``},
		{`SELECT id FROM services WHERE port > 1 OR port < 0`, ``},
	} {
		p, err := a.analyze(patina.Statement{SQL: tc.sql})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range p.conds {
			got = append(got, c.col+" "+c.op+" "+c.val.String())
		}
		if g := joinSep(got, "; "); g != tc.want {
			t.Errorf("%s: conds %q, want %q", tc.sql, g, tc.want)
		}
	}
}

func joinSep(parts []string, sep string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += sep
		}
		out += p
	}
	return out
}

// TestCompareValues checks the Go comparison the candidate filter uses
// against SQLite's own on many pairs of values of every class.
func TestCompareValues(t *testing.T) {
	a := mustAnalyzer(t)
	vals := []patina.Value{patina.Int(0), patina.Int(-1), patina.Int(3), patina.Int(1 << 53), patina.Int(1<<53 + 1),
		patina.Int(-9223372036854775808), patina.Int(9223372036854775807), patina.Real(2.5), patina.Real(3), patina.Real(-0.5),
		patina.Real(9007199254740992), patina.Real(9.3e18), patina.Real(-9.3e18), patina.Text(""), patina.Text("a"), patina.Text("B"),
		patina.Text("3"), patina.Blob([]byte{}), patina.Blob([]byte{0}), patina.Blob([]byte("a"))}
	st, _, err := a.conn.Prepare(`SELECT ?1 < ?2, ?1 = ?2, ?1 > ?2`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, x := range vals {
		for _, y := range vals {
			bindValue(st, 1, x)
			bindValue(st, 2, y)
			if !st.Step() {
				t.Fatal(st.Err())
			}
			want := 0
			switch {
			case st.ColumnInt(0) == 1:
				want = -1
			case st.ColumnInt(2) == 1:
				want = 1
			}
			st.Reset()
			got := compareValues(x, y)
			if got > 0 {
				got = 1
			} else if got < 0 {
				got = -1
			}
			if got != want {
				t.Errorf("compare %v, %v: %d, SQLite says %d", x, y, got, want)
			}
		}
	}
}

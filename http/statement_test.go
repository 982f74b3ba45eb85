package http

import (
	"math"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

func TestDecodeStatements_Forms(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []patina.Statement
	}{
		{"plain string", `["SELECT 1"]`, []patina.Statement{{SQL: "SELECT 1"}}},
		{"positional", `[["INSERT INTO t VALUES (?, ?)", [1, "a"]]]`,
			[]patina.Statement{{SQL: "INSERT INTO t VALUES (?, ?)", Params: []patina.Value{patina.Int(1), patina.Text("a")}}}},
		{"named", `[["INSERT INTO t VALUES (:a)", {":a": 2}]]`,
			[]patina.Statement{{SQL: "INSERT INTO t VALUES (:a)", Named: map[string]patina.Value{":a": patina.Int(2)}}}},
		{"sql alone in array", `[["SELECT 1"]]`, []patina.Statement{{SQL: "SELECT 1"}}},
		{"null params in array", `[["SELECT 1", null]]`, []patina.Statement{{SQL: "SELECT 1"}}},
		{"verbose", `[{"query": "SELECT ?", "params": [3]}]`,
			[]patina.Statement{{SQL: "SELECT ?", Params: []patina.Value{patina.Int(3)}}}},
		{"verbose named", `[{"query": "SELECT $x", "params": null, "named_params": {"$x": "y"}}]`,
			[]patina.Statement{{SQL: "SELECT $x", Named: map[string]patina.Value{"$x": patina.Text("y")}}}},
		{"verbose nulls", `[{"query": "SELECT 1", "params": null, "named_params": null}]`,
			[]patina.Statement{{SQL: "SELECT 1"}}},
		{"mixed", ` [ "A" , ["B", [null]], {"query":"C"} ] `, []patina.Statement{
			{SQL: "A"}, {SQL: "B", Params: []patina.Value{patina.Null()}}, {SQL: "C"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStatements([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d statements, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !statementEqual(got[i], tt.want[i]) {
					t.Errorf("statement %d = %+v, want %+v", i+1, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeStatements_Errors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty body", ``, "body is empty"},
		{"empty array", `[]`, "no statements"},
		{"null", `null`, "not null"},
		{"not an array", `"SELECT 1"`, "must be a JSON array"},
		{"object body", `{"query":"SELECT 1"}`, "must be a JSON array"},
		{"bad json", `["SELECT 1"`, "not valid JSON"},
		{"number statement", `[1]`, "statement 1: got 1; a statement is"},
		{"three elements", `[["a", [], {}]]`, "got 3 elements"},
		{"non-string sql", `[[1, []]]`, "statement 1: an array statement"},
		{"bad params", `[["a", "b"]]`, `second element must be an array`},
		{"missing query", `[{"params": []}]`, `needs "query"`},
		{"unknown key", `[{"query": "a", "parms": []}]`, `unknown key "parms"`},
		{"params not array", `[{"query": "a", "params": 1}]`, `"params" must be an array`},
		{"named not object", `[{"query": "a", "named_params": []}]`, `"named_params" must be an object`},
		{"both kinds", `[{"query": "a", "params": [1], "named_params": {":a": 1}}]`, "not both"},
		{"name without prefix", `[["a", {"name": 1}]]`, `needs its SQLite prefix, e.g. ":name"`},
		{"huge number", `["ok", ["a", [1e400]]]`, "statement 2: parameter 1: number 1e400 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeStatements([]byte(tt.body))
			if err == nil {
				t.Fatal("decoded, want error")
			}
			if patina.ErrorCode(err) != patina.EINVALID {
				t.Errorf("code = %q, want %q", patina.ErrorCode(err), patina.EINVALID)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		name string
		json string
		want patina.Value
	}{
		{"null", `null`, patina.Null()},
		{"true", `true`, patina.Int(1)},
		{"false", `false`, patina.Int(0)},
		{"int", `42`, patina.Int(42)},
		{"negative int", `-7`, patina.Int(-7)},
		{"max int64 exact", `9223372036854775807`, patina.Int(math.MaxInt64)},
		{"min int64 exact", `-9223372036854775808`, patina.Int(math.MinInt64)},
		{"large int64 exact", `9007199254740993`, patina.Int(9007199254740993)},
		{"beyond int64 is real", `9223372036854775808`, patina.Real(9223372036854775808)},
		{"real", `1.5`, patina.Real(1.5)},
		{"integral real", `2.0`, patina.Real(2)},
		{"exponent is real", `1e3`, patina.Real(1000)},
		{"underflow is zero", `1e-400`, patina.Real(0)},
		{"string", `"héllo \"x\""`, patina.Text(`héllo "x"`)},
		{"empty string", `""`, patina.Text("")},
		{"blob", `[0, 1, 255]`, patina.Blob([]byte{0, 1, 255})},
		{"empty array is blob", `[]`, patina.Blob([]byte{})},
		{"256 is not a byte", `[1, 256]`, patina.Text(`[1,256]`)},
		{"negative is not a byte", `[-1]`, patina.Text(`[-1]`)},
		{"float is not a byte", `[1.0]`, patina.Text(`[1.0]`)},
		{"strings array is text", `["a", "b"]`, patina.Text(`["a","b"]`)},
		{"nested object is text", `{"a": [1, {"b": null}], "c": "d"}`, patina.Text(`{"a":[1,{"b":null}],"c":"d"}`)},
		{"nested arrays are text", `[[1, 2], [3]]`, patina.Text(`[[1,2],[3]]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeValue([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("DecodeValue(%s) = %v (%v), want %v (%v)", tt.json, got, got.Type, tt.want, tt.want.Type)
			}
		})
	}
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		v    patina.Value
		want string
	}{
		{patina.Null(), `null`},
		{patina.Int(math.MaxInt64), `9223372036854775807`},
		{patina.Int(math.MinInt64), `-9223372036854775808`},
		{patina.Real(1), `1.0`},
		{patina.Real(-0.5), `-0.5`},
		{patina.Real(math.Copysign(0, -1)), `-0.0`},
		{patina.Real(1e21), `1e+21`},
		{patina.Real(1e-7), `1e-07`},
		{patina.Real(123456789.125), `123456789.125`},
		{patina.Real(math.Inf(1)), `null`},
		{patina.Real(math.NaN()), `null`},
		{patina.Text("a\"b\\c\n\x01</>"), `"a\"b\\c\n\u0001</>"`},
		{patina.Text("bad \xff utf8"), `"bad \ufffd utf8"`},
		{patina.Text("\u2028"), `"\u2028"`},
		{patina.Blob([]byte{0, 127, 255}), `[0,127,255]`},
		{patina.Blob(nil), `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := string(AppendValue(nil, tt.v))
			if got != tt.want {
				t.Errorf("AppendValue(%v) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}

func TestMarshalStatement(t *testing.T) {
	st := patina.Statement{SQL: "INSERT INTO t VALUES (?, ?, ?, ?, ?)", Params: []patina.Value{
		patina.Null(), patina.Int(math.MaxInt64), patina.Real(3), patina.Text("x"), patina.Blob([]byte{1, 2}),
	}}
	got, err := MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"query":"INSERT INTO t VALUES (?, ?, ?, ?, ?)","params":[null,9223372036854775807,3.0,"x",[1,2]]}`
	if string(got) != want {
		t.Errorf("MarshalStatement = %s\nwant %s", got, want)
	}
	back, err := DecodeStatement(got)
	if err != nil {
		t.Fatal(err)
	}
	if !statementEqual(back, st) {
		t.Errorf("round trip = %+v, want %+v", back, st)
	}

	named := patina.Statement{SQL: "SELECT :b, :a", Named: map[string]patina.Value{":b": patina.Int(1), ":a": patina.Text("z")}}
	got, err = MarshalStatement(named)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"query":"SELECT :b, :a","named_params":{":a":"z",":b":1}}`; string(got) != want {
		t.Errorf("MarshalStatement = %s\nwant %s", got, want)
	}

	for _, f := range []float64{math.NaN(), math.Inf(-1)} {
		_, err := MarshalStatement(patina.Statement{SQL: "SELECT ?", Params: []patina.Value{patina.Real(f)}})
		if patina.ErrorCode(err) != patina.EINVALID {
			t.Errorf("MarshalStatement(REAL %v) error = %v, want an EINVALID error", f, err)
		}
	}
}

func FuzzDecodeStatements(f *testing.F) {
	seeds := []string{
		`["SELECT 1"]`,
		`[["INSERT INTO t VALUES (?, ?, ?)", [1, 2.5, "x"]]]`,
		`[["SELECT :a", {":a": [1, 2, 3]}]]`,
		`[{"query": "SELECT ?", "params": [null, true, false, {"a": [1]}, [300], 9223372036854775808]}]`,
		`[{"query": "SELECT 1", "named_params": {"@x": -0}}]`,
		`[[]]`, `[{}]`, `[[1]]`, `[ ["a", [ [ ] ] ] ]`, `"x"`, ``, `[1e999]`, `[["a", [1e-999, -0.0]]]`,
		`{"query": "SELECT ?", "params": ["\ud800"]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		stmts, err := DecodeStatements(data)
		if err == nil {
			for _, st := range stmts {
				roundTrip(t, st)
			}
		} else if patina.ErrorCode(err) != patina.EINVALID {
			t.Fatalf("DecodeStatements error %v has code %q, want %q", err, patina.ErrorCode(err), patina.EINVALID)
		}
		if st, err := DecodeStatement(data); err == nil {
			roundTrip(t, st)
		}
	})
}

// roundTrip checks that a decoded statement encodes and decodes to itself.
func roundTrip(t *testing.T, st patina.Statement) {
	t.Helper()
	data, err := MarshalStatement(st)
	if err != nil {
		t.Fatalf("MarshalStatement(%+v): %v", st, err)
	}
	back, err := DecodeStatement(data)
	if err != nil {
		t.Fatalf("DecodeStatement(%s): %v", data, err)
	}
	if !statementEqual(back, st) {
		t.Fatalf("round trip of %s = %+v, want %+v", data, back, st)
	}
}

func statementEqual(a, b patina.Statement) bool {
	if a.SQL != b.SQL || len(a.Params) != len(b.Params) || len(a.Named) != len(b.Named) {
		return false
	}
	for i := range a.Params {
		if !a.Params[i].Equal(b.Params[i]) {
			return false
		}
	}
	for k, v := range a.Named {
		if w, ok := b.Named[k]; !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

package pubsub

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/patinadb/patina"
)

// eqCond is a top-level `column = constant` conjunct of the WHERE clause: a
// row whose column does not hold key (see normKey) cannot be in the result.
type eqCond struct {
	col string // lower column name
	key string
}

// cmpCond is a top-level `column OP constant` conjunct (OP one of = == !=
// <> < <= > >=), with the constant converted by the column's affinity as
// SQLite converts it: a row whose value fails it cannot be in the result.
type cmpCond struct {
	col string // lower column name
	op  string // as if the column were on the left
	val patina.Value
}

// holds reports whether v (the column's stored value) passes the
// condition, comparing as SQLite does with BINARY collation: NULL passes
// nothing, numbers compare numerically (integers and reals exactly), then
// numbers < text < blob, text and blobs bytewise.
func (c cmpCond) holds(v patina.Value) bool {
	if v.IsNull() {
		return false
	}
	r := compareValues(v, c.val)
	switch c.op {
	case "=", "==":
		return r == 0
	case "!=", "<>":
		return r != 0
	case "<":
		return r < 0
	case "<=":
		return r <= 0
	case ">":
		return r > 0
	case ">=":
		return r >= 0
	}
	return true
}

// flipped gives the operator for `constant OP column` read as `column OP'
// constant`.
var flipped = map[string]string{"=": "=", "==": "==", "!=": "!=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// findConds collects the top-level `column OP constant` conjuncts of the
// WHERE clause of a single-table query, for choosing candidates without
// SQL. It gives up (none) on anything it does not fully understand, which
// only costs evaluation time: every condition found must be necessary for
// a row to be in the result.
func (a *analyzer) findConds(toks []token, sh *shape, t *tableInfo, st patina.Statement) []cmpCond {
	where := toks[sh.whereTok+1 : sh.whereEnd]
	for _, tk := range where {
		if tk.depth == 0 {
			switch tk.upper() {
			case "OR", "BETWEEN", "CASE", "COLLATE":
				return nil
			}
		}
	}
	var conj [][]token
	start := 0
	for i, tk := range where {
		if tk.depth == 0 && tk.upper() == "AND" {
			conj = append(conj, where[start:i])
			start = i + 1
		}
	}
	conj = append(conj, where[start:])
	qual := sh.refs[0].qualifier
	var out []cmpCond
	for _, c := range conj {
		for _, swapped := range [2]bool{false, true} {
			col, op, lit, ok := splitCmp(c, swapped)
			if !ok {
				continue
			}
			cn := colRef(col, qual, t)
			if cn == nil || !strings.EqualFold(cn.coll, "BINARY") {
				continue
			}
			v, ok := literal(lit, st)
			if !ok || v.IsNull() {
				continue
			}
			nv, err := a.applyAffinity(cn.decl, v)
			if err != nil || nv.IsNull() {
				continue
			}
			out = append(out, cmpCond{col: strings.ToLower(cn.name), op: op, val: nv})
			break
		}
	}
	return out
}

// pickEq returns the first equality among conds, for the index.
func pickEq(conds []cmpCond) *eqCond {
	for _, c := range conds {
		if c.op == "=" || c.op == "==" {
			return &eqCond{col: c.col, key: normKey(c.val)}
		}
	}
	return nil
}

// splitCmp splits `A OP B` into its column side, operator and constant
// side; swapped takes B as the column (and flips OP).
func splitCmp(c []token, swapped bool) (col []token, op string, lit []token, ok bool) {
	for i, tk := range c {
		if tk.kind != tokOp {
			continue
		}
		if _, isCmp := flipped[tk.text]; !isCmp {
			continue
		}
		if swapped {
			return c[i+1:], flipped[tk.text], c[:i], true
		}
		return c[:i], tk.text, c[i+1:], true
	}
	return nil, "", nil, false
}

// compareValues orders two values as SQLite's sqlite3MemCompare does with
// BINARY collation.
func compareValues(a, b patina.Value) int {
	ca, cb := valueClass(a), valueClass(b)
	if ca != cb {
		return ca - cb
	}
	switch ca {
	case 1: // numbers
		switch {
		case a.Type == patina.TypeInteger && b.Type == patina.TypeInteger:
			return cmpInt(a.Int, b.Int)
		case a.Type == patina.TypeReal && b.Type == patina.TypeReal:
			return cmpFloat(a.Float, b.Float)
		case a.Type == patina.TypeInteger:
			return intFloatCompare(a.Int, b.Float)
		default:
			return -intFloatCompare(b.Int, a.Float)
		}
	case 2, 3:
		return strings.Compare(string(a.Bytes), string(b.Bytes))
	}
	return 0
}

func valueClass(v patina.Value) int {
	switch v.Type {
	case patina.TypeInteger, patina.TypeReal:
		return 1
	case patina.TypeText:
		return 2
	case patina.TypeBlob:
		return 3
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// intFloatCompare compares an integer with a real exactly (as SQLite's
// sqlite3IntFloatCompare), without rounding the integer.
func intFloatCompare(i int64, f float64) int {
	if f < -9.223372036854775808e18 {
		return 1
	}
	if f >= 9.223372036854775808e18 {
		return -1
	}
	t := int64(f) // truncates toward zero
	if c := cmpInt(i, t); c != 0 {
		return c
	}
	return cmpFloat(0, f-float64(t))
}

func colRef(toks []token, qual string, t *tableInfo) *column {
	switch len(toks) {
	case 1:
		name, ok := toks[0].ident()
		if !ok {
			return nil
		}
		return t.column(name)
	case 3:
		q, ok1 := toks[0].ident()
		name, ok2 := toks[2].ident()
		if !ok1 || !ok2 || toks[1].text != "." || !strings.EqualFold(quoteIdent(q), qual) {
			return nil
		}
		return t.column(name)
	}
	return nil
}

// numberParams numbers parameter tokens the way SQLite does: `?` takes the
// next number, `?N` is N, a name keeps the number of its first use.
func numberParams(toks []token) {
	names := map[string]int{}
	maxIdx := 0
	for i := range toks {
		t := &toks[i]
		if t.kind != tokParam {
			continue
		}
		switch {
		case t.text == "?":
			maxIdx++
			t.param = maxIdx
		case t.text[0] == '?':
			n, err := strconv.Atoi(t.text[1:])
			if err != nil {
				n = -1
			}
			t.param = n
			maxIdx = max(maxIdx, n)
		default:
			if n, ok := names[t.text]; ok {
				t.param = n
			} else {
				maxIdx++
				names[t.text] = maxIdx
				t.param = maxIdx
			}
		}
	}
}

// literal evaluates a constant: a string, number (optionally negated),
// blob or bound parameter.
func literal(toks []token, st patina.Statement) (patina.Value, bool) {
	neg := false
	if len(toks) == 2 && toks[0].text == "-" && toks[1].kind == tokNumber {
		neg, toks = true, toks[1:]
	}
	if len(toks) != 1 {
		return patina.Value{}, false
	}
	t := toks[0]
	switch t.kind {
	case tokString:
		return patina.Text(strings.ReplaceAll(t.text[1:len(t.text)-1], "''", "'")), true
	case tokBlob:
		b, err := hex.DecodeString(t.text[2 : len(t.text)-1])
		if err != nil {
			return patina.Value{}, false
		}
		return patina.Blob(b), true
	case tokNumber:
		return number(t.text, neg)
	case tokParam:
		if t.param <= 0 {
			return patina.Value{}, false
		}
		if t.text[0] != '?' {
			if v, ok := namedValue(st.Named, t.text); ok {
				return v, true
			}
		}
		if t.param <= len(st.Params) {
			return st.Params[t.param-1], true
		}
	}
	return patina.Value{}, false
}

func number(s string, neg bool) (patina.Value, bool) {
	if strings.Contains(s, "_") {
		return patina.Value{}, false
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		u, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return patina.Value{}, false
		}
		i := int64(u)
		if neg {
			i = -i
		}
		return patina.Int(i), true
	}
	if !strings.ContainsAny(s, ".eE") {
		if neg {
			s = "-" + s
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return patina.Int(i), true
		}
		f, err := strconv.ParseFloat(s, 64)
		return patina.Real(f), err == nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return patina.Value{}, false
	}
	if neg {
		f = -f
	}
	return patina.Real(f), true
}

// affinityColumn maps a declared type to SQLite's column affinity (the
// rules of https://sqlite.org/datatype3.html §3.1), named by the column of
// the scratch table that has it.
func affinityColumn(decl string) string {
	d := strings.ToUpper(decl)
	switch {
	case strings.Contains(d, "INT"):
		return "i"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "t"
	case d == "", strings.Contains(d, "BLOB"):
		return "b"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "r"
	}
	return "n"
}

// applyAffinity converts v as SQLite converts a constant compared with a
// column of type decl, by storing it in a scratch column of the same
// affinity and reading it back.
func (a *analyzer) applyAffinity(decl string, v patina.Value) (patina.Value, error) {
	c := affinityColumn(decl)
	if err := a.conn.Exec(`CREATE TEMP TABLE IF NOT EXISTS pubsub_affinity (i INTEGER, r REAL, n NUMERIC, t TEXT, b BLOB)`); err != nil {
		return patina.Value{}, err
	}
	ins, _, err := a.conn.Prepare(`INSERT INTO temp.pubsub_affinity (` + c + `) VALUES (?)`)
	if err != nil {
		return patina.Value{}, err
	}
	defer ins.Close()
	if err := bindValue(ins, 1, v); err != nil {
		return patina.Value{}, err
	}
	if err := ins.Exec(); err != nil {
		return patina.Value{}, err
	}
	sel, _, err := a.conn.Prepare(`SELECT ` + c + ` FROM temp.pubsub_affinity`)
	if err != nil {
		return patina.Value{}, err
	}
	defer sel.Close()
	var out patina.Value
	if sel.Step() {
		out = columnValue(sel, 0)
	}
	if err := sel.Err(); err != nil {
		return patina.Value{}, err
	}
	return out, a.conn.Exec(`DELETE FROM temp.pubsub_affinity`)
}

// normKey is the equality class of a value under SQLite's BINARY
// comparison: integers and integral reals compare equal, text and blob
// never equal each other or numbers.
func normKey(v patina.Value) string {
	switch v.Type {
	case patina.TypeInteger:
		return "i" + strconv.FormatInt(v.Int, 10)
	case patina.TypeReal:
		if f := v.Float; f == math.Trunc(f) && f >= -9.223372036854775808e18 && f < 9.223372036854775808e18 {
			return "i" + strconv.FormatInt(int64(f), 10)
		}
		return "r" + strconv.FormatUint(math.Float64bits(v.Float), 16)
	case patina.TypeText:
		return "t" + string(v.Bytes)
	case patina.TypeBlob:
		return "b" + string(v.Bytes)
	}
	return ""
}

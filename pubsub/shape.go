package pubsub

import (
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// keywords that end a FROM clause's table reference or join it to the next.
var joinWords = map[string]bool{
	"JOIN": true, "NATURAL": true, "LEFT": true, "RIGHT": true, "FULL": true, "INNER": true,
	"CROSS": true, "OUTER": true, "ON": true, "USING": true, "INDEXED": true, "NOT": true,
	"WHERE": true, "GROUP": true, "HAVING": true, "ORDER": true, "LIMIT": true, "WINDOW": true,
	"UNION": true, "EXCEPT": true, "INTERSECT": true, "AS": true, "FROM": true, "SELECT": true,
}

// keysAlias names a pass's temp key table inside restricted queries.
const keysAlias = `"__pubsub_keys"`

// keyColumn is the i-th column of a temp key table.
func keyColumn(i int) string { return fmt.Sprintf("pubsub_k%d", i) }

// createKeyTable creates a temp key table on c if it is missing.
func createKeyTable(c *sqlite3.Conn, name string, ncols int) error {
	cols := make([]string, ncols)
	for i := range cols {
		cols[i] = keyColumn(i)
	}
	return c.Exec(fmt.Sprintf(`CREATE TEMP TABLE IF NOT EXISTS %s (%s)`, quoteIdent(name), strings.Join(cols, ", ")))
}

// restrictSQL rewrites a single-table query to run only for the rows whose
// keys are in the temp key table: the key table drives a CROSS JOIN (one
// primary-key lookup per changed key, no scan), the identity columns lead
// the select list, and a bare * keeps meaning the table's columns.
func restrictSQL(sql string, toks []token, sh *shape, hidden []string, temp string) string {
	var list strings.Builder
	pos := toks[sh.listStart].start
	for i := sh.listStart; i < sh.fromTok; i++ {
		tk := toks[i]
		if tk.depth != 0 || tk.text != "*" {
			continue
		}
		prev, next := toks[i-1], toks[i+1]
		if (i == sh.listStart || prev.text == ",") && (next.text == "," || i+1 == sh.fromTok) {
			list.WriteString(sql[pos:tk.start])
			list.WriteString(sh.refs[0].qualifier + ".*")
			pos = tk.end
		}
	}
	list.WriteString(sql[pos:toks[sh.fromTok-1].end])
	keys := make([]string, len(hidden))
	for i := range hidden {
		keys[i] = keysAlias + "." + keyColumn(i)
	}
	var b strings.Builder
	b.WriteString(sql[:toks[sh.listStart].start])
	b.WriteString(strings.Join(hidden, ", ") + ", " + list.String())
	b.WriteString(" FROM temp." + quoteIdent(temp) + " AS " + keysAlias + " CROSS JOIN ")
	b.WriteString(sql[toks[sh.fromTok+1].start:toks[sh.fromEnd-1].end])
	b.WriteString(" WHERE ")
	if sh.whereTok >= 0 {
		b.WriteString("(" + sql[toks[sh.whereTok+1].start:toks[sh.whereEnd-1].end] + ") AND ")
	}
	b.WriteString("(" + strings.Join(hidden, ", ") + ") = (" + strings.Join(keys, ", ") + ")")
	return b.String()
}

// hasAggregate reports a call of an aggregate or window function, or an
// OVER/FILTER clause, anywhere in the statement. min() and max() with two
// or more arguments are the scalar functions.
func hasAggregate(toks []token) bool {
	for i, t := range toks {
		u := t.upper()
		if u == "OVER" || u == "FILTER" {
			return true
		}
		if i+1 >= len(toks) || toks[i+1].text != "(" || !aggregateFuncs[strings.ToLower(t.text)] || t.kind != tokIdent {
			continue
		}
		if u == "MIN" || u == "MAX" {
			args := 1
			for j := i + 2; j < len(toks) && toks[j].depth > t.depth; j++ {
				if toks[j].depth == t.depth+1 && toks[j].text == "," {
					args++
				}
			}
			if args >= 2 {
				continue
			}
		}
		return true
	}
	return false
}

// fromRef is one table of a FROM clause.
type fromRef struct {
	table     string // table name
	qualifier string // how columns of this table are named: alias or table, as written
	indexed   bool   // INDEXED BY / NOT INDEXED
}

// shape is the top-level structure of a SELECT, as token indexes.
type shape struct {
	listStart                                    int // first token of the select list
	fromTok                                      int // the FROM token
	fromEnd                                      int // token after the FROM clause
	refs                                         []fromRef
	whereTok                                     int // the WHERE token, -1 if none
	whereEnd                                     int // token after the WHERE expression
	distinct, grouped, compound, window, limited bool
}

// parseShape recognizes `SELECT [ALL] list FROM refs [WHERE expr] [ORDER
// BY ...] [LIMIT ...]` where refs are plain tables, possibly joined. It
// returns nil for anything else (CTEs, VALUES, subqueries in FROM...).
func parseShape(toks []token) *shape {
	for len(toks) > 0 && toks[len(toks)-1].text == ";" {
		toks = toks[:len(toks)-1]
	}
	if len(toks) < 4 || toks[0].upper() != "SELECT" {
		return nil
	}
	sh := &shape{listStart: 1, whereTok: -1}
	switch toks[1].upper() {
	case "DISTINCT":
		sh.distinct = true
		return sh
	case "ALL":
		sh.listStart = 2
	}
	from := -1
	clause := map[string]int{}
	for i := sh.listStart; i < len(toks); i++ {
		t := toks[i]
		if t.depth != 0 {
			continue
		}
		switch u := t.upper(); u {
		case "FROM":
			// `a IS [NOT] DISTINCT FROM b` is an operator, not the clause.
			if i >= 2 && toks[i-1].upper() == "DISTINCT" {
				continue
			}
			if from < 0 {
				from = i
			}
		case "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW":
			if _, seen := clause[u]; !seen {
				clause[u] = i
			}
		case "UNION", "EXCEPT", "INTERSECT", "VALUES":
			sh.compound = true
		}
	}
	if from < 0 || from == sh.listStart {
		return nil
	}
	for _, u := range []string{"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW"} {
		if i, ok := clause[u]; ok && i < from {
			return nil // a clause keyword inside the select list: not understood
		}
	}
	_, sh.grouped = clause["GROUP"]
	if _, ok := clause["HAVING"]; ok {
		sh.grouped = true
	}
	_, sh.window = clause["WINDOW"]
	_, sh.limited = clause["LIMIT"]
	end := len(toks)
	for _, i := range clause {
		end = min(end, i)
	}
	sh.fromTok, sh.fromEnd = from, end
	refs, ok := parseFrom(toks[from+1 : end])
	if !ok {
		return nil
	}
	sh.refs = refs
	if w, ok := clause["WHERE"]; ok {
		sh.whereTok = w
		sh.whereEnd = len(toks)
		for _, u := range []string{"GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW"} {
			if i, ok := clause[u]; ok && i > w {
				sh.whereEnd = min(sh.whereEnd, i)
			}
		}
		if sh.whereEnd == w+1 {
			return nil
		}
	}
	return sh
}

// parseFrom parses plain table references joined by commas or JOINs.
func parseFrom(toks []token) ([]fromRef, bool) {
	var refs []fromRef
	i := 0
	for {
		// table reference: [main .] name [[AS] alias] [INDEXED BY x | NOT INDEXED]
		if i >= len(toks) {
			return nil, false
		}
		name, ok := toks[i].ident()
		if !ok || toks[i].kind == tokIdent && joinWords[toks[i].upper()] {
			return nil, false
		}
		i++
		if i+1 < len(toks) && toks[i].text == "." {
			if !strings.EqualFold(name, "main") {
				return nil, false
			}
			if name, ok = toks[i+1].ident(); !ok {
				return nil, false
			}
			i += 2
		}
		if i < len(toks) && toks[i].text == "(" {
			return nil, false // table-valued function
		}
		ref := fromRef{table: name, qualifier: quoteIdent(name)}
		if i < len(toks) && toks[i].upper() == "AS" {
			i++
		}
		if i < len(toks) && (toks[i].kind == tokQuoted || toks[i].kind == tokIdent && !joinWords[toks[i].upper()]) {
			alias, _ := toks[i].ident()
			ref.qualifier = quoteIdent(alias)
			i++
		}
		if i < len(toks) && toks[i].upper() == "INDEXED" && i+2 < len(toks) {
			ref.indexed = true
			i += 3
		} else if i+1 < len(toks) && toks[i].upper() == "NOT" && toks[i+1].upper() == "INDEXED" {
			ref.indexed = true
			i += 2
		}
		refs = append(refs, ref)
		// join constraint
		if i < len(toks) && toks[i].upper() == "ON" {
			i++
			for i < len(toks) && !(toks[i].depth == toks[0].depth && (toks[i].text == "," || isJoinStart(toks[i].upper()))) {
				i++
			}
		} else if i < len(toks) && toks[i].upper() == "USING" {
			i++
			if i >= len(toks) || toks[i].text != "(" {
				return nil, false
			}
			d := toks[i].depth
			i++
			for i < len(toks) && !(toks[i].text == ")" && toks[i].depth == d) {
				i++
			}
			i++
		}
		if i >= len(toks) {
			return refs, true
		}
		// separator: , | [NATURAL] [LEFT|RIGHT|FULL [OUTER] | INNER | CROSS] JOIN
		if toks[i].text == "," {
			i++
			continue
		}
		for i < len(toks) && isJoinStart(toks[i].upper()) && toks[i].upper() != "JOIN" {
			i++
		}
		if i >= len(toks) || toks[i].upper() != "JOIN" {
			return nil, false
		}
		i++
	}
}

func isJoinStart(u string) bool {
	switch u {
	case "JOIN", "NATURAL", "LEFT", "RIGHT", "FULL", "INNER", "CROSS", "OUTER":
		return true
	}
	return false
}

package pubsub

import (
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// strategy is how a subscription's changes are computed.
type strategy uint8

const (
	// stratPK: one table, no aggregates, no subqueries, no LIMIT: every
	// result row depends on one table row only, so a change is evaluated by
	// re-running the query restricted to the changed primary keys
	// (Corrosion's method, where it is correct) and rows are keyed by the
	// table's primary key.
	stratPK strategy = iota + 1
	// stratKeyed: plain tables joined, no aggregates, DISTINCT or GROUP
	// BY: re-run the whole query and diff rows keyed by the primary keys of
	// every table in FROM, so a changed row is an update.
	stratKeyed
	// stratContent: anything else SQLite accepts read-only (aggregates,
	// GROUP BY, DISTINCT, compound selects, CTEs...): re-run and diff rows
	// by content with multiplicity; a changed row is a delete and an insert.
	// This is what makes aggregates correct (Corrosion issue #326).
	stratContent
)

func (s strategy) String() string {
	switch s {
	case stratPK:
		return "primary-key"
	case stratKeyed:
		return "full"
	}
	return "full-content"
}

// column and tableInfo describe a replicated table as SQLite reports it.
type column struct {
	name, decl, coll string
	pk               int
}

type tableInfo struct {
	name string
	cols []column
	pk   []string // key columns in key order
}

func (t *tableInfo) column(name string) *column {
	for i := range t.cols {
		if strings.EqualFold(t.cols[i].name, name) {
			return &t.cols[i]
		}
	}
	return nil
}

// plan is the analysis of a subscription's statement.
type plan struct {
	columns  []string                   // result columns shown to clients
	reads    map[string]map[string]bool // lower table -> lower columns read; nil set = all
	tables   []string                   // lower names of tables read, sorted
	strategy strategy
	nhidden  int    // identity columns prefixed to every result row
	fullSQL  string // the query with the identity columns
	// stratPK only:
	table       *tableInfo
	restrictSQL string  // fullSQL restricted to the keys in the table's key set
	eq          *eqCond // an indexable `column = constant` conjunct, if any
}

// eqCond is a top-level `column = constant` conjunct of the WHERE clause: a
// row whose column does not hold key (see normKey) cannot be in the result.
type eqCond struct {
	col string // lower column name
	key string
}

// Functions whose presence makes a result depend on many rows.
var aggregateFuncs = map[string]bool{
	"count": true, "sum": true, "total": true, "avg": true, "min": true, "max": true,
	"group_concat": true, "string_agg": true, "json_group_array": true, "json_group_object": true,
	"jsonb_group_array": true, "jsonb_group_object": true, "median": true, "percentile": true,
	"percentile_cont": true, "percentile_disc": true, "mode": true, "stddev": true, "variance": true,
	"row_number": true, "rank": true, "dense_rank": true, "percent_rank": true, "cume_dist": true,
	"ntile": true, "lag": true, "lead": true, "first_value": true, "last_value": true, "nth_value": true,
}

// Functions whose result changes without any write: a subscription over
// them could not be maintained, so they are refused.
var volatileFuncs = map[string]bool{
	"random": true, "randomblob": true, "changes": true, "total_changes": true, "last_insert_rowid": true,
}

// jsonTables are table-valued functions a query may read: they hold no
// data, only their arguments'.
var jsonTables = map[string]bool{"json_each": true, "json_tree": true, "jsonb_each": true, "jsonb_tree": true}

// keywords that end a FROM clause's table reference or join it to the next.
var joinWords = map[string]bool{
	"JOIN": true, "NATURAL": true, "LEFT": true, "RIGHT": true, "FULL": true, "INNER": true,
	"CROSS": true, "OUTER": true, "ON": true, "USING": true, "INDEXED": true, "NOT": true,
	"WHERE": true, "GROUP": true, "HAVING": true, "ORDER": true, "LIMIT": true, "WINDOW": true,
	"UNION": true, "EXCEPT": true, "INTERSECT": true, "AS": true, "FROM": true, "SELECT": true,
}

// analyzer prepares and inspects statements on its own connection.
type analyzer struct {
	conn      *sqlite3.Conn
	tables    map[string]*tableInfo // lower name -> table
	schemaVer int64
	tempName  func(table string) string
}

// loadTables (re)reads the replicated tables when the schema changed.
func (a *analyzer) loadTables() error {
	st, _, err := a.conn.Prepare(`PRAGMA schema_version`)
	if err != nil {
		return err
	}
	var ver int64
	if st.Step() {
		ver = st.ColumnInt64(0)
	}
	err = st.Close()
	if err != nil {
		return err
	}
	if a.tables != nil && ver == a.schemaVer {
		return nil
	}
	tables, err := readTables(a.conn)
	if err != nil {
		return err
	}
	a.tables, a.schemaVer = tables, ver
	return nil
}

// readTables lists the replicated tables: every table of the main schema
// except SQLite's and patina's bookkeeping.
func readTables(conn *sqlite3.Conn) (map[string]*tableInfo, error) {
	st, _, err := conn.Prepare(`SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND instr(name, '__patina') = 0`)
	if err != nil {
		return nil, err
	}
	var names []string
	for st.Step() {
		names = append(names, st.ColumnText(0))
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	out := map[string]*tableInfo{}
	ci, _, err := conn.Prepare(`SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid`)
	if err != nil {
		return nil, err
	}
	defer ci.Close()
	for _, n := range names {
		t := &tableInfo{name: n}
		ci.BindText(1, n)
		type pkc struct {
			pos  int
			name string
		}
		var pks []pkc
		for ci.Step() {
			c := column{name: ci.ColumnText(0), decl: ci.ColumnText(1), pk: ci.ColumnInt(2)}
			_, coll, _, _, _, err := conn.TableColumnMetadata("main", n, c.name)
			if err != nil {
				coll = "?"
			}
			c.coll = coll
			if c.pk > 0 {
				pks = append(pks, pkc{c.pk, c.name})
			}
			t.cols = append(t.cols, c)
		}
		if err := ci.Reset(); err != nil {
			return nil, err
		}
		sort.Slice(pks, func(i, j int) bool { return pks[i].pos < pks[j].pos })
		for _, p := range pks {
			t.pk = append(t.pk, p.name)
		}
		if len(t.pk) == 0 {
			continue // not a replicated table
		}
		out[strings.ToLower(n)] = t
	}
	return out, nil
}

// authInfo is what the authorizer saw while a statement was prepared.
type authInfo struct {
	reads   map[string]map[string]bool
	schemas map[string]bool
	selects int
	funcs   map[string]bool
	denied  []string
}

func (a *analyzer) prepareAuthorized(sql string) (*sqlite3.Stmt, string, *authInfo, error) {
	info := &authInfo{reads: map[string]map[string]bool{}, schemas: map[string]bool{}, funcs: map[string]bool{}}
	err := a.conn.SetAuthorizer(func(action sqlite3.AuthorizerActionCode, n3, n4, schema, _ string) sqlite3.AuthorizerReturnCode {
		switch action {
		case sqlite3.AUTH_SELECT:
			info.selects++
		case sqlite3.AUTH_READ:
			t := strings.ToLower(n3)
			if info.reads[t] == nil {
				info.reads[t] = map[string]bool{}
			}
			info.reads[t][strings.ToLower(n4)] = true
			info.schemas[schema] = true
		case sqlite3.AUTH_FUNCTION:
			info.funcs[strings.ToLower(n4)] = true
		case sqlite3.AUTH_RECURSIVE:
		default:
			info.denied = append(info.denied, authActionName(action, n3))
			return sqlite3.AUTH_DENY
		}
		return sqlite3.AUTH_OK
	})
	if err != nil {
		return nil, "", nil, err
	}
	st, tail, perr := a.conn.Prepare(sql)
	if err := a.conn.SetAuthorizer(nil); err != nil && perr == nil {
		perr = err
	}
	return st, tail, info, perr
}

func authActionName(action sqlite3.AuthorizerActionCode, name string) string {
	switch action {
	case sqlite3.AUTH_INSERT:
		return "INSERT into " + name
	case sqlite3.AUTH_UPDATE:
		return "UPDATE of " + name
	case sqlite3.AUTH_DELETE:
		return "DELETE from " + name
	case sqlite3.AUTH_PRAGMA:
		return "PRAGMA " + name
	case sqlite3.AUTH_ATTACH, sqlite3.AUTH_DETACH:
		return "ATTACH/DETACH"
	case sqlite3.AUTH_TRANSACTION, sqlite3.AUTH_SAVEPOINT:
		return "transaction control"
	}
	return fmt.Sprintf("schema change (action %d)", action)
}

// analyze checks that st is one read-only SELECT over replicated tables and
// plans how to maintain it.
func (a *analyzer) analyze(st patina.Statement) (*plan, error) {
	sql := strings.TrimSpace(st.SQL)
	if sql == "" {
		return nil, patina.Errorf(patina.EINVALID, "empty SQL statement; subscribe to a SELECT")
	}
	if strings.Contains(strings.ToLower(sql), "__patina") {
		return nil, patina.Errorf(patina.EINVALID, "subscriptions cannot read patina's bookkeeping tables (__patina*)")
	}
	if err := a.loadTables(); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	stmt, tail, info, err := a.prepareAuthorized(sql)
	if err != nil {
		if len(info.denied) > 0 {
			return nil, patina.Errorf(patina.EINVALID, "subscriptions take one read-only SELECT statement; %s is not allowed", info.denied[0])
		}
		return nil, patina.Errorf(patina.EINVALID, "prepare %q: %v", shorten(sql), err)
	}
	if stmt == nil {
		return nil, patina.Errorf(patina.EINVALID, "statement %q has no SQL (only comments?)", shorten(sql))
	}
	defer stmt.Close()
	if strings.TrimSpace(strings.Trim(tail, "; \n\t")) != "" {
		return nil, patina.Errorf(patina.EINVALID, "statement %q holds more than one SQL statement; subscribe to one SELECT", shorten(sql))
	}
	if !stmt.ReadOnly() || stmt.ColumnCount() == 0 {
		return nil, patina.Errorf(patina.EINVALID, "statement %q is not a read-only query; subscriptions take one SELECT", shorten(sql))
	}
	if err := bindStatement(stmt, st); err != nil {
		return nil, err
	}
	for f := range info.funcs {
		if volatileFuncs[f] {
			return nil, patina.Errorf(patina.EINVALID, "subscription query calls %s(), whose result changes without any write, so its result cannot be maintained; compute it in the client instead", f)
		}
	}
	for s := range info.schemas {
		if s != "main" && s != "" {
			return nil, patina.Errorf(patina.EINVALID, "subscription query reads schema %q; subscriptions read the replicated tables of the main schema only", s)
		}
	}
	p := &plan{reads: map[string]map[string]bool{}, strategy: stratContent, fullSQL: sql}
	for t, cols := range info.reads {
		if jsonTables[t] {
			continue // table-valued functions over their arguments
		}
		if _, ok := a.tables[t]; !ok {
			return nil, patina.Errorf(patina.EINVALID, "subscription query reads %q, which is not a replicated table; subscriptions read the tables of the schema files (%s)", t, strings.Join(a.tableNames(), ", "))
		}
		if cols[""] {
			cols = nil // the row itself (rowid, count(*)): any change matters
		}
		p.reads[t] = cols
		p.tables = append(p.tables, t)
	}
	sort.Strings(p.tables)
	for i := 0; i < stmt.ColumnCount(); i++ {
		p.columns = append(p.columns, stmt.ColumnName(i))
	}
	toks, ok := lex(sql)
	if !ok {
		return p, nil
	}
	numberParams(toks)
	sh := parseShape(toks)
	if sh == nil || sh.distinct || sh.grouped || sh.compound || sh.window || hasAggregate(toks) || len(sh.refs) == 0 {
		return p, nil
	}
	var hidden []string
	for _, r := range sh.refs {
		t := a.tables[strings.ToLower(r.table)]
		if t == nil {
			return p, nil
		}
		for _, k := range t.pk {
			hidden = append(hidden, r.qualifier+"."+quoteIdent(k))
		}
	}
	prefix := sql[:toks[sh.listStart].start] + strings.Join(hidden, ", ") + ", "
	fullSQL := prefix + sql[toks[sh.listStart].start:]
	if !a.sameShape(fullSQL, st, p, len(hidden)) {
		return p, nil
	}
	p.strategy, p.fullSQL, p.nhidden = stratKeyed, fullSQL, len(hidden)
	if len(sh.refs) != 1 || sh.limited || info.selects != 1 || sh.refs[0].indexed {
		return p, nil
	}
	t := a.tables[strings.ToLower(sh.refs[0].table)]
	temp := a.tempName(t.name)
	var keyCols []string
	for i := range t.pk {
		keyCols = append(keyCols, fmt.Sprintf("c%d", i))
	}
	in := fmt.Sprintf("(%s) IN (SELECT %s FROM temp.%s)", strings.Join(hidden, ", "), strings.Join(keyCols, ", "), quoteIdent(temp))
	var restrict string
	if sh.whereTok >= 0 {
		restrict = prefix + sql[toks[sh.listStart].start:toks[sh.whereTok].end] + " (" + sql[toks[sh.whereTok+1].start:toks[sh.whereEnd-1].end] + ") AND " + in
	} else {
		restrict = prefix + sql[toks[sh.listStart].start:toks[sh.fromEnd-1].end] + " WHERE " + in
	}
	p.strategy, p.table, p.restrictSQL = stratPK, t, restrict
	if sh.whereTok >= 0 {
		p.eq = a.findEq(toks, sh, t, st)
	}
	return p, nil
}

// sameShape prepares a rewritten query and checks that it reads what the
// original reads and returns hidden more columns; a rewrite that does not
// is a bug in the shape parser, and the subscription falls back to
// diffing by content.
func (a *analyzer) sameShape(sql string, st patina.Statement, p *plan, hidden int) bool {
	stmt, _, info, err := a.prepareAuthorized(sql)
	if err != nil || stmt == nil {
		return false
	}
	defer stmt.Close()
	if stmt.ColumnCount() != len(p.columns)+hidden || bindStatement(stmt, st) != nil {
		return false
	}
	for i, c := range p.columns {
		if stmt.ColumnName(hidden+i) != c {
			return false
		}
	}
	if len(info.reads) != len(p.reads) {
		return false
	}
	for t := range p.reads {
		if info.reads[t] == nil {
			return false
		}
	}
	return true
}

func (a *analyzer) tableNames() []string {
	var out []string
	for _, t := range a.tables {
		out = append(out, t.name)
	}
	sort.Strings(out)
	return out
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
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
	sh.fromEnd = end
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

// findEq looks for a top-level `column = constant` conjunct in the WHERE
// clause of a single-table query, for the candidate index. It gives up
// (nil) on anything it does not fully understand, which only costs
// evaluation time.
func (a *analyzer) findEq(toks []token, sh *shape, t *tableInfo, st patina.Statement) *eqCond {
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
	for _, c := range conj {
		for _, order := range [2]bool{false, true} {
			col, lit, ok := splitEq(c, order)
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
			return &eqCond{col: strings.ToLower(cn.name), key: normKey(nv)}
		}
	}
	return nil
}

// splitEq splits `A = B` into its column side and constant side; swapped
// takes B as the column.
func splitEq(c []token, swapped bool) (col, lit []token, ok bool) {
	for i, tk := range c {
		if tk.kind == tokOp && (tk.text == "=" || tk.text == "==") {
			if swapped {
				return c[i+1:], c[:i], true
			}
			return c[:i], c[i+1:], true
		}
	}
	return nil, nil, false
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

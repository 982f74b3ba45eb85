package pubsub

import (
	"fmt"
	"sort"
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
	restrictSQL string    // fullSQL restricted to the keys in the table's key set
	eq          *eqCond   // an indexable `column = constant` conjunct, if any
	conds       []cmpCond // `column OP constant` conjuncts, checked in Go first
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
			info.schemas[schema] = true
			if schema == "temp" {
				break // checked through schemas; our own rewrites read temp key tables
			}
			t := strings.ToLower(n3)
			if info.reads[t] == nil {
				info.reads[t] = map[string]bool{}
			}
			info.reads[t][strings.ToLower(n4)] = true
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
	if err := createKeyTable(a.conn, temp, len(t.pk)); err != nil {
		return nil, fmt.Errorf("create temp key table: %w", err)
	}
	restrict := restrictSQL(sql, toks, sh, hidden, temp)
	if !a.sameShape(restrict, st, p, len(hidden)) {
		return p, nil
	}
	p.strategy, p.table, p.restrictSQL = stratPK, t, restrict
	if sh.whereTok >= 0 {
		p.conds = a.findConds(toks, sh, t, st)
		p.eq = pickEq(p.conds)
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

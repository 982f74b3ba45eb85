package sqlite

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/crdt"
)

// tableStmts holds one table's remote-apply statements on the writer
// connection, their SQL built once per schema (db.tstmts is reset with the
// statement cache whenever the schema changes).
type tableStmts struct {
	t *Table

	lookup    *sqlite3.Stmt // pk -> key, sentinel cl, site, db_version
	insertKey *sqlite3.Stmt
	colClocks *sqlite3.Stmt
	dropCols  *sqlite3.Stmt // delete the column clocks of a key
	deleteRow *sqlite3.Stmt
	clocks    []*sqlite3.Stmt          // [n-1]: upsert n clock rows of one key
	upserts   map[string]*sqlite3.Stmt // by column subset (see rowKey)
	values    []*sqlite3.Stmt          // [i]: read NonPK[i] of a row
}

func (db *DB) tableStmts(name string) (*tableStmts, error) {
	if ts := db.tstmts[name]; ts != nil {
		return ts, nil
	}
	t := db.schema.Load().Tables[name]
	if t == nil {
		return nil, &errMissingSchema{fmt.Sprintf("table %q is not in this node's schema", name)}
	}
	ts := &tableStmts{t: t, clocks: make([]*sqlite3.Stmt, len(t.NonPK)+1), upserts: map[string]*sqlite3.Stmt{}, values: make([]*sqlite3.Stmt, len(t.NonPK))}
	where := t.pkWhere("p.")
	var err error
	prep := func(sql string) *sqlite3.Stmt {
		if err != nil {
			return nil
		}
		var s *sqlite3.Stmt
		s, err = db.stmt(sql)
		return s
	}
	ts.lookup = prep(fmt.Sprintf(`SELECT p.key, s.col_version, s.site, s.db_version FROM %s p LEFT JOIN %s s ON s.key = p.key AND s.cid = '-1' WHERE %s`,
		pksTable(t.Name), clockTable(t.Name), where))
	ts.insertKey = prep(fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, pksTable(t.Name), t.pkList(""), placeholders(len(t.PK))))
	ts.colClocks = prep(fmt.Sprintf(`SELECT cid, col_version, site FROM %s WHERE key = ? AND cid != '-1'`, clockTable(t.Name)))
	ts.dropCols = prep(fmt.Sprintf(`DELETE FROM %s WHERE key = ? AND cid != '-1'`, clockTable(t.Name)))
	ts.deleteRow = prep(fmt.Sprintf(`DELETE FROM %s WHERE %s`, quoteIdent(t.Name), t.pkWhere("")))
	if err != nil {
		return nil, err
	}
	db.tstmts[name] = ts
	return ts, nil
}

// clockUpsert returns the statement upserting n clock rows of one key:
// parameter 1 is the key, then (cid, col_version, db_version, site, seq, ts)
// per row.
func (db *DB) clockUpsert(ts *tableStmts, n int) (*sqlite3.Stmt, error) {
	if s := ts.clocks[n-1]; s != nil {
		return s, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, `INSERT INTO %s (key, cid, col_version, db_version, site, seq, ts) VALUES `, clockTable(ts.t.Name))
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?1, ?, ?, ?, ?, ?, ?)")
	}
	b.WriteString(` ON CONFLICT (key, cid) DO UPDATE SET col_version = excluded.col_version, db_version = excluded.db_version, site = excluded.site, seq = excluded.seq, ts = excluded.ts`)
	s, err := db.stmt(b.String())
	if err != nil {
		return nil, err
	}
	ts.clocks[n-1] = s
	return s, nil
}

// rowUpsert returns the statement creating a row with the given non-key
// columns (indexes into NonPK, ascending) or setting them on an existing
// row. Parameters: the key values, then the column values.
func (db *DB) rowUpsert(ts *tableStmts, cols []int, buf []byte) (*sqlite3.Stmt, error) {
	buf = buf[:0]
	for _, c := range cols {
		buf = append(buf, byte(c), byte(c>>8), byte(c>>16))
	}
	if s := ts.upserts[string(buf)]; s != nil {
		return s, nil
	}
	t := ts.t
	names := make([]string, 0, len(t.PK)+len(cols))
	for _, k := range t.PK {
		names = append(names, quoteIdent(k))
	}
	sets := make([]string, len(cols))
	for i, c := range cols {
		n := quoteIdent(t.NonPK[c])
		names = append(names, n)
		sets[i] = n + " = excluded." + n
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	s, err := db.stmt(fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s`,
		quoteIdent(t.Name), strings.Join(names, ", "), placeholders(len(names)), t.pkList(""), conflict))
	if err != nil {
		return nil, err
	}
	ts.upserts[string(buf)] = s
	return s, nil
}

func (db *DB) valueStmt(ts *tableStmts, col int) (*sqlite3.Stmt, error) {
	if s := ts.values[col]; s != nil {
		return s, nil
	}
	s, err := db.stmt(fmt.Sprintf(`SELECT %s FROM %s WHERE %s`, quoteIdent(ts.t.NonPK[col]), quoteIdent(ts.t.Name), ts.t.pkWhere("")))
	if err != nil {
		return nil, err
	}
	ts.values[col] = s
	return s, nil
}

func (t *Table) pkWhere(prefix string) string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i] = prefix + quoteIdent(c) + " = ?"
	}
	return strings.Join(parts, " AND ")
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func bindPK(s *sqlite3.Stmt, pk []patina.Value) error {
	for i, v := range pk {
		if err := bindValue(s, i+1, v); err != nil {
			return err
		}
	}
	return nil
}

// merger applies the rows of one version of one actor.
type merger struct {
	db      *DB
	actor   patina.ActorID
	site    int64
	version patina.Version
	ts      patina.Timestamp

	// scratch, reused across rows
	pending []pendingCell
	local   []localClock
	cols    []int
	buf     []byte
}

// pendingCell is an incoming cell that won and will be written.
type pendingCell struct {
	col        int // index in NonPK
	colVersion int64
	value      patina.Value
	seq        patina.Seq
}

type localClock struct {
	colVersion int64 // -1: no clock
	site       int64
}

// sentinelClock is a row's sentinel clock. dbVersion 0 marks a sentinel
// inferred from a column change at a causal length whose own sentinel change
// has not arrived yet (the version that wrote it comes later, or in
// another chunk): any real sentinel at the same causal length replaces it,
// and ChangesFor never serves it (no version is 0), so every replica ends
// with the clock of the sentinel write that actually happened.
type sentinelClock struct {
	cl, site, dbVersion int64
	seq                 patina.Seq
}

// mergeRow applies the changes of one row with DESIGN.md §1's rules: it
// decides everything in memory against the row's clocks, then writes the
// sentinel and the winning column clocks in one statement and the row in
// another.
func (m *merger) mergeRow(ts *tableStmts, changes []patina.Change) error {
	db, t := m.db, ts.t
	pk, err := UnpackPK(changes[0].PK)
	if err != nil {
		return err
	}
	if len(pk) != len(t.PK) {
		return fmt.Errorf("primary key has %d values, table has %d key columns (%s)", len(pk), len(t.PK), strings.Join(t.PK, ", "))
	}
	for i, v := range pk {
		if v.IsNull() {
			return fmt.Errorf("primary key column %q is NULL", t.PK[i])
		}
	}
	key, found, sent, err := m.lookup(ts, pk)
	if err != nil {
		return fmt.Errorf("look up key: %w", err)
	}
	if !found {
		if err := bindPK(ts.insertKey, pk); err != nil {
			return err
		}
		if err := ts.insertKey.Exec(); err != nil {
			return fmt.Errorf("register key: %w", err)
		}
		key = db.w.LastInsertRowID()
	}
	cl := sent.cl
	alive0 := crdt.IsAlive(cl) // column clocks exist only for live rows
	loaded := false
	var reset, deleteRow, touched, sentDirty bool
	pending := m.pending[:0]
	for i := range changes {
		c := &changes[i]
		op := crdt.ClassifyCL(c.CL, cl)
		own := sentinelClock{cl: c.CL, site: m.site, dbVersion: int64(m.version), seq: c.Seq}
		if c.Column == patina.SentinelColumn {
			switch op {
			case crdt.RowDelete:
				cl, sent, sentDirty = c.CL, own, true
				reset, deleteRow, touched, pending = true, true, false, pending[:0]
			case crdt.RowResurrect:
				cl, sent, sentDirty = c.CL, own, true
				reset, touched, pending = true, true, pending[:0]
			case crdt.RowSame:
				if sent.dbVersion == 0 || (sent.site != m.site && crdt.SentinelWins(m.actor, db.siteActor(sent.site))) {
					sent, sentDirty = own, true
				}
			}
			continue
		}
		switch op {
		case crdt.RowIgnore, crdt.RowDelete:
			continue // stale; (validate refuses column changes at even cl)
		case crdt.RowResurrect:
			cl, sent, sentDirty = c.CL, sentinelClock{cl: c.CL, site: m.site}, true
			reset, touched, pending = true, true, pending[:0]
		}
		col, ok := t.nonPKIdx[c.Column]
		if !ok {
			return &errMissingSchema{fmt.Sprintf("table %q has no column %q on this node", t.Name, c.Column)}
		}
		in := crdt.Cell{ColVersion: c.ColVersion, Value: c.Value, Site: m.actor}
		j := 0
		for j < len(pending) && pending[j].col != col {
			j++
		}
		if j < len(pending) {
			p := &pending[j]
			if crdt.CellWins(in, crdt.Cell{ColVersion: p.colVersion, Value: p.value, Site: m.actor}) {
				*p = pendingCell{col: col, colVersion: c.ColVersion, value: c.Value, seq: c.Seq}
			}
			continue
		}
		if alive0 && !reset {
			if !loaded {
				if err := m.loadClocks(ts, key); err != nil {
					return fmt.Errorf("read clocks: %w", err)
				}
				loaded = true
			}
			if lc := m.local[col]; lc.colVersion >= 0 {
				if c.ColVersion < lc.colVersion {
					continue
				}
				if c.ColVersion == lc.colVersion {
					lv, err := m.value(ts, pk, col)
					if err != nil {
						return fmt.Errorf("read column %q: %w", c.Column, err)
					}
					if !crdt.CellWins(in, crdt.Cell{ColVersion: lc.colVersion, Value: lv, Site: db.siteActor(lc.site)}) {
						continue
					}
				}
			}
		}
		pending = append(pending, pendingCell{col: col, colVersion: c.ColVersion, value: c.Value, seq: c.Seq})
	}
	m.pending = pending

	if reset && alive0 {
		if err := ts.dropCols.BindInt64(1, key); err != nil {
			return err
		}
		if err := ts.dropCols.Exec(); err != nil {
			return fmt.Errorf("drop column clocks: %w", err)
		}
	}
	if deleteRow && alive0 {
		if err := bindPK(ts.deleteRow, pk); err != nil {
			return err
		}
		if err := ts.deleteRow.Exec(); err != nil {
			return fmt.Errorf("delete row: %w", err)
		}
	}
	if err := m.writeClocks(ts, key, sentDirty, sent, pending); err != nil {
		return fmt.Errorf("write clocks: %w", err)
	}
	if crdt.IsAlive(cl) && (touched || len(pending) > 0) {
		if err := m.writeRow(ts, pk, pending); err != nil {
			return fmt.Errorf("write row: %w", err)
		}
	}
	return nil
}

func (m *merger) lookup(ts *tableStmts, pk []patina.Value) (key int64, found bool, sent sentinelClock, err error) {
	s := ts.lookup
	defer s.Reset()
	if err := bindPK(s, pk); err != nil {
		return 0, false, sent, err
	}
	if !s.Step() {
		return 0, false, sent, s.Err()
	}
	key = s.ColumnInt64(0)
	if s.ColumnType(1) != sqlite3.NULL {
		sent = sentinelClock{cl: s.ColumnInt64(1), site: s.ColumnInt64(2), dbVersion: s.ColumnInt64(3)}
	}
	return key, true, sent, nil
}

func (m *merger) loadClocks(ts *tableStmts, key int64) error {
	if cap(m.local) < len(ts.t.NonPK) {
		m.local = make([]localClock, len(ts.t.NonPK))
	}
	m.local = m.local[:len(ts.t.NonPK)]
	for i := range m.local {
		m.local[i] = localClock{colVersion: -1}
	}
	s := ts.colClocks
	defer s.Reset()
	if err := s.BindInt64(1, key); err != nil {
		return err
	}
	for s.Step() {
		if col, ok := ts.t.nonPKIdx[string(s.ColumnRawText(0))]; ok {
			m.local[col] = localClock{colVersion: s.ColumnInt64(1), site: s.ColumnInt64(2)}
		}
	}
	return s.Err()
}

// value reads a column's current value, for a tie on col_version.
func (m *merger) value(ts *tableStmts, pk []patina.Value, col int) (patina.Value, error) {
	s, err := m.db.valueStmt(ts, col)
	if err != nil {
		return patina.Value{}, err
	}
	defer s.Reset()
	if err := bindPK(s, pk); err != nil {
		return patina.Value{}, err
	}
	if s.Step() {
		return columnValue(s, 0), nil
	}
	return patina.Null(), s.Err()
}

func (m *merger) writeClocks(ts *tableStmts, key int64, sentDirty bool, sent sentinelClock, pending []pendingCell) error {
	n := len(pending)
	if sentDirty {
		n++
	}
	if n == 0 {
		return nil
	}
	s, err := m.db.clockUpsert(ts, n)
	if err != nil {
		return err
	}
	s.BindInt64(1, key)
	p := 2
	bind := func(cid string, colVersion, dbVersion, site int64, seq patina.Seq) {
		s.BindText(p, cid)
		s.BindInt64(p+1, colVersion)
		s.BindInt64(p+2, dbVersion)
		s.BindInt64(p+3, site)
		s.BindInt64(p+4, int64(seq))
		s.BindInt64(p+5, int64(m.ts))
		p += 6
	}
	if sentDirty {
		bind(patina.SentinelColumn, sent.cl, sent.dbVersion, sent.site, sent.seq)
	}
	for i := range pending {
		c := &pending[i]
		bind(ts.t.NonPK[c.col], c.colVersion, int64(m.version), m.site, c.seq)
	}
	return s.Exec()
}

func (m *merger) writeRow(ts *tableStmts, pk []patina.Value, pending []pendingCell) error {
	sort.Slice(pending, func(i, j int) bool { return pending[i].col < pending[j].col })
	m.cols = m.cols[:0]
	for i := range pending {
		m.cols = append(m.cols, pending[i].col)
	}
	s, err := m.db.rowUpsert(ts, m.cols, m.buf)
	if err != nil {
		return err
	}
	if err := bindPK(s, pk); err != nil {
		return err
	}
	for i := range pending {
		if err := bindValue(s, len(pk)+1+i, pending[i].value); err != nil {
			return err
		}
	}
	return s.Exec()
}

package sqlite

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/crdt"
)

// Remote changes merge in two passes per changeset. The first decides every
// row in memory against its local clocks (one lookup per row, more reads
// only on ties or for live rows) and queues the writes; the second writes
// them in multi-row statements per table. Each row's changes are grouped
// first, so a row is decided once and no decision reads a write still
// queued. Multi-row statements matter with this driver: every statement
// inside the changeset's savepoint copies the pages it touches into a
// statement journal, so fewer, larger statements copy each page once.

// batchRows is the most rows one multi-row statement writes.
const batchRows = 64

// tableStmts holds one table's remote-apply statements on the apply
// connection, their SQL built once per schema (db.tstmts is reset with the
// statement cache whenever the schema changes).
type tableStmts struct {
	t *Table

	lookup    *sqlite3.Stmt // pk -> key, sentinel cl, site, db_version
	maxKey    *sqlite3.Stmt
	colClocks *sqlite3.Stmt
	dropCols  *sqlite3.Stmt // delete the column clocks of a key
	deleteRow *sqlite3.Stmt
	keys      []*sqlite3.Stmt          // [n-1]: insert n keys
	clocks    []*sqlite3.Stmt          // [n-1]: upsert n clock rows
	upserts   map[string]*sqlite3.Stmt // by column subset and row count
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
	ts := &tableStmts{t: t, keys: make([]*sqlite3.Stmt, batchRows), clocks: make([]*sqlite3.Stmt, batchRows),
		upserts: map[string]*sqlite3.Stmt{}, values: make([]*sqlite3.Stmt, len(t.NonPK))}
	var err error
	prep := func(sql string) *sqlite3.Stmt {
		if err != nil {
			return nil
		}
		var s *sqlite3.Stmt
		s, err = db.ap.stmt(sql)
		return s
	}
	ts.lookup = prep(fmt.Sprintf(`SELECT p.key, s.col_version, s.site, s.db_version FROM %s p LEFT JOIN %s s ON s.key = p.key AND s.cid = '-1' WHERE %s`,
		pksTable(t.Name), clockTable(t.Name), t.pkWhere("p.")))
	ts.maxKey = prep(fmt.Sprintf(`SELECT coalesce(max(key), 0) FROM %s`, pksTable(t.Name)))
	ts.colClocks = prep(fmt.Sprintf(`SELECT cid, col_version, site FROM %s WHERE key = ? AND cid != '-1'`, clockTable(t.Name)))
	ts.dropCols = prep(fmt.Sprintf(`DELETE FROM %s WHERE key = ? AND cid != '-1'`, clockTable(t.Name)))
	ts.deleteRow = prep(fmt.Sprintf(`DELETE FROM %s WHERE %s`, quoteIdent(t.Name), t.pkWhere("")))
	if err != nil {
		return nil, err
	}
	db.tstmts[name] = ts
	return ts, nil
}

// values renders n rows of k placeholders.
func valuesList(n, k int) string {
	row := "(" + placeholders(k) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// keyInsert returns the statement inserting n keys: (key, key columns...)
// per row.
func (db *DB) keyInsert(ts *tableStmts, n int) (*sqlite3.Stmt, error) {
	if s := ts.keys[n-1]; s != nil {
		return s, nil
	}
	// OR IGNORE so that no constraint can abort the statement halfway
	// (which makes SQLite keep a statement journal); flushTable checks that
	// every key went in instead.
	s, err := db.ap.stmt(fmt.Sprintf(`INSERT OR IGNORE INTO %s (key, %s) VALUES %s`, pksTable(ts.t.Name), ts.t.pkList(""), valuesList(n, 1+len(ts.t.PK))))
	if err != nil {
		return nil, err
	}
	ts.keys[n-1] = s
	return s, nil
}

// clockUpsert returns the statement upserting n clock rows: (key, cid,
// col_version, db_version, site, seq, ts) per row.
func (db *DB) clockUpsert(ts *tableStmts, n int) (*sqlite3.Stmt, error) {
	if s := ts.clocks[n-1]; s != nil {
		return s, nil
	}
	s, err := db.ap.stmt(fmt.Sprintf(`INSERT OR REPLACE INTO %s (key, cid, col_version, db_version, site, seq, ts) VALUES %s`,
		clockTable(ts.t.Name), valuesList(n, 7)))
	if err != nil {
		return nil, err
	}
	ts.clocks[n-1] = s
	return s, nil
}

// rowUpsert returns the statement creating n rows with the given non-key
// columns (indexes into NonPK, ascending) or setting those columns on
// existing rows. Parameters per row: the key values, then the column values.
func (db *DB) rowUpsert(ts *tableStmts, set string, cols []int, n int) (*sqlite3.Stmt, error) {
	id := fmt.Sprintf("%s/%d", set, n)
	if s := ts.upserts[id]; s != nil {
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
	s, err := db.ap.stmt(fmt.Sprintf(`INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) %s`,
		quoteIdent(t.Name), strings.Join(names, ", "), valuesList(n, len(names)), t.pkList(""), conflict))
	if err != nil {
		return nil, err
	}
	ts.upserts[id] = s
	return s, nil
}

func (db *DB) valueStmt(ts *tableStmts, col int) (*sqlite3.Stmt, error) {
	if s := ts.values[col]; s != nil {
		return s, nil
	}
	s, err := db.ap.stmt(fmt.Sprintf(`SELECT %s FROM %s WHERE %s`, quoteIdent(ts.t.NonPK[col]), quoteIdent(ts.t.Name), ts.t.pkWhere("")))
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

	tables []*tableBatch // queued writes, in order of first use
	byName map[string]*tableBatch

	// scratch, reused across rows
	pending []pendingCell
	local   []localClock
}

// tableBatch is the writes queued for one table.
type tableBatch struct {
	ts      *tableStmts
	nextKey int64 // 0: not read yet
	keys    []queuedKey
	clocks  []queuedClock
	drops   []int64          // keys whose column clocks go
	deletes [][]patina.Value // rows that go
	upserts map[string]*queuedUpserts
	order   []string // upsert sets in order of first use
}

type queuedKey struct {
	key int64
	pk  []patina.Value
}

type queuedClock struct {
	key                         int64
	cid                         string
	colVersion, dbVersion, site int64
	seq                         patina.Seq
}

type queuedUpserts struct {
	cols []int
	rows [][]patina.Value // key values then column values
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

func (m *merger) batch(ts *tableStmts) *tableBatch {
	if b := m.byName[ts.t.Name]; b != nil {
		return b
	}
	b := &tableBatch{ts: ts, upserts: map[string]*queuedUpserts{}}
	if m.byName == nil {
		m.byName = map[string]*tableBatch{}
	}
	m.byName[ts.t.Name] = b
	m.tables = append(m.tables, b)
	return b
}

// mergeRow decides the changes of one row with DESIGN.md §1's rules and
// queues the writes. It sees every change of the row in this changeset.
func (m *merger) mergeRow(ts *tableStmts, changes []patina.Change) error {
	db, t := m.db, ts.t
	b := m.batch(ts)
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
		if b.nextKey == 0 {
			if b.nextKey, err = m.maxKey(ts); err != nil {
				return fmt.Errorf("read keys: %w", err)
			}
			b.nextKey++
		}
		key = b.nextKey
		b.nextKey++
		b.keys = append(b.keys, queuedKey{key: key, pk: pk})
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

	// Queue the writes; flush runs them in this order per table: clock
	// drops, row deletes, keys, clocks, rows.
	if reset && alive0 {
		b.drops = append(b.drops, key)
	}
	if deleteRow && alive0 {
		b.deletes = append(b.deletes, pk)
	}
	if sentDirty {
		b.clocks = append(b.clocks, queuedClock{key: key, cid: patina.SentinelColumn, colVersion: sent.cl, dbVersion: sent.dbVersion, site: sent.site, seq: sent.seq})
	}
	for i := range pending {
		c := &pending[i]
		b.clocks = append(b.clocks, queuedClock{key: key, cid: t.NonPK[c.col], colVersion: c.colVersion, dbVersion: int64(m.version), site: m.site, seq: c.seq})
	}
	if crdt.IsAlive(cl) && (touched || len(pending) > 0) {
		sort.Slice(pending, func(i, j int) bool { return pending[i].col < pending[j].col })
		set := make([]byte, 0, 3*len(pending))
		for i := range pending {
			c := pending[i].col
			set = append(set, byte(c), byte(c>>8), byte(c>>16))
		}
		q := b.upserts[string(set)]
		if q == nil {
			q = &queuedUpserts{cols: make([]int, len(pending))}
			for i := range pending {
				q.cols[i] = pending[i].col
			}
			b.upserts[string(set)] = q
			b.order = append(b.order, string(set))
		}
		row := make([]patina.Value, 0, len(pk)+len(pending))
		row = append(row, pk...)
		for i := range pending {
			row = append(row, pending[i].value)
		}
		q.rows = append(q.rows, row)
	}
	return nil
}

// flush writes every queued write.
func (m *merger) flush() error {
	for _, b := range m.tables {
		if err := m.flushTable(b); err != nil {
			return &tableError{b.ts.t.Name, err}
		}
	}
	m.tables, m.byName = m.tables[:0], nil
	return nil
}

func (m *merger) flushTable(b *tableBatch) error {
	db, ts := m.db, b.ts
	for _, key := range b.drops {
		if err := ts.dropCols.BindInt64(1, key); err != nil {
			return err
		}
		if err := ts.dropCols.Exec(); err != nil {
			return fmt.Errorf("drop column clocks: %w", err)
		}
	}
	for _, pk := range b.deletes {
		if err := bindPK(ts.deleteRow, pk); err != nil {
			return err
		}
		if err := ts.deleteRow.Exec(); err != nil {
			return fmt.Errorf("delete row: %w", err)
		}
	}
	for keys := b.keys; len(keys) > 0; {
		n := min(len(keys), batchRows)
		s, err := db.keyInsert(ts, n)
		if err != nil {
			return err
		}
		p := 1
		for _, k := range keys[:n] {
			s.BindInt64(p, k.key)
			for i, v := range k.pk {
				if err := bindValue(s, p+1+i, v); err != nil {
					return err
				}
			}
			p += 1 + len(k.pk)
		}
		if err := s.Exec(); err != nil {
			return fmt.Errorf("register keys: %w", err)
		}
		if got := db.ap.c.Changes(); got != int64(n) {
			// Two key encodings that the key columns' affinity makes
			// equal (INTEGER 1 and TEXT '1'): a malformed changeset.
			return fmt.Errorf("register keys: %d of %d keys are duplicates after type affinity", int64(n)-got, n)
		}
		keys = keys[n:]
	}
	for clocks := b.clocks; len(clocks) > 0; {
		n := min(len(clocks), batchRows)
		s, err := db.clockUpsert(ts, n)
		if err != nil {
			return err
		}
		for i, c := range clocks[:n] {
			p := 1 + 7*i
			s.BindInt64(p, c.key)
			s.BindText(p+1, c.cid)
			s.BindInt64(p+2, c.colVersion)
			s.BindInt64(p+3, c.dbVersion)
			s.BindInt64(p+4, c.site)
			s.BindInt64(p+5, int64(c.seq))
			s.BindInt64(p+6, int64(m.ts))
		}
		if err := s.Exec(); err != nil {
			return fmt.Errorf("write clocks: %w", err)
		}
		clocks = clocks[n:]
	}
	for _, set := range b.order {
		q := b.upserts[set]
		for rows := q.rows; len(rows) > 0; {
			n := min(len(rows), batchRows)
			s, err := db.rowUpsert(ts, set, q.cols, n)
			if err != nil {
				return err
			}
			p := 1
			for _, row := range rows[:n] {
				for _, v := range row {
					if err := bindValue(s, p, v); err != nil {
						return err
					}
					p++
				}
			}
			if err := s.Exec(); err != nil {
				return fmt.Errorf("write rows: %w", err)
			}
			rows = rows[n:]
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

func (m *merger) maxKey(ts *tableStmts) (int64, error) {
	s := ts.maxKey
	defer s.Reset()
	if !s.Step() {
		return 0, s.Err()
	}
	return s.ColumnInt64(0), nil
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

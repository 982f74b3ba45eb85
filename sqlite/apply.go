package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/crdt"
	"github.com/patinadb/patina/internal/rangeset"
)

// errMissingSchema marks changes that name a table or column this node does
// not have yet; they are deferred, not rejected.
type errMissingSchema struct{ what string }

func (e *errMissingSchema) Error() string { return e.what }

// Apply merges changesets from other nodes in one SQLite transaction. Each
// changeset is applied under its own savepoint: a poison changeset (bad key,
// NaN, a value SQLite refuses) is rejected and quarantined without losing the
// others (INCIDENTS.md #5).
func (db *DB) Apply(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
	res := patina.ApplyResult{Outcomes: make([]patina.ApplyOutcome, len(css)), Errors: make([]error, len(css))}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.w == nil {
		return res, patina.Errorf(patina.EUNAVAILABLE, "store is closed")
	}
	old := db.w.SetInterrupt(ctx)
	defer db.w.SetInterrupt(old)
	if err := db.w.Exec(`BEGIN IMMEDIATE`); err != nil {
		return res, db.ctxErr(ctx, "apply: begin", err)
	}
	db.book.mu.Lock()
	defer db.book.mu.Unlock()
	db.book.begin()
	fail := func(err error) (patina.ApplyResult, error) {
		db.w.Exec(`ROLLBACK`)
		db.book.rollback()
		return res, err
	}
	if err := db.exec(`UPDATE __patina_ctl SET sync = 1 WHERE id = 0`); err != nil {
		return fail(fmt.Errorf("apply: %w", err))
	}
	for i := range css {
		cs := &css[i]
		if cs.TS != 0 {
			_ = db.clock.Update(cs.TS) // drift is a metric, not a reason to refuse data
		}
		if err := db.exec(`SAVEPOINT apply_one`); err != nil {
			return fail(err)
		}
		bufferedBefore, deferredBefore := db.buffered, db.deferred
		out, err := db.applyOne(cs)
		if err != nil && ctx.Err() != nil {
			return fail(db.ctxErr(ctx, "apply", err))
		}
		if err != nil {
			db.exec(`ROLLBACK TO apply_one`)
			db.buffered, db.deferred = bufferedBefore, deferredBefore
			out = patina.ApplyRejected
			err = fmt.Errorf("reject changeset from actor %s version %d: %w", cs.Actor, cs.Version, err)
			db.quarantine(cs, err)
		}
		if e := db.exec(`RELEASE apply_one`); e != nil {
			return fail(e)
		}
		res.Outcomes[i], res.Errors[i] = out, err
	}
	if err := db.exec(`UPDATE __patina_ctl SET sync = 0 WHERE id = 0`); err != nil {
		return fail(err)
	}
	if err := db.book.flush(db.w); err != nil {
		return fail(err)
	}
	if err := db.w.Exec(`COMMIT`); err != nil {
		return fail(db.ctxErr(ctx, "apply: commit", err))
	}
	return res, nil
}

func (db *DB) quarantine(cs *patina.Changeset, reason error) {
	tbl := ""
	if len(cs.Changes) > 0 {
		tbl = cs.Changes[0].Table
	}
	_ = db.exec(`INSERT INTO __patina_quarantine (site, version, tbl, reason, at) VALUES (?, ?, ?, ?, ?)`,
		cs.Actor[:], cs.Version, tbl, reason.Error(), db.Now().Unix())
	_ = db.exec(`DELETE FROM __patina_quarantine WHERE id <= (SELECT max(id) FROM __patina_quarantine) - 10000`)
}

// validate refuses what can never apply anywhere (poison).
func validateChangeset(cs *patina.Changeset) error {
	if cs.Version == 0 {
		return errors.New("version 0 does not exist (versions start at 1)")
	}
	if cs.Cleared {
		if cs.ClearedTo < cs.Version {
			return fmt.Errorf("cleared range %d..=%d is empty", cs.Version, cs.ClearedTo)
		}
		return nil
	}
	if cs.Seqs.Start > cs.Seqs.End || cs.Seqs.End > cs.LastSeq {
		return fmt.Errorf("seq range %v does not fit last seq %d", cs.Seqs, cs.LastSeq)
	}
	for i := range cs.Changes {
		c := &cs.Changes[i]
		if err := c.Value.Validate(); err != nil {
			return fmt.Errorf("table %q column %q: %s", c.Table, c.Column, patina.ErrorMessage(err))
		}
		if c.Seq < cs.Seqs.Start || c.Seq > cs.Seqs.End {
			return fmt.Errorf("table %q: change seq %d outside the chunk's range %v", c.Table, c.Seq, cs.Seqs)
		}
		if c.CL <= 0 {
			return fmt.Errorf("table %q: causal length %d is not positive", c.Table, c.CL)
		}
		if c.Column == patina.SentinelColumn && c.ColVersion != c.CL {
			// The sentinel's col_version is the causal length.
			return fmt.Errorf("table %q: sentinel col_version %d differs from causal length %d", c.Table, c.ColVersion, c.CL)
		}
	}
	return nil
}

func (db *DB) applyOne(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	if cs.Actor == db.actor {
		return patina.ApplyDuplicate, nil
	}
	if err := validateChangeset(cs); err != nil {
		return patina.ApplyRejected, err
	}
	if cs.Cleared {
		return db.applyCleared(cs)
	}
	if db.book.known(cs.Actor, cs.Version) {
		return patina.ApplyDuplicate, nil
	}
	if !cs.Complete() {
		return db.applyChunk(cs)
	}
	if err := db.applyChanges(cs.Actor, cs.Changes, cs.TS); err != nil {
		var miss *errMissingSchema
		if !errors.As(err, &miss) {
			return patina.ApplyRejected, err
		}
		if !db.deferChanges(cs) {
			return patina.ApplyRejected, fmt.Errorf("%s, and the deferred-change store is full (%d changes); it will be fetched again by sync once the schema arrives", miss.what, db.MaxDeferredChanges)
		}
		db.dropBuffer(cs.Actor, cs.Version)
		db.book.markKnown(cs.Actor, cs.Versions())
		return patina.ApplyDeferred, nil
	}
	db.dropBuffer(cs.Actor, cs.Version)
	db.book.markKnown(cs.Actor, cs.Versions())
	return patina.ApplyNew, nil
}

func (db *DB) applyCleared(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	ab := db.book.actors[cs.Actor]
	r := cs.Versions()
	fresh := ab == nil || r.End > ab.head
	if !fresh {
		if overlap := ab.gaps.Intersect(ptrSet(r)); overlap.Len() > 0 {
			fresh = true
		}
		for v := range ab.partials {
			if r.Contains(v) {
				fresh = true
				db.dropBuffer(cs.Actor, v)
			}
		}
	}
	if !fresh {
		return patina.ApplyDuplicate, nil
	}
	db.book.markKnown(cs.Actor, r)
	return patina.ApplyNew, nil
}

func ptrSet(r patina.Range) *rangeset.Set {
	s := rangeset.FromRanges([]patina.Range{r})
	return &s
}

func (db *DB) dropBuffer(actor patina.ActorID, v patina.Version) {
	ab := db.book.actors[actor]
	if ab == nil || ab.partials[v] == nil {
		return
	}
	db.exec(`DELETE FROM __patina_buffer WHERE site = ? AND version = ?`, actor[:], v)
	db.buffered -= int(db.w.Changes())
}

// applyChunk buffers one chunk of a version and applies the version once
// every seq up to last_seq has arrived.
func (db *DB) applyChunk(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	var have rangeset.Set
	if ab := db.book.actors[cs.Actor]; ab != nil {
		if p := ab.partials[cs.Version]; p != nil {
			switch {
			case cs.LastSeq > p.lastSeq:
				// An older view of the version (more cells survived when it
				// was sent); what we hold is newer.
				return patina.ApplyDuplicate, nil
			case cs.LastSeq < p.lastSeq:
				// A newer view: cells were overwritten since; start over.
				db.dropBuffer(cs.Actor, cs.Version)
				db.book.touch(cs.Actor)
				delete(db.book.actors[cs.Actor].partials, cs.Version)
			default:
				if p.have.ContainsRange(cs.Seqs) {
					return patina.ApplyDuplicate, nil
				}
				have = p.have.Clone()
			}
		}
	}
	if db.buffered+len(cs.Changes) > db.MaxBufferedChanges {
		return patina.ApplyRejected, fmt.Errorf("partial-version buffer is full (%d of %d changes); dropped, sync will fetch it again", db.buffered, db.MaxBufferedChanges)
	}
	for i := range cs.Changes {
		c := &cs.Changes[i]
		if err := db.exec(`INSERT INTO __patina_buffer (site, version, seq, tbl, pk, cid, val, col_version, cl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			cs.Actor[:], cs.Version, c.Seq, c.Table, c.PK, c.Column, c.Value, c.ColVersion, c.CL); err != nil {
			return patina.ApplyRejected, fmt.Errorf("buffer chunk: %w", err)
		}
		db.buffered += int(db.w.Changes())
	}
	have.Insert(cs.Seqs)
	if !have.ContainsRange(patina.Range{Start: 0, End: cs.LastSeq}) {
		db.book.addPartial(cs.Actor, cs.Version, cs.Seqs, cs.LastSeq, cs.TS)
		return patina.ApplyBuffered, nil
	}
	changes, err := db.loadBuffer(cs.Actor, cs.Version)
	if err != nil {
		return patina.ApplyRejected, err
	}
	full := patina.Changeset{Actor: cs.Actor, Version: cs.Version, Changes: changes,
		Seqs: patina.Range{Start: 0, End: cs.LastSeq}, LastSeq: cs.LastSeq, TS: cs.TS}
	db.book.addPartial(cs.Actor, cs.Version, cs.Seqs, cs.LastSeq, cs.TS)
	if err := db.applyChanges(full.Actor, full.Changes, full.TS); err != nil {
		var miss *errMissingSchema
		if !errors.As(err, &miss) || !db.deferChanges(&full) {
			return patina.ApplyRejected, err
		}
	}
	db.dropBuffer(cs.Actor, cs.Version)
	db.book.markKnown(cs.Actor, cs.Versions())
	return patina.ApplyNew, nil
}

func (db *DB) loadBuffer(actor patina.ActorID, v patina.Version) ([]patina.Change, error) {
	stmt, err := db.stmt(`SELECT seq, tbl, pk, cid, val, col_version, cl FROM __patina_buffer WHERE site = ? AND version = ? ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer stmt.Reset()
	stmt.BindBlob(1, actor[:])
	stmt.BindInt64(2, int64(v))
	var out []patina.Change
	for stmt.Step() {
		out = append(out, patina.Change{Seq: uint64(stmt.ColumnInt64(0)), Table: stmt.ColumnText(1),
			PK: append([]byte{}, stmt.ColumnRawBlob(2)...), Column: stmt.ColumnText(3), Value: columnValue(stmt, 4),
			ColVersion: stmt.ColumnInt64(5), CL: stmt.ColumnInt64(6), DBVersion: v, Site: actor})
	}
	return out, stmt.Err()
}

// deferChanges keeps a changeset that names schema this node lacks.
func (db *DB) deferChanges(cs *patina.Changeset) bool {
	if db.deferred+len(cs.Changes) > db.MaxDeferredChanges {
		return false
	}
	for i := range cs.Changes {
		c := &cs.Changes[i]
		if err := db.exec(`INSERT INTO __patina_deferred (site, version, seq, tbl, pk, cid, val, col_version, cl, last_seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			cs.Actor[:], cs.Version, c.Seq, c.Table, c.PK, c.Column, c.Value, c.ColVersion, c.CL, cs.LastSeq, uint64(cs.TS)); err != nil {
			return false
		}
		db.deferred += int(db.w.Changes())
	}
	return true
}

// retryDeferred applies deferred changesets whose schema has arrived.
func (db *DB) retryDeferred() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	stmt, err := db.stmt(`SELECT site, version, seq, tbl, pk, cid, val, col_version, cl, ts FROM __patina_deferred ORDER BY site, version, seq`)
	if err != nil {
		return err
	}
	type key struct {
		a patina.ActorID
		v patina.Version
	}
	groups := map[key][]patina.Change{}
	tss := map[key]patina.Timestamp{}
	var order []key
	for stmt.Step() {
		var k key
		copy(k.a[:], stmt.ColumnRawBlob(0))
		k.v = uint64(stmt.ColumnInt64(1))
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], patina.Change{Seq: uint64(stmt.ColumnInt64(2)), Table: stmt.ColumnText(3),
			PK: append([]byte{}, stmt.ColumnRawBlob(4)...), Column: stmt.ColumnText(5), Value: columnValue(stmt, 6),
			ColVersion: stmt.ColumnInt64(7), CL: stmt.ColumnInt64(8), DBVersion: k.v, Site: k.a})
		tss[k] = patina.Timestamp(stmt.ColumnInt64(9))
	}
	err = stmt.Err()
	stmt.Reset()
	if err != nil {
		return err
	}
	if err := db.w.Exec(`BEGIN IMMEDIATE`); err != nil {
		return err
	}
	if err := db.exec(`UPDATE __patina_ctl SET sync = 1 WHERE id = 0`); err != nil {
		db.w.Exec(`ROLLBACK`)
		return err
	}
	for _, k := range order {
		err := db.applyChanges(k.a, groups[k], tss[k])
		var miss *errMissingSchema
		if errors.As(err, &miss) {
			continue // still waiting for schema
		}
		// Applied, or poison: either way it leaves the deferred store.
		if err != nil {
			db.quarantine(&patina.Changeset{Actor: k.a, Version: k.v, Changes: groups[k]}, err)
		}
		db.exec(`DELETE FROM __patina_deferred WHERE site = ? AND version = ?`, k.a[:], k.v)
		db.deferred -= int(db.w.Changes())
	}
	if err := db.exec(`UPDATE __patina_ctl SET sync = 0 WHERE id = 0`); err != nil {
		db.w.Exec(`ROLLBACK`)
		return err
	}
	return db.w.Exec(`COMMIT`)
}

// DeferredChanges returns how many changes wait for schema.
func (db *DB) DeferredChanges() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.deferred
}

// checkSchema makes sure every table and column named exists here.
func (db *DB) checkSchema(changes []patina.Change) error {
	schema := db.schema.Load()
	for i := range changes {
		c := &changes[i]
		t := schema.Tables[c.Table]
		if t == nil {
			return &errMissingSchema{fmt.Sprintf("table %q is not in this node's schema", c.Table)}
		}
		if c.Column != patina.SentinelColumn && !contains(t.NonPK, c.Column) {
			return &errMissingSchema{fmt.Sprintf("table %q has no column %q on this node", c.Table, c.Column)}
		}
	}
	return nil
}

// applyChanges merges changes (one version, seq order) row by row.
func (db *DB) applyChanges(actor patina.ActorID, changes []patina.Change, ts patina.Timestamp) error {
	if err := db.checkSchema(changes); err != nil {
		return err
	}
	site, err := db.siteOrdinal(actor)
	if err != nil {
		return err
	}
	schema := db.schema.Load()
	for start := 0; start < len(changes); {
		end := start + 1
		for end < len(changes) && changes[end].Table == changes[start].Table && string(changes[end].PK) == string(changes[start].PK) {
			end++
		}
		t := schema.Tables[changes[start].Table]
		if err := db.mergeRow(t, changes[start:end], actor, site, ts); err != nil {
			return fmt.Errorf("table %q: %w", t.Name, err)
		}
		start = end
	}
	return nil
}

type localClock struct {
	colVersion int64
	site       int64
}

// mergeRow applies the changes of one row (DESIGN.md §1 merge rules).
func (db *DB) mergeRow(t *Table, changes []patina.Change, actor patina.ActorID, site int64, ts patina.Timestamp) error {
	pk, err := UnpackPK(changes[0].PK)
	if err != nil {
		return err
	}
	if len(pk) != len(t.PK) {
		return fmt.Errorf("primary key has %d values, table has %d key columns", len(pk), len(t.PK))
	}
	for _, v := range pk {
		if v.IsNull() {
			return errors.New("primary key value is NULL")
		}
	}
	key, err := db.pkKey(t, pk)
	if err != nil {
		return err
	}
	cl, clSite, err := db.sentinel(t, key)
	if err != nil {
		return err
	}
	var clocks map[string]localClock // loaded on first need
	haveClocks := crdt.IsAlive(cl)   // column clocks exist only for live rows
	win := map[string]patina.Value{}
	var winOrder []string
	resurrect := false
	for i := range changes {
		c := &changes[i]
		op := crdt.ClassifyCL(c.CL, cl)
		switch op {
		case crdt.RowIgnore:
			continue
		case crdt.RowDelete:
			if err := db.deleteRow(t, key, pk); err != nil {
				return err
			}
			if err := db.writeClock(t, key, patina.SentinelColumn, c.CL, c.DBVersion, site, c.Seq, ts); err != nil {
				return err
			}
			cl, clSite, haveClocks, clocks, resurrect = c.CL, site, false, nil, false
			win, winOrder = map[string]patina.Value{}, nil
			continue
		case crdt.RowResurrect:
			if haveClocks {
				if err := db.exec(fmt.Sprintf(`UPDATE %s SET col_version = 0 WHERE key = ? AND cid != '-1'`, clockTable(t.Name)), key); err != nil {
					return err
				}
				for k, lc := range clocks {
					lc.colVersion = 0
					clocks[k] = lc
				}
			}
			if err := db.writeClock(t, key, patina.SentinelColumn, c.CL, c.DBVersion, site, c.Seq, ts); err != nil {
				return err
			}
			cl, clSite, resurrect = c.CL, site, true
			if c.Column == patina.SentinelColumn {
				continue
			}
		case crdt.RowSame:
			if c.Column == patina.SentinelColumn {
				if clSite != site && crdt.SentinelWins(actor, db.siteActor(clSite)) {
					if err := db.writeClock(t, key, patina.SentinelColumn, c.CL, c.DBVersion, site, c.Seq, ts); err != nil {
						return err
					}
					clSite = site
				}
				continue
			}
		}
		if !crdt.IsAlive(cl) {
			continue
		}
		if haveClocks && clocks == nil {
			if clocks, err = db.columnClocks(t, key); err != nil {
				return err
			}
		}
		lc, ok := clocks[c.Column]
		wins := !ok
		if ok {
			switch {
			case c.ColVersion != lc.colVersion:
				wins = c.ColVersion > lc.colVersion
			default:
				local, err := db.localValue(t, pk, c.Column, win)
				if err != nil {
					return err
				}
				wins = crdt.CellWins(crdt.Cell{ColVersion: c.ColVersion, Value: c.Value, Site: actor},
					crdt.Cell{ColVersion: lc.colVersion, Value: local, Site: db.siteActor(lc.site)})
			}
		}
		if !wins {
			continue
		}
		if err := db.writeClock(t, key, c.Column, c.ColVersion, c.DBVersion, site, c.Seq, ts); err != nil {
			return err
		}
		if clocks == nil {
			clocks = map[string]localClock{}
		}
		clocks[c.Column] = localClock{colVersion: c.ColVersion, site: site}
		if _, seen := win[c.Column]; !seen {
			winOrder = append(winOrder, c.Column)
		}
		win[c.Column] = c.Value
	}
	if crdt.IsAlive(cl) && (resurrect || len(win) > 0) {
		return db.upsertRow(t, pk, winOrder, win)
	}
	return nil
}

func (db *DB) siteActor(ord int64) patina.ActorID {
	db.siteMu.RLock()
	defer db.siteMu.RUnlock()
	return db.siteOf[ord]
}

func (db *DB) pkKey(t *Table, pk []patina.Value) (int64, error) {
	args := make([]any, len(pk))
	for i, v := range pk {
		args[i] = v
	}
	stmt, err := db.stmt(fmt.Sprintf(`SELECT key FROM %s WHERE %s`, pksTable(t.Name), t.pkWhere()))
	if err != nil {
		return 0, err
	}
	if err := bindArgs(stmt, args...); err != nil {
		return 0, err
	}
	if stmt.Step() {
		k := stmt.ColumnInt64(0)
		stmt.Reset()
		return k, nil
	}
	err = stmt.Err()
	stmt.Reset()
	if err != nil {
		return 0, err
	}
	if err := db.exec(fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, pksTable(t.Name), t.pkList(""), placeholders(len(pk))), args...); err != nil {
		return 0, err
	}
	return db.w.LastInsertRowID(), nil
}

func (t *Table) pkWhere() string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i] = quoteIdent(c) + " = ?"
	}
	return strings.Join(parts, " AND ")
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func (db *DB) sentinel(t *Table, key int64) (cl, site int64, err error) {
	stmt, err := db.stmt(fmt.Sprintf(`SELECT col_version, site FROM %s WHERE key = ? AND cid = '-1'`, clockTable(t.Name)))
	if err != nil {
		return 0, 0, err
	}
	defer stmt.Reset()
	stmt.BindInt64(1, key)
	if stmt.Step() {
		return stmt.ColumnInt64(0), stmt.ColumnInt64(1), nil
	}
	return 0, 0, stmt.Err()
}

func (db *DB) columnClocks(t *Table, key int64) (map[string]localClock, error) {
	stmt, err := db.stmt(fmt.Sprintf(`SELECT cid, col_version, site FROM %s WHERE key = ? AND cid != '-1'`, clockTable(t.Name)))
	if err != nil {
		return nil, err
	}
	defer stmt.Reset()
	stmt.BindInt64(1, key)
	m := map[string]localClock{}
	for stmt.Step() {
		m[stmt.ColumnText(0)] = localClock{colVersion: stmt.ColumnInt64(1), site: stmt.ColumnInt64(2)}
	}
	return m, stmt.Err()
}

func (db *DB) writeClock(t *Table, key int64, cid string, colVersion int64, dbv patina.Version, site int64, seq patina.Seq, ts patina.Timestamp) error {
	return db.exec(fmt.Sprintf(`INSERT INTO %s (key, cid, col_version, db_version, site, seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key, cid) DO UPDATE SET col_version = excluded.col_version, db_version = excluded.db_version, site = excluded.site, seq = excluded.seq, ts = excluded.ts`, clockTable(t.Name)),
		key, cid, colVersion, dbv, site, seq, uint64(ts))
}

func (db *DB) deleteRow(t *Table, key int64, pk []patina.Value) error {
	args := make([]any, len(pk))
	for i, v := range pk {
		args[i] = v
	}
	if err := db.exec(fmt.Sprintf(`DELETE FROM %s WHERE %s`, quoteIdent(t.Name), t.pkWhere()), args...); err != nil {
		return err
	}
	return db.exec(fmt.Sprintf(`DELETE FROM %s WHERE key = ? AND cid != '-1'`, clockTable(t.Name)), key)
}

// localValue reads a column's current value (a pending winner counts).
func (db *DB) localValue(t *Table, pk []patina.Value, col string, pending map[string]patina.Value) (patina.Value, error) {
	if v, ok := pending[col]; ok {
		return v, nil
	}
	stmt, err := db.stmt(fmt.Sprintf(`SELECT %s FROM %s WHERE %s`, quoteIdent(col), quoteIdent(t.Name), t.pkWhere()))
	if err != nil {
		return patina.Value{}, err
	}
	defer stmt.Reset()
	for i, v := range pk {
		if err := bindValue(stmt, i+1, v); err != nil {
			return patina.Value{}, err
		}
	}
	if stmt.Step() {
		return columnValue(stmt, 0), nil
	}
	return patina.Null(), stmt.Err()
}

// upsertRow creates the row if needed and sets the winning columns.
func (db *DB) upsertRow(t *Table, pk []patina.Value, cols []string, vals map[string]patina.Value) error {
	names := make([]string, 0, len(t.PK)+len(cols))
	args := make([]any, 0, len(t.PK)+len(cols))
	for i, k := range t.PK {
		names = append(names, quoteIdent(k))
		args = append(args, pk[i])
	}
	sets := make([]string, len(cols))
	for i, c := range cols {
		names = append(names, quoteIdent(c))
		args = append(args, vals[c])
		sets[i] = quoteIdent(c) + " = excluded." + quoteIdent(c)
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	return db.exec(fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s`,
		quoteIdent(t.Name), strings.Join(names, ", "), placeholders(len(names)), t.pkList(""), conflict), args...)
}

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/crdt"
	"github.com/patinadb/patina/internal/rangeset"
)

// errMissingSchema marks changes that name a table or column this node does
// not have yet; they are deferred, not rejected.
type errMissingSchema struct{ what string }

func (e *errMissingSchema) Error() string { return e.what }

// tableError is a change that failed on one table; it names the table so the
// quarantine row can record it.
type tableError struct {
	table string
	err   error
}

func (e *tableError) Error() string { return fmt.Sprintf("table %q: %v", e.table, e.err) }
func (e *tableError) Unwrap() error { return e.err }

// cleanReject is a rejection found before the changeset wrote anything
// (a full buffer, a full deferred store): nothing needs rolling back.
type cleanReject struct{ err error }

func (e *cleanReject) Error() string { return e.err.Error() }
func (e *cleanReject) Unwrap() error { return e.err }

// Apply merges changesets from other nodes in one SQLite transaction. A
// poison changeset (bad key, NaN, a value SQLite refuses) is rejected and
// quarantined without losing the others (INCIDENTS.md #5).
//
// Changesets that fail validation are rejected before they write anything.
// The rest first apply without savepoints, because a savepoint per
// changeset copies every page it touches into the sub-journal; if one of
// them fails halfway (a constraint of the table, say), the transaction is
// rolled back and the batch applied again, each changeset under its own
// savepoint (data and bookkeeping), so that only the poison is lost.
func (db *DB) Apply(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.w == nil {
		return patina.ApplyResult{}, errClosed
	}
	old := db.ap.c.SetInterrupt(ctx)
	defer db.ap.c.SetInterrupt(old)
	db.book.mu.Lock()
	defer db.book.mu.Unlock()
	res, retry, err := db.applyTx(ctx, css, false)
	if retry {
		res, _, err = db.applyTx(ctx, css, true)
	}
	return res, err
}

// applyTx applies css in one transaction; careful puts each changeset under
// a savepoint. Without, it reports retry (after rolling back) when a
// changeset failed halfway.
func (db *DB) applyTx(ctx context.Context, css []patina.Changeset, careful bool) (res patina.ApplyResult, retry bool, err error) {
	res = patina.ApplyResult{Outcomes: make([]patina.ApplyOutcome, len(css)), Errors: make([]error, len(css))}
	if err := db.ap.c.Exec(`BEGIN IMMEDIATE`); err != nil {
		return res, false, db.ctxErr(ctx, "apply: begin", err)
	}
	db.book.begin()
	buffered, deferred := db.buffered, db.deferred
	rollback := func() error {
		db.ap.c.Exec(`ROLLBACK`)
		db.book.rollback()
		db.buffered, db.deferred = buffered, deferred
		return db.loadSites()
	}
	fail := func(err error) (patina.ApplyResult, bool, error) {
		if e := rollback(); e != nil {
			err = errors.Join(err, e)
		}
		return res, false, err
	}
	reject := func(i int, err error) {
		cs := &css[i]
		err = fmt.Errorf("reject changeset from actor %s version %d: %w", cs.Actor, cs.Version, err)
		db.quarantine(cs, err)
		res.Outcomes[i], res.Errors[i] = patina.ApplyRejected, err
	}
	for i := range css {
		cs := &css[i]
		if cs.Actor == db.actor {
			res.Outcomes[i] = patina.ApplyDuplicate
			continue
		}
		if cs.TS != 0 {
			_ = db.clock.Update(cs.TS) // drift is a metric, not a reason to refuse data
		}
		// The site row is written outside any savepoint: a rejected
		// changeset must not roll back an ordinal the in-memory map keeps.
		if _, err := db.siteOrdinal(cs.Actor); err != nil {
			return fail(err)
		}
		if err := validateChangeset(cs); err != nil {
			reject(i, err)
			continue
		}
		if careful {
			if err := db.ap.exec(`SAVEPOINT apply_one`); err != nil {
				return fail(err)
			}
			db.book.savepoint()
		}
		bufferedBefore, deferredBefore := db.buffered, db.deferred
		out, err := db.applyOne(cs)
		if err != nil && ctx.Err() != nil {
			return fail(db.ctxErr(ctx, "apply", err))
		}
		var clean *cleanReject
		switch {
		case err == nil:
			res.Outcomes[i] = out
		case careful:
			if e := db.ap.exec(`ROLLBACK TO apply_one`); e != nil {
				return fail(e)
			}
			db.book.rollbackTo()
			db.buffered, db.deferred = bufferedBefore, deferredBefore
			reject(i, err)
		case errors.As(err, &clean):
			reject(i, err)
		default:
			if e := rollback(); e != nil {
				return res, false, e
			}
			return res, true, nil
		}
		if careful {
			db.book.release()
			if e := db.ap.exec(`RELEASE apply_one`); e != nil {
				return fail(e)
			}
		}
	}
	if err := db.book.flush(db.ap.exec); err != nil {
		return fail(err)
	}
	if err := db.ap.c.Exec(`COMMIT`); err != nil {
		return fail(db.ctxErr(ctx, "apply: commit", err))
	}
	db.book.commit()
	return res, false, nil
}

// QuarantineLimit is how many quarantined changesets are kept (the oldest
// go first).
const QuarantineLimit = 10_000

func (db *DB) quarantine(cs *patina.Changeset, reason error) {
	tbl := ""
	var te *tableError
	if errors.As(reason, &te) {
		tbl = te.table
	} else if len(cs.Changes) > 0 {
		tbl = cs.Changes[0].Table
	}
	_ = db.ap.exec(`INSERT INTO __patina_quarantine (site, version, tbl, reason, at) VALUES (?, ?, ?, ?, ?)`,
		cs.Actor[:], cs.Version, tbl, reason.Error(), db.Now().Unix())
	_ = db.ap.exec(`DELETE FROM __patina_quarantine WHERE id <= (SELECT max(id) FROM __patina_quarantine) - ?`, QuarantineLimit)
}

// validateChangeset refuses what can never apply anywhere (poison).
func validateChangeset(cs *patina.Changeset) error {
	if cs.Version == 0 {
		return errors.New("version 0 does not exist (versions start at 1)")
	}
	if cs.Cleared {
		if cs.ClearedTo < cs.Version {
			return fmt.Errorf("cleared range %d..=%d is empty", cs.Version, cs.ClearedTo)
		}
		if len(cs.Changes) > 0 {
			return fmt.Errorf("cleared changeset carries %d changes", len(cs.Changes))
		}
		return nil
	}
	if cs.Seqs.Start > cs.Seqs.End || cs.Seqs.End > cs.LastSeq {
		return fmt.Errorf("seq range %v does not fit last seq %d", cs.Seqs, cs.LastSeq)
	}
	var lastPK []byte
	for i := range cs.Changes {
		c := &cs.Changes[i]
		if err := c.Value.Validate(); err != nil {
			return &tableError{c.Table, fmt.Errorf("column %q: %s", c.Column, patina.ErrorMessage(err))}
		}
		if c.Seq < cs.Seqs.Start || c.Seq > cs.Seqs.End {
			return &tableError{c.Table, fmt.Errorf("change seq %d outside the chunk's range %v", c.Seq, cs.Seqs)}
		}
		if c.CL <= 0 {
			return &tableError{c.Table, fmt.Errorf("causal length %d is not positive", c.CL)}
		}
		if c.Column == patina.SentinelColumn {
			if c.ColVersion != c.CL {
				// The sentinel's col_version is the causal length.
				return &tableError{c.Table, fmt.Errorf("sentinel col_version %d differs from causal length %d", c.ColVersion, c.CL)}
			}
		} else {
			if !crdt.IsAlive(c.CL) {
				return &tableError{c.Table, fmt.Errorf("column %q changed at even causal length %d (a deleted row has no column values)", c.Column, c.CL)}
			}
			if c.ColVersion <= 0 {
				return &tableError{c.Table, fmt.Errorf("column %q: col_version %d is not positive", c.Column, c.ColVersion)}
			}
		}
		if i > 0 && string(c.PK) == string(lastPK) {
			continue
		}
		lastPK = c.PK
		pk, err := UnpackPK(c.PK)
		if err != nil {
			return &tableError{c.Table, err}
		}
		for j, v := range pk {
			if v.IsNull() {
				return &tableError{c.Table, fmt.Errorf("primary key value %d is NULL", j+1)}
			}
			if err := v.Validate(); err != nil {
				return &tableError{c.Table, fmt.Errorf("primary key value %d: %s", j+1, patina.ErrorMessage(err))}
			}
		}
	}
	return nil
}

// applyOne applies a validated changeset.
func (db *DB) applyOne(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	if cs.Cleared {
		return db.applyCleared(cs)
	}
	if db.book.known(cs.Actor, cs.Version) {
		return patina.ApplyDuplicate, nil
	}
	if !cs.Complete() {
		return db.applyChunk(cs)
	}
	return db.applyVersion(cs)
}

// applyVersion applies a complete version (or defers it when it names schema
// this node lacks) and records it as known.
func (db *DB) applyVersion(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	out := patina.ApplyNew
	if err := db.applyChanges(cs.Actor, cs.Version, cs.Changes, cs.TS); err != nil {
		var miss *errMissingSchema
		if !errors.As(err, &miss) {
			return patina.ApplyRejected, err
		}
		if db.deferred+len(cs.Changes) > db.MaxDeferredChanges {
			return patina.ApplyRejected, &cleanReject{fmt.Errorf("%s, and the deferred-change store is full (%d of %d changes); dropped, sync will fetch it again once the schema arrives", miss.what, db.deferred, db.MaxDeferredChanges)}
		}
		if err := db.deferChanges(cs); err != nil {
			return patina.ApplyRejected, fmt.Errorf("%s, and %w", miss.what, err)
		}
		out = patina.ApplyDeferred
	}
	db.dropBuffer(cs.Actor, cs.Version)
	db.book.markKnown(cs.Actor, patina.Range{Start: cs.Version, End: cs.Version})
	return out, nil
}

func (db *DB) applyCleared(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	ab := db.book.actors[cs.Actor]
	r := cs.Versions()
	fresh := ab == nil || r.End > ab.head
	if ab != nil {
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
	if err := db.ap.exec(`DELETE FROM __patina_buffer WHERE site = ? AND version = ?`, actor[:], v); err == nil {
		db.buffered -= int(db.ap.c.Changes())
	}
}

// applyChunk buffers one chunk of a version and applies the version once
// every seq up to its last seq has arrived.
//
// Chunks may come from different views of the version: a node serves the
// cells of a version that survive on it, so a later answer, or another
// node's, may lack cells overwritten since and end at a lower last seq. Any
// view is complete up to its own last seq (a cell missing from it was
// overwritten by a write that sync delivers too, and that wins anyway), and
// a seq names one cell write in every view. So chunks of all views are
// buffered together and the version is complete once the seqs held cover
// 0..=the lowest last seq seen.
func (db *DB) applyChunk(cs *patina.Changeset) (patina.ApplyOutcome, error) {
	var have rangeset.Set
	lastSeq := cs.LastSeq
	grown := true // the chunk brings news: seqs or a lower last seq
	if ab := db.book.actors[cs.Actor]; ab != nil {
		if p := ab.partials[cs.Version]; p != nil {
			have = p.have.Clone()
			if p.lastSeq <= lastSeq {
				lastSeq = p.lastSeq
				grown = !have.ContainsRange(cs.Seqs)
			}
		}
	}
	if !grown {
		return patina.ApplyDuplicate, nil
	}
	if !have.ContainsRange(cs.Seqs) {
		if db.buffered+len(cs.Changes) > db.MaxBufferedChanges {
			return patina.ApplyRejected, &cleanReject{fmt.Errorf("partial-version buffer is full (%d of %d changes); dropped, sync will fetch it again", db.buffered, db.MaxBufferedChanges)}
		}
		for i := range cs.Changes {
			c := &cs.Changes[i]
			if err := db.ap.exec(`INSERT INTO __patina_buffer (site, version, seq, tbl, pk, cid, val, col_version, cl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				cs.Actor[:], cs.Version, c.Seq, c.Table, c.PK, c.Column, c.Value, c.ColVersion, c.CL); err != nil {
				return patina.ApplyRejected, fmt.Errorf("buffer chunk: %w", err)
			}
			db.buffered += int(db.ap.c.Changes())
		}
		have.Insert(cs.Seqs)
	}
	if !have.ContainsRange(patina.Range{Start: 0, End: lastSeq}) {
		db.book.addPartial(cs.Actor, cs.Version, cs.Seqs, lastSeq, cs.TS)
		return patina.ApplyBuffered, nil
	}
	changes, err := db.loadBuffer(cs.Actor, cs.Version)
	if err != nil {
		return patina.ApplyRejected, err
	}
	full := patina.Changeset{Actor: cs.Actor, Version: cs.Version, Changes: changes,
		Seqs: patina.Range{Start: 0, End: lastSeq}, LastSeq: lastSeq, TS: cs.TS}
	out, err := db.applyVersion(&full)
	if clean := (*cleanReject)(nil); errors.As(err, &clean) {
		err = clean.err // this chunk was buffered already: not clean
	}
	return out, err
}

func (db *DB) loadBuffer(actor patina.ActorID, v patina.Version) ([]patina.Change, error) {
	stmt, err := db.ap.stmt(`SELECT seq, tbl, pk, cid, val, col_version, cl FROM __patina_buffer WHERE site = ? AND version = ? ORDER BY seq`)
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
func (db *DB) deferChanges(cs *patina.Changeset) error {
	if db.deferred+len(cs.Changes) > db.MaxDeferredChanges {
		return fmt.Errorf("the deferred-change store is full (%d of %d changes); dropped, sync will fetch it again once the schema arrives", db.deferred, db.MaxDeferredChanges)
	}
	for i := range cs.Changes {
		c := &cs.Changes[i]
		if err := db.ap.exec(`INSERT INTO __patina_deferred (site, version, seq, tbl, pk, cid, val, col_version, cl, last_seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			cs.Actor[:], cs.Version, c.Seq, c.Table, c.PK, c.Column, c.Value, c.ColVersion, c.CL, cs.LastSeq, uint64(cs.TS)); err != nil {
			return fmt.Errorf("defer changes: %w", err)
		}
		db.deferred += int(db.ap.c.Changes())
	}
	return nil
}

// retryDeferred applies deferred versions whose schema has arrived. The
// caller holds db.mu.
func (db *DB) retryDeferred() error {
	stmt, err := db.ap.stmt(`SELECT site, version, seq, tbl, pk, cid, val, col_version, cl, ts FROM __patina_deferred ORDER BY site, version, seq`)
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
	if err := db.ap.c.Exec(`BEGIN IMMEDIATE`); err != nil {
		return err
	}
	deferred := db.deferred
	fail := func(err error) error {
		db.ap.c.Exec(`ROLLBACK`)
		db.deferred = deferred
		return errors.Join(err, db.loadSites())
	}
	for _, k := range order {
		if _, err := db.siteOrdinal(k.a); err != nil {
			return fail(err)
		}
		if err := db.ap.exec(`SAVEPOINT retry_one`); err != nil {
			return fail(err)
		}
		err := db.applyChanges(k.a, k.v, groups[k], tss[k])
		var miss *errMissingSchema
		switch {
		case errors.As(err, &miss):
			// Still waiting for schema.
			if err := db.ap.exec(`ROLLBACK TO retry_one`); err != nil {
				return fail(err)
			}
		case err != nil:
			// Poison after all: quarantine it.
			if err := db.ap.exec(`ROLLBACK TO retry_one`); err != nil {
				return fail(err)
			}
			cs := &patina.Changeset{Actor: k.a, Version: k.v, Changes: groups[k]}
			db.quarantine(cs, fmt.Errorf("reject deferred changeset from actor %s version %d: %w", k.a, k.v, err))
		}
		if err == nil || !errors.As(err, &miss) {
			if err := db.ap.exec(`DELETE FROM __patina_deferred WHERE site = ? AND version = ?`, k.a[:], k.v); err != nil {
				return fail(err)
			}
			db.deferred -= int(db.ap.c.Changes())
		}
		if err := db.ap.exec(`RELEASE retry_one`); err != nil {
			return fail(err)
		}
	}
	if err := db.ap.c.Exec(`COMMIT`); err != nil {
		return fail(err)
	}
	return nil
}

// DeferredChanges returns how many changes wait for schema.
func (db *DB) DeferredChanges() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.deferred
}

// BufferedChanges returns how many changes of partially received versions
// are kept until their version completes.
func (db *DB) BufferedChanges() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.buffered
}

// checkSchema makes sure every table and column named exists here.
func (db *DB) checkSchema(changes []patina.Change) error {
	schema := db.schema.Load()
	var last *patina.Change
	for i := range changes {
		c := &changes[i]
		if last != nil && c.Table == last.Table && c.Column == last.Column {
			continue
		}
		last = c
		t := schema.Tables[c.Table]
		if t == nil {
			return &errMissingSchema{fmt.Sprintf("table %q is not in this node's schema", c.Table)}
		}
		if c.Column != patina.SentinelColumn {
			if _, ok := t.nonPKIdx[c.Column]; !ok {
				return &errMissingSchema{fmt.Sprintf("table %q has no column %q on this node", c.Table, c.Column)}
			}
		}
	}
	return nil
}

// applyChanges merges the changes of version v of actor (seq order), row by
// row. The caller registered actor's site.
func (db *DB) applyChanges(actor patina.ActorID, v patina.Version, changes []patina.Change, ts patina.Timestamp) error {
	if err := db.checkSchema(changes); err != nil {
		return err
	}
	site, err := db.siteOrdinal(actor)
	if err != nil {
		return err
	}
	changes = groupRows(changes)
	m := merger{db: db, actor: actor, site: site, version: v, ts: ts}
	for start := 0; start < len(changes); {
		end := start + 1
		for end < len(changes) && sameRow(&changes[end], &changes[start]) {
			end++
		}
		ts, err := db.tableStmts(changes[start].Table)
		if err != nil {
			return &tableError{changes[start].Table, err}
		}
		if err := m.mergeRow(ts, changes[start:end]); err != nil {
			return &tableError{changes[start].Table, err}
		}
		start = end
	}
	return m.flush()
}

func sameRow(a, b *patina.Change) bool {
	return a.Table == b.Table && string(a.PK) == string(b.PK)
}

// groupRows returns changes with each row's changes adjacent, rows in order
// of first appearance and each row's changes in their original (seq) order.
// Capture emits a row's cells together, so this usually returns changes
// itself.
func groupRows(changes []patina.Change) []patina.Change {
	seen := map[string]int{} // row -> group number
	grouped := true
	var gid []int
	for i := range changes {
		if i > 0 && sameRow(&changes[i], &changes[i-1]) {
			if gid != nil {
				gid = append(gid, gid[i-1])
			}
			continue
		}
		k := changes[i].Table + "\x00" + string(changes[i].PK)
		g, ok := seen[k]
		if !ok {
			g = len(seen)
			seen[k] = g
		} else if grouped {
			grouped = false
			gid = make([]int, i, len(changes))
			for j := 0; j < i; j++ {
				gid[j] = seen[changes[j].Table+"\x00"+string(changes[j].PK)]
			}
		}
		if gid != nil {
			gid = append(gid, g)
		}
	}
	if grouped {
		return changes
	}
	idx := make([]int, len(changes))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return gid[idx[a]] < gid[idx[b]] })
	out := make([]patina.Change, len(changes))
	for i, j := range idx {
		out[i] = changes[j]
	}
	return out
}

func (db *DB) siteActor(ord int64) patina.ActorID {
	db.siteMu.RLock()
	defer db.siteMu.RUnlock()
	return db.siteOf[ord]
}

package sqlite

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/rangeset"
)

// DefaultChunkBytes is the default chunk budget, as Corrosion's 8 KiB.
const DefaultChunkBytes = 8 << 10

// Extraction reads a version in two queries per table: the version's cells
// (an index range scan on (site, db_version), which yields them ordered by
// key), then the rows they belong to, each row once: its key values, its
// causal length and its current column values. Joining the row to every
// cell instead would look the row up once per cell.

// cellsSQL reads the surviving cells of one (site, db_version), by key.
func (t *Table) cellsSQL() string {
	return fmt.Sprintf(`SELECT key, cid, col_version, seq, ts FROM %s WHERE site = ? AND db_version = ? ORDER BY key`, clockTable(t.Name))
}

// rowsSQL reads the rows holding the cells of one (site, db_version), by
// key: key, causal length, key columns, non-key columns.
func (t *Table) rowsSQL() string {
	cols := []string{"p.key", "COALESCE(s.col_version, 0)"}
	for _, k := range t.PK {
		cols = append(cols, "p."+quoteIdent(k))
	}
	for _, c := range t.NonPK {
		cols = append(cols, "t."+quoteIdent(c))
	}
	return fmt.Sprintf(`SELECT %s FROM %s p
LEFT JOIN %s s ON s.key = p.key AND s.cid = '-1'
LEFT JOIN %s t ON %s
WHERE p.key IN (SELECT key FROM %s WHERE site = ? AND db_version = ?) ORDER BY p.key`,
		strings.Join(cols, ", "), pksTable(t.Name), clockTable(t.Name), quoteIdent(t.Name), t.pkMatch("t.", "p."), clockTable(t.Name))
}

type extractCell struct {
	key        int64
	cid        string
	colVersion int64
	seq        patina.Seq
}

// extractWith reads every surviving change of version v of the actor at site
// ordinal site, in seq order.
func extractWith(prep func(string) (*sqlite3.Stmt, error), schema *Schema, actor patina.ActorID, site int64, v patina.Version) ([]patina.Change, patina.Timestamp, error) {
	var out []patina.Change
	var ts patina.Timestamp
	var cells []extractCell
	for _, name := range schema.TableNames() {
		t := schema.Tables[name]
		stmt, err := prep(t.sqlCells)
		if err != nil {
			return nil, 0, fmt.Errorf("table %q: %w", name, err)
		}
		stmt.BindInt64(1, site)
		stmt.BindInt64(2, int64(v))
		cells = cells[:0]
		for stmt.Step() {
			cells = append(cells, extractCell{key: stmt.ColumnInt64(0), cid: stmt.ColumnText(1), colVersion: stmt.ColumnInt64(2), seq: uint64(stmt.ColumnInt64(3))})
			ts = max(ts, patina.Timestamp(stmt.ColumnInt64(4)))
		}
		err = stmt.Err()
		stmt.Reset()
		if err != nil {
			return nil, 0, fmt.Errorf("table %q: %w", name, err)
		}
		if len(cells) == 0 {
			continue
		}
		if stmt, err = prep(t.sqlRows); err != nil {
			return nil, 0, fmt.Errorf("table %q: %w", name, err)
		}
		stmt.BindInt64(1, site)
		stmt.BindInt64(2, int64(v))
		npk := len(t.PK)
		pkVals := make([]patina.Value, npk)
		next := 0 // first cell not yet matched to its row
		for stmt.Step() {
			key := stmt.ColumnInt64(0)
			for next < len(cells) && cells[next].key < key {
				next++ // a cell whose key row vanished: cannot happen in one snapshot
			}
			if next == len(cells) || cells[next].key != key {
				continue
			}
			for i := range pkVals {
				pkVals[i] = columnValue(stmt, 2+i)
			}
			pk := PackPK(pkVals)
			cl := stmt.ColumnInt64(1)
			for ; next < len(cells) && cells[next].key == key; next++ {
				c := &cells[next]
				ch := patina.Change{Table: name, PK: pk, Column: c.cid, ColVersion: c.colVersion, DBVersion: v, Site: actor, CL: cl, Seq: c.seq}
				if c.cid != patina.SentinelColumn {
					if i, ok := t.nonPKIdx[c.cid]; ok {
						ch.Value = columnValue(stmt, 2+npk+i)
					}
				}
				out = append(out, ch)
			}
		}
		err = stmt.Err()
		stmt.Reset()
		if err != nil {
			return nil, 0, fmt.Errorf("table %q: %w", name, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, ts, nil
}

// extract reads on the writer connection (caller holds db.mu).
func (db *DB) extract(site int64, v patina.Version) ([]patina.Change, patina.Timestamp, error) {
	db.siteMu.RLock()
	actor := db.siteOf[site]
	db.siteMu.RUnlock()
	return extractWith(db.stmt, db.schema.Load(), actor, site, v)
}

// ChangeSize estimates the encoded size of a change.
func ChangeSize(c *patina.Change) int {
	return len(c.Table) + len(c.PK) + len(c.Column) + len(c.Value.Bytes) + 32
}

// Chunk cuts a version's changes (in seq order) into changesets of at most
// maxBytes each by ChangeSize (a change larger than maxBytes travels alone).
// Chunks cover contiguous seq ranges from 0 to lastSeq; holes are seqs since
// overwritten. A version without changes gives no chunk.
func Chunk(actor patina.ActorID, v patina.Version, changes []patina.Change, lastSeq patina.Seq, ts patina.Timestamp, maxBytes int) []patina.Changeset {
	if maxBytes <= 0 {
		maxBytes = DefaultChunkBytes
	}
	var out []patina.Changeset
	start, size, from := uint64(0), 0, 0
	for i := range changes {
		n := ChangeSize(&changes[i])
		if i > from && size+n > maxBytes {
			end := changes[i].Seq - 1 // seqs are increasing: changes[i-1].Seq <= end
			out = append(out, patina.Changeset{Actor: actor, Version: v, Changes: changes[from:i:i],
				Seqs: patina.Range{Start: start, End: end}, LastSeq: lastSeq, TS: ts})
			start, size, from = end+1, 0, i
		}
		size += n
	}
	if from < len(changes) {
		out = append(out, patina.Changeset{Actor: actor, Version: v, Changes: changes[from:],
			Seqs: patina.Range{Start: start, End: lastSeq}, LastSeq: lastSeq, TS: ts})
	}
	return out
}

// snapshot borrows a read connection, opens a read transaction on it and
// copies actor's bookkeeping and site ordinal (-1 if none), all under the
// bookkeeping lock. Apply and Transact hold that lock from before their
// writes until after COMMIT, so the copy says known exactly what the
// snapshot holds: a version committed a moment later is neither served as
// cleared nor served half.
func (db *DB) snapshot(ctx context.Context, actor patina.ActorID) (*rconn, *actorBook, int64, error) {
	rc, err := db.reader(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	db.book.mu.RLock()
	defer db.book.mu.RUnlock()
	if err := rc.c.Exec(`BEGIN; SELECT db_version FROM __patina_ctl`); err != nil {
		rc.c.Exec(`ROLLBACK`)
		db.release(rc)
		return nil, nil, 0, fmt.Errorf("begin read: %w", err)
	}
	site := int64(-1)
	db.siteMu.RLock()
	if o, ok := db.sites[actor]; ok {
		site = o
	}
	db.siteMu.RUnlock()
	return rc, db.book.actors[actor].cloneOrNil(), site, nil
}

func (db *DB) endSnapshot(rc *rconn) {
	rc.c.Exec(`ROLLBACK`)
	db.release(rc)
}

// ChangesFor calls fn with the changesets of actor's versions in r that this
// node holds completely, newest first, cut into chunks of at most maxBytes;
// runs of versions that no longer carry any cell come as one Cleared
// changeset. Versions not held (gaps, partials, above the head) are skipped.
// Versions deferred for missing schema are served as they arrived.
func (db *DB) ChangesFor(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	rc, ab, site, err := db.snapshot(ctx, actor)
	if err != nil {
		return err
	}
	defer db.endSnapshot(rc)
	return db.changesFor(ctx, rc, ab, site, actor, r, maxBytes, fn)
}

func (db *DB) changesFor(ctx context.Context, rc *rconn, ab *actorBook, site int64, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	if ab == nil {
		return nil
	}
	lo, hi := max(r.Start, 1), min(r.End, ab.head)
	if hi < lo {
		return nil
	}
	schema := db.schema.Load()
	var cleared *patina.Changeset
	flush := func() error {
		if cleared == nil {
			return nil
		}
		c := *cleared
		cleared = nil
		return fn(c)
	}
	for v := hi; ; v-- {
		if err := ctx.Err(); err != nil {
			return patina.Errorf(patina.ETIMEOUT, "reading changes of actor %s: %v", actor, context.Cause(ctx))
		}
		if !ab.known(v) {
			if err := flush(); err != nil {
				return err
			}
		} else {
			changes, lastSeq, ts, err := db.versionChanges(rc, schema, actor, site, v)
			if err != nil {
				return fmt.Errorf("read changes of actor %s version %d: %w", actor, v, err)
			}
			if len(changes) == 0 {
				if cleared != nil && cleared.Version == v+1 {
					cleared.Version = v
				} else {
					if err := flush(); err != nil {
						return err
					}
					cleared = &patina.Changeset{Actor: actor, Version: v, Cleared: true, ClearedTo: v}
				}
			} else {
				if err := flush(); err != nil {
					return err
				}
				for _, cs := range Chunk(actor, v, changes, lastSeq, ts, maxBytes) {
					if err := fn(cs); err != nil {
						return err
					}
				}
			}
		}
		if v == lo {
			break
		}
	}
	return flush()
}

// versionChanges reads the surviving changes of a version, or the changes
// deferred for it, with its last seq.
func (db *DB) versionChanges(rc *rconn, schema *Schema, actor patina.ActorID, site int64, v patina.Version) ([]patina.Change, patina.Seq, patina.Timestamp, error) {
	stmt, err := rc.stmt(`SELECT seq, tbl, pk, cid, val, col_version, cl, last_seq, ts FROM __patina_deferred WHERE site = ? AND version = ? ORDER BY seq`)
	if err != nil {
		return nil, 0, 0, err
	}
	stmt.BindBlob(1, actor[:])
	stmt.BindInt64(2, int64(v))
	var changes []patina.Change
	var lastSeq patina.Seq
	var ts patina.Timestamp
	for stmt.Step() {
		changes = append(changes, patina.Change{Seq: uint64(stmt.ColumnInt64(0)), Table: stmt.ColumnText(1),
			PK: append([]byte{}, stmt.ColumnRawBlob(2)...), Column: stmt.ColumnText(3), Value: columnValue(stmt, 4),
			ColVersion: stmt.ColumnInt64(5), CL: stmt.ColumnInt64(6), DBVersion: v, Site: actor})
		lastSeq, ts = uint64(stmt.ColumnInt64(7)), patina.Timestamp(stmt.ColumnInt64(8))
	}
	err = stmt.Err()
	stmt.Reset()
	if err != nil || len(changes) > 0 || site < 0 {
		return changes, lastSeq, ts, err
	}
	changes, ts, err = extractWith(rc.stmt, schema, actor, site, v)
	if len(changes) > 0 {
		lastSeq = changes[len(changes)-1].Seq
	}
	return changes, lastSeq, ts, err
}

// PartialChangesFor serves the seqs of one version: the whole version when
// this node holds it completely, else the buffered seqs it has of those
// asked for.
func (db *DB) PartialChangesFor(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	rc, ab, site, err := db.snapshot(ctx, actor)
	if err != nil {
		return err
	}
	defer db.endSnapshot(rc)
	if ab == nil {
		return nil
	}
	if ab.known(v) {
		return db.changesFor(ctx, rc, ab, site, actor, patina.Range{Start: v, End: v}, maxBytes, fn)
	}
	p := ab.partials[v]
	if p == nil {
		return nil
	}
	if maxBytes <= 0 {
		maxBytes = DefaultChunkBytes
	}
	var want rangeset.Set
	for _, r := range seqs {
		want.Insert(r)
	}
	want = want.Intersect(&p.have)
	for _, r := range want.Ranges() {
		stmt, err := rc.stmt(`SELECT seq, tbl, pk, cid, val, col_version, cl FROM __patina_buffer WHERE site = ? AND version = ? AND seq BETWEEN ? AND ? ORDER BY seq`)
		if err != nil {
			return err
		}
		stmt.BindBlob(1, actor[:])
		stmt.BindInt64(2, int64(v))
		stmt.BindInt64(3, int64(r.Start))
		stmt.BindInt64(4, int64(r.End))
		var changes []patina.Change
		for stmt.Step() {
			changes = append(changes, patina.Change{Seq: uint64(stmt.ColumnInt64(0)), Table: stmt.ColumnText(1),
				PK: append([]byte{}, stmt.ColumnRawBlob(2)...), Column: stmt.ColumnText(3), Value: columnValue(stmt, 4),
				ColVersion: stmt.ColumnInt64(5), CL: stmt.ColumnInt64(6), DBVersion: v, Site: actor})
		}
		err = stmt.Err()
		stmt.Reset()
		if err != nil {
			return err
		}
		// r lies inside what this node holds, so it can vouch for the
		// whole range, holes included. Cut it like Chunk does.
		for {
			n, size := 0, 0
			for n < len(changes) && (n == 0 || size+ChangeSize(&changes[n]) <= maxBytes) {
				size += ChangeSize(&changes[n])
				n++
			}
			end := r.End
			if n < len(changes) {
				end = changes[n].Seq - 1
			}
			if err := fn(patina.Changeset{Actor: actor, Version: v, Changes: changes[:n:n], Seqs: patina.Range{Start: r.Start, End: end}, LastSeq: p.lastSeq, TS: p.ts}); err != nil {
				return err
			}
			changes = changes[n:]
			if end == r.End {
				break
			}
			r.Start = end + 1
		}
	}
	return nil
}

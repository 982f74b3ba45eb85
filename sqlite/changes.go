package sqlite

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// DefaultChunkBytes is the default chunk budget, as Corrosion's 8 KiB.
const DefaultChunkBytes = 8 << 10

// extractSQL reads the surviving cells of one (site, db_version) of table t
// with the current causal length, the key columns and the row's values.
func (t *Table) extractSQL() string {
	cols := []string{"c.cid", "c.col_version", "c.seq", "COALESCE(s.col_version, 0)", "c.ts"}
	for _, k := range t.PK {
		cols = append(cols, "p."+quoteIdent(k))
	}
	for _, c := range t.NonPK {
		cols = append(cols, "t."+quoteIdent(c))
	}
	return fmt.Sprintf(`SELECT %s FROM %s c JOIN %s p ON p.key = c.key
LEFT JOIN %s s ON s.key = c.key AND s.cid = '-1'
LEFT JOIN %s t ON %s
WHERE c.site = ? AND c.db_version = ?`,
		strings.Join(cols, ", "), clockTable(t.Name), pksTable(t.Name), clockTable(t.Name), quoteIdent(t.Name), t.pkMatch("t.", "p."))
}

// extractWith reads every surviving change of version v of the actor at site
// ordinal site, in seq order.
func extractWith(prep func(string) (*sqlite3.Stmt, error), schema *Schema, actor patina.ActorID, site int64, v patina.Version) ([]patina.Change, patina.Timestamp, error) {
	var out []patina.Change
	var ts patina.Timestamp
	for _, name := range schema.TableNames() {
		t := schema.Tables[name]
		stmt, err := prep(t.extractSQL())
		if err != nil {
			return nil, 0, fmt.Errorf("table %q: %w", name, err)
		}
		stmt.BindInt64(1, site)
		stmt.BindInt64(2, int64(v))
		npk := len(t.PK)
		pkVals := make([]patina.Value, npk)
		for stmt.Step() {
			cid := stmt.ColumnText(0)
			for i := range pkVals {
				pkVals[i] = columnValue(stmt, 5+i)
			}
			ch := patina.Change{
				Table:      name,
				PK:         PackPK(pkVals),
				Column:     cid,
				ColVersion: stmt.ColumnInt64(1),
				DBVersion:  v,
				Site:       actor,
				CL:         stmt.ColumnInt64(3),
				Seq:        uint64(stmt.ColumnInt64(2)),
			}
			if cid != patina.SentinelColumn {
				for i, c := range t.NonPK {
					if c == cid {
						ch.Value = columnValue(stmt, 5+npk+i)
						break
					}
				}
			}
			ts = max(ts, patina.Timestamp(stmt.ColumnInt64(4)))
			out = append(out, ch)
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

// Chunk cuts a version's changes (in seq order, ending at lastSeq) into
// changesets of about maxBytes each.
func Chunk(actor patina.ActorID, v patina.Version, changes []patina.Change, lastSeq patina.Seq, ts patina.Timestamp, maxBytes int) []patina.Changeset {
	if maxBytes <= 0 {
		maxBytes = DefaultChunkBytes
	}
	cs := patina.Changeset{Actor: actor, Version: v, Changes: changes, Seqs: patina.Range{Start: 0, End: lastSeq}, LastSeq: lastSeq, TS: ts}
	return cs.Chunks(maxBytes, ChangeSize)
}

// ChangesFor calls fn with the changesets of actor's versions in r that this
// node holds completely, newest first, cut into chunks of about maxBytes;
// runs of versions that no longer carry any cell come as one Cleared
// changeset. Versions not held (gaps, partials, above the head) are skipped.
func (db *DB) ChangesFor(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	db.siteMu.RLock()
	site, ok := db.sites[actor]
	db.siteMu.RUnlock()
	if !ok {
		return nil
	}
	rc, err := db.reader(ctx)
	if err != nil {
		return err
	}
	defer db.release(rc)
	if err := rc.c.Exec(`BEGIN`); err != nil {
		return err
	}
	defer rc.c.Exec(`ROLLBACK`)
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
	for v := r.End; v >= r.Start && v > 0; v-- {
		if err := ctx.Err(); err != nil {
			return patina.Errorf(patina.ETIMEOUT, "reading changes of actor %s: %v", actor, context.Cause(ctx))
		}
		db.book.mu.RLock()
		known := db.book.known(actor, v)
		db.book.mu.RUnlock()
		if !known {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		changes, ts, err := extractWith(rc.stmt, schema, actor, site, v)
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
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		for _, cs := range Chunk(actor, v, changes, changes[len(changes)-1].Seq, ts, maxBytes) {
			if err := fn(cs); err != nil {
				return err
			}
		}
		if v == 1 {
			break
		}
	}
	return flush()
}

// PartialChangesFor serves the seqs of one version: the whole version when
// this node holds it completely, else the buffered seqs it has.
func (db *DB) PartialChangesFor(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	db.book.mu.RLock()
	known := db.book.known(actor, v)
	var lastSeq patina.Seq
	var have []patina.Range
	if ab := db.book.actors[actor]; ab != nil {
		if p := ab.partials[v]; p != nil {
			lastSeq, have = p.lastSeq, p.have.Ranges()
		}
	}
	db.book.mu.RUnlock()
	if known {
		return db.ChangesFor(ctx, actor, patina.Range{Start: v, End: v}, maxBytes, fn)
	}
	if len(have) == 0 {
		return nil
	}
	var want []patina.Range
	for _, r := range seqs {
		for _, h := range have {
			i := patina.Range{Start: max(r.Start, h.Start), End: min(r.End, h.End)}
			if i.Start <= i.End {
				want = append(want, i)
			}
		}
	}
	rc, err := db.reader(ctx)
	if err != nil {
		return err
	}
	defer db.release(rc)
	for _, r := range want {
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
		// whole range, holes included.
		if err := fn(patina.Changeset{Actor: actor, Version: v, Changes: changes, Seqs: r, LastSeq: lastSeq}); err != nil {
			return err
		}
	}
	return nil
}

package sqlite

import (
	"context"

	"github.com/patinadb/patina"
)

// QuarantineEntry is one rejected changeset (INCIDENTS.md #5).
type QuarantineEntry struct {
	Origin  patina.ActorID
	Version patina.Version
	Table   string
	Reason  string
	At      int64 // Unix seconds
}

// Quarantined returns how many rejected changesets are kept (the newest
// 10,000).
func (db *DB) Quarantined(ctx context.Context) (int, error) {
	rc, err := db.reader(ctx)
	if err != nil {
		return 0, err
	}
	defer db.release(rc)
	stmt, err := rc.stmt(`SELECT count(*) FROM __patina_quarantine`)
	if err != nil {
		return 0, err
	}
	defer stmt.Reset()
	if !stmt.Step() {
		return 0, stmt.Err()
	}
	return stmt.ColumnInt(0), nil
}

// QuarantineEntries returns the newest rejected changesets, newest first.
func (db *DB) QuarantineEntries(ctx context.Context, limit int) ([]QuarantineEntry, error) {
	rc, err := db.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer db.release(rc)
	stmt, err := rc.stmt(`SELECT site, version, COALESCE(tbl, ''), reason, at FROM __patina_quarantine ORDER BY id DESC LIMIT ?`)
	if err != nil {
		return nil, err
	}
	defer stmt.Reset()
	stmt.BindInt64(1, int64(limit))
	var out []QuarantineEntry
	for stmt.Step() {
		var e QuarantineEntry
		copy(e.Origin[:], stmt.ColumnRawBlob(0))
		e.Version = uint64(stmt.ColumnInt64(1))
		e.Table, e.Reason, e.At = stmt.ColumnText(2), stmt.ColumnText(3), stmt.ColumnInt64(4)
		out = append(out, e)
	}
	return out, stmt.Err()
}

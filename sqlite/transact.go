package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// forbiddenPrefixes are statements a transaction list may not contain: they
// would break atomicity or the bookkeeping.
var forbiddenPrefixes = []string{"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "CREATE", "DROP", "ALTER", "REINDEX", "ANALYZE"}

func checkUserSQL(sql string) error {
	head := strings.ToUpper(stripLeadingComments(sql))
	for _, p := range forbiddenPrefixes {
		if strings.HasPrefix(head, p) && (len(head) == len(p) || !isIdentChar(head[len(p)])) {
			return patina.Errorf(patina.EINVALID, "%s statements are not allowed through the API; schema changes go in schema files (then reload), transactions are implicit", p)
		}
	}
	if strings.Contains(strings.ToLower(sql), "__patina") {
		return patina.Errorf(patina.EINVALID, "statement touches patina's bookkeeping tables (__patina*), which only the agent may change")
	}
	return nil
}

func isIdentChar(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// prepareUser prepares one user statement and binds its parameters.
func prepareUser(conn *sqlite3.Conn, st patina.Statement) (*sqlite3.Stmt, error) {
	if strings.TrimSpace(st.SQL) == "" {
		return nil, patina.Errorf(patina.EINVALID, "empty SQL statement")
	}
	stmt, tail, err := conn.Prepare(st.SQL)
	if err != nil {
		return nil, patina.Errorf(patina.EINVALID, "prepare %q: %v", shorten(st.SQL), err)
	}
	if stmt == nil {
		return nil, patina.Errorf(patina.EINVALID, "statement %q has no SQL (only comments?)", shorten(st.SQL))
	}
	if strings.TrimSpace(strings.Trim(stripLeadingComments(tail), "; \n\t")) != "" {
		stmt.Close()
		return nil, patina.Errorf(patina.EINVALID, "statement %q holds more than one SQL statement; send each as its own entry", shorten(st.SQL))
	}
	if n := stmt.BindCount(); len(st.Params) > n {
		stmt.Close()
		return nil, patina.Errorf(patina.EINVALID, "statement %q has %d parameters but %d values were given", shorten(st.SQL), n, len(st.Params))
	}
	for i, v := range st.Params {
		if err := v.Validate(); err != nil {
			stmt.Close()
			return nil, patina.Errorf(patina.EINVALID, "statement %q parameter %d: %s", shorten(st.SQL), i+1, patina.ErrorMessage(err))
		}
		if err := bindValue(stmt, i+1, v); err != nil {
			stmt.Close()
			return nil, patina.Errorf(patina.EINVALID, "statement %q parameter %d: %v", shorten(st.SQL), i+1, err)
		}
	}
	for name, v := range st.Named {
		idx := 0
		for _, cand := range []string{name, ":" + name, "$" + name, "@" + name} {
			if idx = stmt.BindIndex(cand); idx > 0 {
				break
			}
		}
		if idx == 0 {
			stmt.Close()
			return nil, patina.Errorf(patina.EINVALID, "statement %q has no parameter named %q", shorten(st.SQL), name)
		}
		if err := v.Validate(); err != nil {
			stmt.Close()
			return nil, patina.Errorf(patina.EINVALID, "statement %q parameter %q: %s", shorten(st.SQL), name, patina.ErrorMessage(err))
		}
		if err := bindValue(stmt, idx, v); err != nil {
			stmt.Close()
			return nil, err
		}
	}
	return stmt, nil
}

// Transact runs stmts atomically as one local transaction and returns the
// changeset it produced (nil when nothing changed). Writes made to the file
// by other SQLite clients since the last transaction were captured by the
// triggers under the pending version and join this changeset.
func (db *DB) Transact(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error) {
	for _, st := range stmts {
		if err := checkUserSQL(st.SQL); err != nil {
			return nil, err
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.w == nil {
		return nil, errClosed
	}
	old := db.w.SetInterrupt(ctx)
	defer db.w.SetInterrupt(old)
	if err := db.w.Exec(`BEGIN IMMEDIATE`); err != nil {
		return nil, db.ctxErr(ctx, "begin transaction", err)
	}
	db.book.mu.Lock()
	defer db.book.mu.Unlock()
	db.book.begin()
	res, err := db.transactTx(ctx, stmts)
	if err != nil {
		db.w.Exec(`ROLLBACK`)
		db.book.rollback()
		return nil, err
	}
	if err := db.w.Exec(`COMMIT`); err != nil {
		db.w.Exec(`ROLLBACK`)
		db.book.rollback()
		return nil, db.ctxErr(ctx, "commit", err)
	}
	db.book.commit()
	return res, nil
}

func (db *DB) ctxErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return patina.Errorf(patina.ETIMEOUT, "%s: interrupted because the request ran out of time (%v); retry with a longer timeout or a smaller transaction", what, context.Cause(ctx))
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (db *DB) ctl() (version patina.Version, seq patina.Seq, err error) {
	stmt, err := db.stmt(`SELECT db_version, seq FROM __patina_ctl WHERE id = 0`)
	if err != nil {
		return 0, 0, err
	}
	defer stmt.Reset()
	if !stmt.Step() {
		return 0, 0, fmt.Errorf("read __patina_ctl: missing row: %v", stmt.Err())
	}
	return uint64(stmt.ColumnInt64(0)), uint64(stmt.ColumnInt64(1)), nil
}

func (db *DB) transactTx(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error) {
	version, _, err := db.ctl()
	if err != nil {
		return nil, err
	}
	ts := db.clock.Next()
	if err := db.exec(`UPDATE __patina_ctl SET ts = ?, sync = 0 WHERE id = 0`, uint64(ts)); err != nil {
		return nil, err
	}
	res := &patina.TxResult{Results: make([]patina.StatementResult, 0, len(stmts))}
	for i, st := range stmts {
		start := time.Now()
		stmt, err := prepareUser(db.w, st)
		if err != nil {
			return nil, wrapStmtErr(i, err)
		}
		for stmt.Step() {
		}
		err = stmt.Err()
		readOnly := stmt.ReadOnly()
		stmt.Close()
		if err != nil {
			if ctx.Err() != nil {
				return nil, db.ctxErr(ctx, fmt.Sprintf("statement %d", i+1), err)
			}
			return nil, wrapStmtErr(i, patina.Errorf(patina.EINVALID, "statement %q: %v", shorten(st.SQL), err))
		}
		var n int64
		if !readOnly {
			n = db.w.Changes()
		}
		res.Results = append(res.Results, patina.StatementResult{RowsAffected: n, Seconds: time.Since(start).Seconds()})
	}
	_, seq, err := db.ctl()
	if err != nil {
		return nil, err
	}
	if seq == 0 {
		return res, nil
	}
	changes, _, err := db.extract(0, version)
	if err != nil {
		return nil, fmt.Errorf("read changes of version %d: %w", version, err)
	}
	if len(changes) == 0 {
		// Everything written was overwritten inside the transaction
		// (insert then delete of a new row leaves a tombstone, so this is
		// rare); the version still exists, as a cleared one.
		res.Changeset = &patina.Changeset{Actor: db.actor, Version: version, Cleared: true, ClearedTo: version, TS: ts}
	} else {
		// LastSeq is the highest surviving seq, as ChangesFor computes it
		// later, so that chunks of the broadcast and of sync describe the
		// same view of the version until a cell of it is overwritten.
		last := changes[len(changes)-1].Seq
		res.Changeset = &patina.Changeset{Actor: db.actor, Version: version, Changes: changes,
			Seqs: patina.Range{Start: 0, End: last}, LastSeq: last, TS: ts}
	}
	if err := db.exec(`UPDATE __patina_ctl SET db_version = ?, seq = 0 WHERE id = 0`, version+1); err != nil {
		return nil, err
	}
	db.book.markKnown(db.actor, patina.Range{Start: version, End: version})
	if err := db.book.flush(db.exec); err != nil {
		return nil, err
	}
	return res, nil
}

// StatementError says which statement of a transaction failed.
func wrapStmtErr(i int, err error) error {
	code := patina.ErrorCode(err)
	return &patina.Error{Code: code, Message: fmt.Sprintf("statement %d: %s", i+1, patina.ErrorMessage(err))}
}

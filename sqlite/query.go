package sqlite

import (
	"context"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// Query runs one read-only statement on a read connection. The caller must
// Close the rows.
func (db *DB) Query(ctx context.Context, st patina.Statement) (patina.Rows, error) {
	if err := checkUserSQL(st.SQL); err != nil {
		return nil, err
	}
	rc, err := db.reader(ctx)
	if err != nil {
		return nil, err
	}
	stmt, err := prepareUser(rc.c, st)
	if err != nil {
		db.release(rc)
		return nil, err
	}
	if !stmt.ReadOnly() {
		stmt.Close()
		db.release(rc)
		return nil, patina.Errorf(patina.EINVALID, "statement %q is not read-only; send writes to /v1/transactions", shorten(st.SQL))
	}
	old := rc.c.SetInterrupt(ctx)
	cols := make([]string, stmt.ColumnCount())
	for i := range cols {
		cols[i] = stmt.ColumnName(i)
	}
	return &rows{db: db, rc: rc, stmt: stmt, cols: cols, ctx: ctx, old: old}, nil
}

type rows struct {
	db   *DB
	rc   *rconn
	stmt *sqlite3.Stmt
	cols []string
	vals []patina.Value
	ctx  context.Context
	old  context.Context
	err  error
}

func (r *rows) Columns() []string { return r.cols }

func (r *rows) Next() bool {
	if r.stmt == nil {
		return false
	}
	if !r.stmt.Step() {
		if err := r.stmt.Err(); err != nil {
			if r.ctx.Err() != nil {
				r.err = patina.Errorf(patina.ETIMEOUT, "query interrupted: %v; narrow the query or raise its timeout", context.Cause(r.ctx))
			} else {
				r.err = patina.Errorf(patina.EINVALID, "query failed: %v", err)
			}
		}
		return false
	}
	if r.vals == nil {
		r.vals = make([]patina.Value, len(r.cols))
	}
	for i := range r.vals {
		r.vals[i] = columnValue(r.stmt, i)
	}
	return true
}

func (r *rows) Values() []patina.Value { return r.vals }
func (r *rows) Err() error             { return r.err }

func (r *rows) Close() error {
	if r.stmt == nil {
		return nil
	}
	err := r.stmt.Close()
	r.stmt = nil
	r.rc.c.SetInterrupt(r.old)
	r.db.release(r.rc)
	return err
}

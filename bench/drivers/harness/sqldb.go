package harness

import (
	"context"
	"database/sql"
	"fmt"
)

// SQLOpener adapts a database/sql driver. The pool is limited to one
// connection, pinned with DB.Conn, and statements are prepared once on it;
// BEGIN/COMMIT are plain Execs on that connection, as in the direct API.
func SQLOpener(driverName string, dsn func(path string) string) Opener {
	return func(path string) (Conn, error) {
		db, err := sql.Open(driverName, dsn(path))
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(context.Background())
		if err != nil {
			db.Close()
			return nil, err
		}
		return &sqlConn{db: db, conn: conn}, nil
	}
}

type sqlConn struct {
	db   *sql.DB
	conn *sql.Conn
}

var ctx = context.Background()

func (c *sqlConn) Exec(q string) error {
	_, err := c.conn.ExecContext(ctx, q)
	return err
}

func (c *sqlConn) Prepare(q string) (Stmt, error) {
	s, err := c.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, r := range q { // parameters are all '?' in this harness
		if r == '?' {
			n++
		}
	}
	return &sqlStmt{s: s, args: make([]any, n)}, nil
}

func (c *sqlConn) Close() error {
	if err := c.conn.Close(); err != nil {
		return err
	}
	return c.db.Close()
}

type sqlStmt struct {
	s    *sql.Stmt
	args []any
	rows *sql.Rows
}

func (s *sqlStmt) BindInt64(i int, v int64)   { s.args[i-1] = v }
func (s *sqlStmt) BindText(i int, v string)   { s.args[i-1] = v }
func (s *sqlStmt) BindFloat(i int, v float64) { s.args[i-1] = v }
func (s *sqlStmt) BindBlob(i int, v []byte)   { s.args[i-1] = v }
func (s *sqlStmt) Scan(dest ...any) error     { return s.rows.Scan(dest...) }
func (s *sqlStmt) Close() error               { return s.s.Close() }

func (s *sqlStmt) Exec() error {
	_, err := s.s.ExecContext(ctx, s.args...)
	return err
}

func (s *sqlStmt) Step() bool {
	if s.rows == nil {
		rows, err := s.s.QueryContext(ctx, s.args...)
		if err != nil {
			s.rows = nil
			panic(fmt.Sprintf("query: %v", err))
		}
		s.rows = rows
	}
	return s.rows.Next()
}

func (s *sqlStmt) Reset() error {
	if s.rows == nil {
		return nil
	}
	err := s.rows.Close()
	if e := s.rows.Err(); e != nil {
		err = e
	}
	s.rows = nil
	return err
}

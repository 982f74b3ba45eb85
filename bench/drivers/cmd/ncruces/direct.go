package main

import (
	"fmt"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina/bench/drivers/harness"
)

// openDirect adapts the ncruces direct API: sqlite3.Open, Conn.Prepare,
// Stmt.Bind*, Stmt.Exec (Step to done + Reset), Stmt.Step, Stmt.Column*,
// Stmt.Reset, Conn.Exec.
func openDirect(path string) (harness.Conn, error) {
	c, err := sqlite3.Open(path)
	if err != nil {
		return nil, err
	}
	return directConn{c}, nil
}

type directConn struct{ c *sqlite3.Conn }

func (d directConn) Exec(q string) error { return d.c.Exec(q) }
func (d directConn) Close() error        { return d.c.Close() }

func (d directConn) Prepare(q string) (harness.Stmt, error) {
	s, tail, err := d.c.Prepare(q)
	if err != nil {
		return nil, err
	}
	if tail != "" {
		s.Close()
		return nil, fmt.Errorf("prepare: trailing SQL %q", tail)
	}
	return &directStmt{s: s}, nil
}

type directStmt struct {
	s   *sqlite3.Stmt
	err error // first bind error since the last Exec/Reset
}

func (d *directStmt) keep(err error) {
	if err != nil && d.err == nil {
		d.err = err
	}
}

func (d *directStmt) BindInt64(i int, v int64)   { d.keep(d.s.BindInt64(i, v)) }
func (d *directStmt) BindText(i int, v string)   { d.keep(d.s.BindText(i, v)) }
func (d *directStmt) BindFloat(i int, v float64) { d.keep(d.s.BindFloat(i, v)) }
func (d *directStmt) BindBlob(i int, v []byte)   { d.keep(d.s.BindBlob(i, v)) }
func (d *directStmt) Step() bool                 { return d.err == nil && d.s.Step() }
func (d *directStmt) Close() error               { return d.s.Close() }

func (d *directStmt) Exec() error {
	if err := d.err; err != nil {
		d.err = nil
		return err
	}
	return d.s.Exec()
}

func (d *directStmt) Reset() error {
	err := d.s.Reset()
	if d.err != nil {
		err, d.err = d.err, nil
	}
	return err
}

func (d *directStmt) Scan(dest ...any) error {
	for i, p := range dest {
		switch p := p.(type) {
		case *int64:
			*p = d.s.ColumnInt64(i)
		case *float64:
			*p = d.s.ColumnFloat(i)
		case *string:
			*p = d.s.ColumnText(i)
		case *[]byte:
			*p = d.s.ColumnBlob(i, (*p)[:0])
		default:
			return fmt.Errorf("scan: unsupported %T", p)
		}
	}
	return nil
}

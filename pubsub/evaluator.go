package pubsub

import (
	"context"
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// stmtCacheMax bounds the prepared statements an evaluator keeps.
const stmtCacheMax = 16384

// evaluator runs queries on one connection to the replicated database,
// caching prepared statements.
type evaluator struct {
	conn  *sqlite3.Conn
	stmts map[string]*sqlite3.Stmt
	temps map[string]int // temp key tables created: name -> columns
	buf   []byte
}

func newEvaluator(c *sqlite3.Conn) *evaluator {
	return &evaluator{conn: c, stmts: map[string]*sqlite3.Stmt{}, temps: map[string]int{}}
}

func (e *evaluator) close() {
	for _, st := range e.stmts {
		st.Close()
	}
	e.stmts = nil
	e.conn.Close()
}

func (e *evaluator) prepare(sql string) (*sqlite3.Stmt, error) {
	if st, ok := e.stmts[sql]; ok {
		return st, nil
	}
	if len(e.stmts) >= stmtCacheMax {
		for k, st := range e.stmts {
			st.Close()
			delete(e.stmts, k)
			if len(e.stmts) < stmtCacheMax/2 {
				break
			}
		}
	}
	st, _, err := e.conn.Prepare(sql)
	if err != nil {
		return nil, err
	}
	e.stmts[sql] = st
	return st, nil
}

func (e *evaluator) forget(sql string) {
	if st, ok := e.stmts[sql]; ok {
		st.Close()
		delete(e.stmts, sql)
	}
}

// begin opens a read transaction: one snapshot for a whole pass, and one
// set of file locks instead of one per query.
func (e *evaluator) begin() error { return e.conn.Exec(`BEGIN`) }

// end closes the transaction, dropping the pass's temp rows.
func (e *evaluator) end() {
	if !e.conn.GetAutocommit() {
		e.conn.Exec(`ROLLBACK`)
	}
}

// query runs sql with st's parameters, calling fn with each row's identity
// key (the first nhidden columns, or the cells when nhidden is 0) and
// cells. A nil ctx keeps the connection's interrupt context (a pass sets
// one for all its queries).
func (e *evaluator) query(ctx context.Context, sql string, st patina.Statement, nhidden int, fn func(key, cells string)) error {
	stmt, err := e.prepare(sql)
	if err != nil {
		return err
	}
	stmt.ClearBindings()
	if err := bindStatement(stmt, st); err != nil {
		return err
	}
	if ctx != nil {
		old := e.conn.SetInterrupt(ctx)
		defer e.conn.SetInterrupt(old)
	}
	ncols := stmt.ColumnCount()
	for stmt.Step() {
		e.buf = appendColumns(e.buf[:0], stmt, nhidden, ncols)
		cells := string(e.buf)
		key := cells
		if nhidden > 0 {
			e.buf = appendColumns(e.buf[:0], stmt, 0, nhidden)
			key = string(e.buf)
		}
		fn(key, cells)
	}
	err = stmt.Err()
	stmt.Reset()
	if err != nil {
		e.forget(sql)
	}
	return err
}

// ensureTemp creates a temp key table (outside any transaction: the pass's
// rollback would undo it).
func (e *evaluator) ensureTemp(name string, ncols int) error {
	if n, ok := e.temps[name]; ok && n == ncols {
		return nil
	}
	if err := createKeyTable(e.conn, name, ncols); err != nil {
		return err
	}
	e.temps[name] = ncols
	return nil
}

// fillKeys puts a table's changed keys into its temp key table (inside the
// pass's transaction, so the rollback empties it).
func (e *evaluator) fillKeys(name string, keys [][]patina.Value, ncols int) error {
	if n, ok := e.temps[name]; !ok || n != ncols {
		return fmt.Errorf("temp key table %s was not created (a bug)", name)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ")
	ins, err := e.prepare(fmt.Sprintf(`INSERT INTO temp.%s VALUES (%s)`, quoteIdent(name), ph))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if len(k) != ncols {
			continue
		}
		for i, v := range k {
			if err := bindValue(ins, i+1, v); err != nil {
				return err
			}
		}
		if err := ins.Exec(); err != nil {
			return err
		}
	}
	return nil
}

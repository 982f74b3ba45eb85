package pubsub

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// logDB is the durable side of the subscriptions: one SQLite file (subs.db)
// holding every subscription's query, its materialized rows with their row
// ids, its last change id and its most recent changes. The evaluation loop
// writes it in one transaction per pass, before any event leaves the
// agent, so a client can always resume from a change id it has seen, across
// restarts too.
type logDB struct {
	mu sync.Mutex // serialises w
	w  *sqlite3.Conn
	rm sync.Mutex // serialises r
	r  *sqlite3.Conn
}

const logDDL = `
CREATE TABLE IF NOT EXISTS subs (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, sql TEXT NOT NULL, params BLOB NOT NULL, named BLOB NOT NULL, last_change INTEGER NOT NULL, last_rowid INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sub_rows (sub INTEGER NOT NULL, rowid_ INTEGER NOT NULL, key BLOB NOT NULL, cells BLOB NOT NULL, PRIMARY KEY (sub, rowid_)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sub_changes (sub INTEGER NOT NULL, id INTEGER NOT NULL, kind INTEGER NOT NULL, rowid_ INTEGER NOT NULL, cells BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (sub, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sub_changes_at ON sub_changes (at);
`

func openConn(path string) (*sqlite3.Conn, error) {
	c, err := sqlite3.Open(path)
	if err != nil {
		return nil, err
	}
	if err := c.BusyTimeout(5 * time.Second); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384`); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func openLog(path string) (*logDB, error) {
	w, err := openConn(path)
	if err != nil {
		return nil, err
	}
	if err := w.Exec(logDDL); err != nil {
		w.Close()
		return nil, err
	}
	r, err := openConn(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	return &logDB{w: w, r: r}, nil
}

func (l *logDB) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rm.Lock()
	defer l.rm.Unlock()
	return errors.Join(l.w.Close(), l.r.Close())
}

// exec runs one statement with arguments on c.
func exec(c *sqlite3.Conn, sql string, args ...any) error {
	st, _, err := c.Prepare(sql)
	if err != nil {
		return err
	}
	defer st.Close()
	for i, a := range args {
		switch x := a.(type) {
		case int64:
			err = st.BindInt64(i+1, x)
		case uint64:
			err = st.BindInt64(i+1, int64(x))
		case int:
			err = st.BindInt64(i+1, int64(x))
		case string:
			err = st.BindText(i+1, x)
		case []byte:
			err = st.BindBlob(i+1, x)
		default:
			err = fmt.Errorf("bind: unsupported %T", a)
		}
		if err != nil {
			return err
		}
	}
	return st.Exec()
}

// tx runs fn in a write transaction.
func (l *logDB) tx(fn func(c *sqlite3.Conn) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Exec(`BEGIN IMMEDIATE`); err != nil {
		return err
	}
	if err := fn(l.w); err != nil {
		l.w.Exec(`ROLLBACK`)
		return err
	}
	if err := l.w.Exec(`COMMIT`); err != nil {
		l.w.Exec(`ROLLBACK`)
		return err
	}
	return nil
}

// createSub stores a new subscription and its first rows; it returns the
// subscription's number in the file.
func (l *logDB) createSub(sb *sub, rows []*row) (int64, error) {
	var n int64
	err := l.tx(func(c *sqlite3.Conn) error {
		if err := exec(c, `INSERT INTO subs (id, hash, sql, params, named, last_change, last_rowid, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
			sb.id, sb.hash, sb.stmt.SQL, []byte(encodeValues(sb.stmt.Params)), []byte(encodeNamed(sb.stmt.Named)), sb.lastRowID, sb.created.UnixMilli()); err != nil {
			return err
		}
		n = c.LastInsertRowID()
		ins, _, err := c.Prepare(`INSERT INTO sub_rows (sub, rowid_, key, cells) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, r := range rows {
			ins.BindInt64(1, n)
			ins.BindInt64(2, r.id)
			ins.BindBlob(3, []byte(r.key))
			ins.BindBlob(4, []byte(r.cells))
			if err := ins.Exec(); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// commit is what one pass changed in one subscription.
type commit struct {
	sb         *sub
	changes    []change
	lastChange uint64
	lastRowID  int64
	trimBelow  uint64 // delete changes with id <= trimBelow
}

// change is one computed change to a subscription's result.
type change struct {
	id    uint64
	kind  patina.ChangeKind
	rowid int64
	key   string
	cells string
	old   *row // the row updated or deleted
}

// persist writes a pass's commits in one transaction.
func (l *logDB) persist(commits []*commit, now time.Time) error {
	if len(commits) == 0 {
		return nil
	}
	at := now.UnixMilli()
	return l.tx(func(c *sqlite3.Conn) error {
		insC, _, err := c.Prepare(`INSERT INTO sub_changes (sub, id, kind, rowid_, cells, at) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insC.Close()
		upR, _, err := c.Prepare(`INSERT OR REPLACE INTO sub_rows (sub, rowid_, key, cells) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer upR.Close()
		delR, _, err := c.Prepare(`DELETE FROM sub_rows WHERE sub = ? AND rowid_ = ?`)
		if err != nil {
			return err
		}
		defer delR.Close()
		for _, cm := range commits {
			n := cm.sb.n
			for _, ch := range cm.changes {
				insC.BindInt64(1, n)
				insC.BindInt64(2, int64(ch.id))
				insC.BindInt64(3, int64(ch.kind))
				insC.BindInt64(4, ch.rowid)
				insC.BindBlob(5, []byte(ch.cells))
				insC.BindInt64(6, at)
				if err := insC.Exec(); err != nil {
					return err
				}
				if ch.kind == patina.ChangeDelete {
					delR.BindInt64(1, n)
					delR.BindInt64(2, ch.rowid)
					err = delR.Exec()
				} else {
					upR.BindInt64(1, n)
					upR.BindInt64(2, ch.rowid)
					upR.BindBlob(3, []byte(ch.key))
					upR.BindBlob(4, []byte(ch.cells))
					err = upR.Exec()
				}
				if err != nil {
					return err
				}
			}
			if err := exec(c, `UPDATE subs SET last_change = ?, last_rowid = ? WHERE n = ?`, cm.lastChange, cm.lastRowID, n); err != nil {
				return err
			}
			if cm.trimBelow > 0 {
				if err := exec(c, `DELETE FROM sub_changes WHERE sub = ? AND id <= ?`, n, cm.trimBelow); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (l *logDB) deleteSub(n int64) error {
	return l.tx(func(c *sqlite3.Conn) error {
		for _, q := range []string{`DELETE FROM sub_changes WHERE sub = ?`, `DELETE FROM sub_rows WHERE sub = ?`, `DELETE FROM subs WHERE n = ?`} {
			if err := exec(c, q, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// trimAge deletes changes older than before and returns each
// subscription's oldest kept change id afterwards (absent: none kept).
func (l *logDB) trimAge(before time.Time) (map[int64]uint64, error) {
	oldest := map[int64]uint64{}
	err := l.tx(func(c *sqlite3.Conn) error {
		if err := exec(c, `DELETE FROM sub_changes WHERE at < ?`, before.UnixMilli()); err != nil {
			return err
		}
		st, _, err := c.Prepare(`SELECT sub, min(id) FROM sub_changes GROUP BY sub`)
		if err != nil {
			return err
		}
		defer st.Close()
		for st.Step() {
			oldest[st.ColumnInt64(0)] = uint64(st.ColumnInt64(1))
		}
		return st.Err()
	})
	return oldest, err
}

// storedSub is a subscription as read back at start.
type storedSub struct {
	n                  int64
	id, hash           string
	stmt               patina.Statement
	lastChange, oldest uint64
	lastRowID          int64
	created            time.Time
	rows               []*row
	decodeErr          error
}

// load reads every stored subscription.
func (l *logDB) load() ([]*storedSub, error) {
	l.rm.Lock()
	defer l.rm.Unlock()
	c := l.r
	st, _, err := c.Prepare(`SELECT n, id, hash, sql, params, named, last_change, last_rowid, created_at, (SELECT min(id) FROM sub_changes WHERE sub = n) FROM subs ORDER BY n`)
	if err != nil {
		return nil, err
	}
	var out []*storedSub
	for st.Step() {
		s := &storedSub{n: st.ColumnInt64(0), id: st.ColumnText(1), hash: st.ColumnText(2),
			lastChange: uint64(st.ColumnInt64(6)), lastRowID: st.ColumnInt64(7), created: time.UnixMilli(st.ColumnInt64(8))}
		s.stmt.SQL = st.ColumnText(3)
		var err error
		if s.stmt.Params, err = decodeValues(string(st.ColumnRawBlob(4))); err != nil {
			s.decodeErr = err
		}
		if s.stmt.Named, err = decodeNamed(string(st.ColumnRawBlob(5))); err != nil {
			s.decodeErr = err
		}
		if len(s.stmt.Params) == 0 {
			s.stmt.Params = nil
		}
		s.oldest = s.lastChange + 1
		if st.ColumnType(9) != sqlite3.NULL {
			s.oldest = uint64(st.ColumnInt64(9))
		}
		out = append(out, s)
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	rs, _, err := c.Prepare(`SELECT rowid_, key, cells FROM sub_rows WHERE sub = ? ORDER BY rowid_`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for _, s := range out {
		rs.BindInt64(1, s.n)
		for rs.Step() {
			cells := string(rs.ColumnRawBlob(2))
			key := string(rs.ColumnRawBlob(1))
			s.rows = append(s.rows, &row{id: rs.ColumnInt64(0), key: key, cells: cells})
		}
		if err := rs.Reset(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// changesAfter reads up to limit changes of subscription n with ids above
// after, in order.
func (l *logDB) changesAfter(n int64, after uint64, limit int) ([]change, error) {
	l.rm.Lock()
	defer l.rm.Unlock()
	st, _, err := l.r.Prepare(`SELECT id, kind, rowid_, cells FROM sub_changes WHERE sub = ? AND id > ? ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	st.BindInt64(1, n)
	st.BindInt64(2, int64(after))
	st.BindInt64(3, int64(limit))
	var out []change
	for st.Step() {
		out = append(out, change{id: uint64(st.ColumnInt64(0)), kind: patina.ChangeKind(st.ColumnInt64(1)),
			rowid: st.ColumnInt64(2), cells: string(st.ColumnRawBlob(3))})
	}
	return out, st.Err()
}

func encodeNamed(named map[string]patina.Value) string {
	names := make([]string, 0, len(named))
	for k := range named {
		names = append(names, k)
	}
	sort.Strings(names)
	vals := make([]patina.Value, 0, 2*len(names))
	for _, k := range names {
		vals = append(vals, patina.Text(k), named[k])
	}
	return encodeValues(vals)
}

func decodeNamed(s string) (map[string]patina.Value, error) {
	vals, err := decodeValues(s)
	if err != nil || len(vals) == 0 {
		return nil, err
	}
	if len(vals)%2 != 0 {
		return nil, errCorrupt
	}
	out := make(map[string]patina.Value, len(vals)/2)
	for i := 0; i < len(vals); i += 2 {
		out[string(vals[i].Bytes)] = vals[i+1]
	}
	return out, nil
}

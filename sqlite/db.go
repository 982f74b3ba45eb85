// Package sqlite implements patina.Store on SQLite (ncruces/go-sqlite3, see
// docs/decisions/0001-sqlite-driver.md): schema files, capture triggers,
// local transactions, changeset extraction, remote merge and the per-actor
// bookkeeping, all in one database file. docs/store.md describes the tables,
// the capture and apply paths and their measured cost.
package sqlite

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/crdt"
)

// Defaults for DB's exported fields.
const (
	DefaultReadConns          = 4
	DefaultMaxBufferedChanges = 1_000_000
	DefaultMaxDeferredChanges = 100_000
	DefaultBusyTimeout        = 5 * time.Second
)

var _ patina.Store = (*DB)(nil)

// DB is a replicated SQLite database.
type DB struct {
	// Path of the database file. Required.
	Path string
	// Now is the wall clock for the HLC. Default time.Now.
	Now func() time.Time
	// ReadConns is the number of read-only connections for queries.
	// Default DefaultReadConns; zero means default.
	ReadConns int
	// MaxBufferedChanges bounds the changes of partially received versions
	// kept until their version completes. Default DefaultMaxBufferedChanges.
	MaxBufferedChanges int
	// MaxDeferredChanges bounds the changes kept because they reference a
	// table or column this node does not have yet. Default
	// DefaultMaxDeferredChanges.
	MaxDeferredChanges int
	// CheckpointInterval is how often a background connection checkpoints
	// the WAL (see checkpoint.go). Default DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// WALMaxBytes is the WAL size above which the checkpoint truncates it.
	// Default DefaultWALMaxBytes.
	WALMaxBytes int64

	ckptStop, ckptDone chan struct{}

	mu    sync.Mutex    // serialises writes on w and ap
	w     *sqlite3.Conn // local transactions and schema changes
	stmts map[string]*sqlite3.Stmt
	// ap applies remote changes: a second writer connection with triggers
	// disabled (SQLITE_DBCONFIG_ENABLE_TRIGGER), so that merged rows are not
	// captured as local writes, without a flag the triggers would have to
	// read for every row.
	ap       *conn
	readers  chan *rconn
	nreaders int // read connections created (returned to readers when idle)

	actor  patina.ActorID
	clock  *crdt.Clock
	schema atomic.Pointer[Schema]
	siteMu sync.RWMutex
	sites  map[patina.ActorID]int64 // actor -> ordinal in __patina_sites
	siteOf map[int64]patina.ActorID
	book   *bookie

	tstmts map[string]*tableStmts // per-table apply statements on ap

	buffered int // rows in __patina_buffer
	deferred int // rows in __patina_deferred

	closed atomic.Bool
}

// NewDB returns a DB for the file at path with default settings.
func NewDB(path string) *DB {
	return &DB{
		Path:               path,
		Now:                time.Now,
		ReadConns:          DefaultReadConns,
		MaxBufferedChanges: DefaultMaxBufferedChanges,
		MaxDeferredChanges: DefaultMaxDeferredChanges,
	}
}

// metaDDL creates the bookkeeping tables. The val columns of the buffer and
// deferred tables have no declared type: any type would give them an
// affinity that rewrites values (ANY is NUMERIC, turning TEXT '1' into 1).
const metaDDL = `
CREATE TABLE IF NOT EXISTS __patina_state (key TEXT PRIMARY KEY, value ANY);
CREATE TABLE IF NOT EXISTS __patina_sites (ordinal INTEGER PRIMARY KEY, site_id BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS __patina_ctl (id INTEGER PRIMARY KEY CHECK (id = 0), sync INTEGER NOT NULL DEFAULT 0, db_version INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL);
INSERT INTO __patina_ctl (id, sync, db_version, seq, ts) VALUES (0, 0, 1, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS __patina_heads (site BLOB PRIMARY KEY, head INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS __patina_gaps (site BLOB NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, PRIMARY KEY (site, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS __patina_partials (site BLOB NOT NULL, version INTEGER NOT NULL, start_seq INTEGER NOT NULL, end_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (site, version, start_seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS __patina_buffer (site BLOB NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL, tbl TEXT NOT NULL, pk BLOB NOT NULL, cid TEXT NOT NULL, val, col_version INTEGER NOT NULL, cl INTEGER NOT NULL, PRIMARY KEY (site, version, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS __patina_deferred (site BLOB NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL, tbl TEXT NOT NULL, pk BLOB NOT NULL, cid TEXT NOT NULL, val, col_version INTEGER NOT NULL, cl INTEGER NOT NULL, last_seq INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (site, version, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS __patina_quarantine (id INTEGER PRIMARY KEY, site BLOB NOT NULL, version INTEGER NOT NULL, tbl TEXT, reason TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS __patina_schema (name TEXT PRIMARY KEY, sql TEXT NOT NULL, file TEXT NOT NULL);
`

func openConn(path string) (*sqlite3.Conn, error) {
	c, err := sqlite3.Open(path)
	if err != nil {
		return nil, err
	}
	if err := c.BusyTimeout(DefaultBusyTimeout); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA recursive_triggers = OFF; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0`); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Open opens (creating if needed) the database, its bookkeeping and its read
// connections.
func (db *DB) Open() error {
	if db.Path == "" {
		return fmt.Errorf("open store: no path given")
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.ReadConns <= 0 {
		db.ReadConns = DefaultReadConns
	}
	if db.MaxBufferedChanges <= 0 {
		db.MaxBufferedChanges = DefaultMaxBufferedChanges
	}
	if db.MaxDeferredChanges <= 0 {
		db.MaxDeferredChanges = DefaultMaxDeferredChanges
	}
	w, err := openConn(db.Path)
	if err != nil {
		return fmt.Errorf("open store %q: %w (is the directory writable?)", db.Path, err)
	}
	db.w = w
	db.stmts = map[string]*sqlite3.Stmt{}
	db.tstmts = map[string]*tableStmts{}
	db.closed.Store(false)
	if err := w.Exec(metaDDL); err != nil {
		db.Close()
		return fmt.Errorf("open store %q: create bookkeeping tables: %w", db.Path, err)
	}
	ap, err := openConn(db.Path)
	if err == nil {
		_, err = ap.Config(sqlite3.DBCONFIG_ENABLE_TRIGGER, false)
		if err != nil {
			ap.Close()
		}
	}
	if err != nil {
		db.Close()
		return fmt.Errorf("open store %q: apply connection: %w", db.Path, err)
	}
	db.ap = &conn{c: ap, stmts: map[string]*sqlite3.Stmt{}}
	if err := db.loadSites(); err != nil {
		db.Close()
		return fmt.Errorf("open store %q: %w", db.Path, err)
	}
	db.clock = crdt.NewClock(db.Now)
	db.book = newBookie()
	if err := db.book.load(w); err != nil {
		db.Close()
		return fmt.Errorf("open store %q: load bookkeeping: %w", db.Path, err)
	}
	schema, err := db.loadSchema()
	if err != nil {
		db.Close()
		return fmt.Errorf("open store %q: %w", db.Path, err)
	}
	db.schema.Store(schema)
	db.buffered = db.countRows(`SELECT count(*) FROM __patina_buffer`)
	db.deferred = db.countRows(`SELECT count(*) FROM __patina_deferred`)
	db.readers = make(chan *rconn, db.ReadConns)
	for i := 0; i < db.ReadConns; i++ {
		r, err := openConn(db.Path)
		if err == nil {
			err = r.Exec(`PRAGMA query_only = ON`)
		}
		if err != nil {
			db.Close()
			return fmt.Errorf("open store %q: read connection: %w", db.Path, err)
		}
		db.readers <- &rconn{conn: conn{c: r, stmts: map[string]*sqlite3.Stmt{}}}
		db.nreaders++
	}
	if err := db.startCheckpointer(); err != nil {
		db.Close()
		return fmt.Errorf("open store %q: checkpoint connection: %w", db.Path, err)
	}
	return nil
}

func (db *DB) countRows(sql string) int {
	stmt, err := db.stmt(sql)
	if err != nil {
		return 0
	}
	defer stmt.Reset()
	if stmt.Step() {
		return stmt.ColumnInt(0)
	}
	return 0
}

// Close closes every connection.
func (db *DB) Close() error {
	db.stopCheckpointer()
	db.closed.Store(true)
	db.mu.Lock()
	defer db.mu.Unlock()
	var errs []error
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = nil
	db.tstmts = nil
	if db.ap != nil {
		errs = append(errs, db.ap.close())
		db.ap = nil
	}
	// Wait for borrowed read connections (open Rows, a running ChangesFor)
	// to come back before closing them.
	for ; db.nreaders > 0; db.nreaders-- {
		r := <-db.readers
		for _, s := range r.stmts {
			s.Close()
		}
		errs = append(errs, r.c.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
		db.w = nil
	}
	return errors.Join(errs...)
}

// Actor returns this node's actor id.
func (db *DB) Actor() patina.ActorID { return db.actor }

// Schema returns the current replicated schema (do not modify).
func (db *DB) Schema() *Schema { return db.schema.Load() }

// stmt returns a cached prepared statement on the writer connection.
func (db *DB) stmt(sql string) (*sqlite3.Stmt, error) {
	return (&conn{c: db.w, stmts: db.stmts}).stmt(sql)
}

// exec runs a cached statement on the writer connection with arguments
// (int64, uint64, string, []byte, patina.Value).
func (db *DB) exec(sql string, args ...any) error {
	return (&conn{c: db.w, stmts: db.stmts}).exec(sql, args...)
}

func bindArgs(s *sqlite3.Stmt, args ...any) error {
	for i, a := range args {
		var err error
		switch x := a.(type) {
		case int64:
			err = s.BindInt64(i+1, x)
		case uint64:
			err = s.BindInt64(i+1, int64(x))
		case int:
			err = s.BindInt64(i+1, int64(x))
		case string:
			err = s.BindText(i+1, x)
		case []byte:
			if len(x) == 0 {
				err = s.BindZeroBlob(i+1, 0)
			} else {
				err = s.BindBlob(i+1, x)
			}
		case patina.Value:
			err = bindValue(s, i+1, x)
		case nil:
			err = s.BindNull(i + 1)
		default:
			return fmt.Errorf("bind: unsupported argument type %T", a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// loadSites reads or creates this node's identity and the site ordinals.
func (db *DB) loadSites() error {
	db.sites = map[patina.ActorID]int64{}
	db.siteOf = map[int64]patina.ActorID{}
	stmt, _, err := db.w.Prepare(`SELECT ordinal, site_id FROM __patina_sites`)
	if err != nil {
		return err
	}
	for stmt.Step() {
		var a patina.ActorID
		copy(a[:], stmt.ColumnRawBlob(1))
		db.sites[a] = stmt.ColumnInt64(0)
		db.siteOf[stmt.ColumnInt64(0)] = a
	}
	stmt.Close()
	if self, ok := db.siteOf[0]; ok {
		db.actor = self
		return nil
	}
	if _, err := rand.Read(db.actor[:]); err != nil {
		return fmt.Errorf("create actor id: %w", err)
	}
	db.actor[6] = db.actor[6]&0x0f | 0x40 // UUID v4
	db.actor[8] = db.actor[8]&0x3f | 0x80
	if err := db.exec(`INSERT INTO __patina_sites (ordinal, site_id) VALUES (0, ?)`, db.actor[:]); err != nil {
		return fmt.Errorf("store actor id: %w", err)
	}
	db.sites[db.actor] = 0
	db.siteOf[0] = db.actor
	return nil
}

// siteOrdinal returns (creating) the ordinal of actor a.
func (db *DB) siteOrdinal(a patina.ActorID) (int64, error) {
	db.siteMu.Lock()
	defer db.siteMu.Unlock()
	if o, ok := db.sites[a]; ok {
		return o, nil
	}
	o := int64(len(db.sites))
	for {
		if _, taken := db.siteOf[o]; !taken {
			break
		}
		o++
	}
	if err := db.ap.exec(`INSERT INTO __patina_sites (ordinal, site_id) VALUES (?, ?)`, o, a[:]); err != nil {
		return 0, fmt.Errorf("register site %s: %w", a, err)
	}
	db.sites[a] = o
	db.siteOf[o] = a
	return o, nil
}

// SyncState returns a copy of the bookkeeping.
func (db *DB) SyncState() patina.SyncState { return db.book.state(db.actor) }

// conn is a connection with its cache of prepared statements.
type conn struct {
	c     *sqlite3.Conn
	stmts map[string]*sqlite3.Stmt
}

func (c *conn) stmt(sql string) (*sqlite3.Stmt, error) {
	if s, ok := c.stmts[sql]; ok {
		return s, nil
	}
	s, _, err := c.c.Prepare(sql)
	if err != nil {
		return nil, err
	}
	c.stmts[sql] = s
	return s, nil
}

// exec runs a cached statement with arguments (see bindArgs).
func (c *conn) exec(sql string, args ...any) error {
	s, err := c.stmt(sql)
	if err != nil {
		return err
	}
	if err := bindArgs(s, args...); err != nil {
		return err
	}
	err = s.Exec()
	s.ClearBindings()
	return err
}

// reset drops the cached statements and makes the connection reload the
// schema (after ApplySchema changed it on another connection): statements
// prepared next see the new tables and columns.
func (c *conn) reset() error {
	for _, s := range c.stmts {
		s.Close()
	}
	c.stmts = map[string]*sqlite3.Stmt{}
	return c.c.Exec(`SELECT count(*) FROM sqlite_schema`)
}

func (c *conn) close() error {
	for _, s := range c.stmts {
		s.Close()
	}
	c.stmts = nil
	return c.c.Close()
}

// rconn is a read connection with its statement cache.
type rconn struct {
	conn
	gen *Schema // schema the cache was built for
}

// errClosed is returned by every method called after Close.
var errClosed = patina.Errorf(patina.EUNAVAILABLE, "store is closed")

// reader borrows a read connection.
func (db *DB) reader(ctx context.Context) (*rconn, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	select {
	case r := <-db.readers:
		if cur := db.schema.Load(); r.gen != cur {
			for _, s := range r.stmts {
				s.Close()
			}
			r.stmts = map[string]*sqlite3.Stmt{}
			// Reading the schema table makes the connection notice the new
			// schema cookie and reload, so that statements prepared next
			// (and their column lists, read before the first step) see the
			// new shape of the tables.
			if err := r.c.Exec(`SELECT count(*) FROM sqlite_schema`); err != nil {
				db.release(r)
				return nil, fmt.Errorf("reload schema on read connection: %w", err)
			}
			r.gen = cur
		}
		return r, nil
	case <-ctx.Done():
		return nil, patina.Errorf(patina.EUNAVAILABLE, "all %d read connections are busy and the request ran out of time waiting (%v); retry, or raise the read connection count", db.ReadConns, context.Cause(ctx))
	}
}

func (db *DB) release(r *rconn) { db.readers <- r }

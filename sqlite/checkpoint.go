package sqlite

import (
	"os"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// WAL checkpointing. SQLite's automatic checkpoint runs inside the
// committing connection, so every thousandth commit of the writer would pay
// for copying the WAL into the database and for its fsyncs — hundreds of
// milliseconds on a busy disk, on the latency path of local writes and of
// the apply loop. Instead the writer never checkpoints; a background
// connection checkpoints passively (never blocking writers or readers) and,
// when the WAL has grown past WALMaxBytes, truncates it (INCIDENTS.md #6:
// bounded WAL).
const (
	DefaultCheckpointInterval = time.Second
	DefaultWALMaxBytes        = 64 << 20
)

func (db *DB) startCheckpointer() error {
	if db.CheckpointInterval <= 0 {
		db.CheckpointInterval = DefaultCheckpointInterval
	}
	if db.WALMaxBytes <= 0 {
		db.WALMaxBytes = DefaultWALMaxBytes
	}
	db.ckptStop = make(chan struct{})
	db.ckptDone = make(chan struct{})
	go func() {
		defer close(db.ckptDone)
		// The connection opens at the first tick: a store opened and
		// closed within a second (tests, CLI commands) never pays for it.
		var c *sqlite3.Conn
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		t := time.NewTicker(db.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-db.ckptStop:
				return
			case <-t.C:
			}
			if c == nil {
				var err error
				if c, err = openConn(db.Path); err != nil {
					c = nil
					continue // try again next tick
				}
			}
			mode := sqlite3.CHECKPOINT_PASSIVE
			if fi, err := os.Stat(db.Path + "-wal"); err == nil && fi.Size() > db.WALMaxBytes {
				mode = sqlite3.CHECKPOINT_TRUNCATE
			}
			c.WALCheckpoint("main", mode)
		}
	}()
	return nil
}

func (db *DB) stopCheckpointer() {
	if db.ckptStop != nil {
		close(db.ckptStop)
		<-db.ckptDone
		db.ckptStop = nil
	}
}

package harness

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Schema is the services table plus patina's bookkeeping and capture
// trigger, as the store creates them (DESIGN.md §1).
var Schema = []string{
	`CREATE TABLE services(id TEXT PRIMARY KEY, name TEXT, port INTEGER, weight REAL, meta BLOB)`,
}

// CaptureSchema is the bookkeeping and the AFTER INSERT trigger.
//
// One column ordinal per cell: the sentinel '-1' takes ctl.seq, name..meta
// take ctl.seq+1..+4, and the row bumps ctl.seq by 5.
var CaptureSchema = []string{
	`CREATE TABLE __patina_ctl(id INTEGER PRIMARY KEY CHECK (id = 0), sync INTEGER NOT NULL DEFAULT 0, db_version INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL)`,
	`INSERT INTO __patina_ctl VALUES (0, 0, 1, 0, 0)`,
	`CREATE TABLE services__patina_pks(key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)`,
	`CREATE TABLE services__patina_clock(key INTEGER NOT NULL, cid TEXT NOT NULL, col_version INTEGER NOT NULL, db_version INTEGER NOT NULL, site INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (key, cid)) WITHOUT ROWID`,
	`CREATE INDEX services__patina_clock_dbv ON services__patina_clock(site, db_version)`,
	`CREATE TRIGGER services__patina_insert AFTER INSERT ON services
WHEN (SELECT sync FROM __patina_ctl WHERE id = 0) = 0
BEGIN
  INSERT INTO services__patina_pks(id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)
    SELECT p.key, '-1', 1, c.db_version, 0, c.seq, c.ts
    FROM services__patina_pks p, __patina_ctl c WHERE p.id = NEW.id AND c.id = 0
    ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
      site = 0, seq = excluded.seq, ts = excluded.ts
    WHERE col_version % 2 = 0;
  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)
    SELECT p.key, 'name', 1, c.db_version, 0, c.seq + 1, c.ts
    FROM services__patina_pks p, __patina_ctl c WHERE p.id = NEW.id AND c.id = 0
    ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
      site = 0, seq = excluded.seq, ts = excluded.ts;
  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)
    SELECT p.key, 'port', 1, c.db_version, 0, c.seq + 2, c.ts
    FROM services__patina_pks p, __patina_ctl c WHERE p.id = NEW.id AND c.id = 0
    ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
      site = 0, seq = excluded.seq, ts = excluded.ts;
  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)
    SELECT p.key, 'weight', 1, c.db_version, 0, c.seq + 3, c.ts
    FROM services__patina_pks p, __patina_ctl c WHERE p.id = NEW.id AND c.id = 0
    ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
      site = 0, seq = excluded.seq, ts = excluded.ts;
  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)
    SELECT p.key, 'meta', 1, c.db_version, 0, c.seq + 4, c.ts
    FROM services__patina_pks p, __patina_ctl c WHERE p.id = NEW.id AND c.id = 0
    ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
      site = 0, seq = excluded.seq, ts = excluded.ts;
  UPDATE __patina_ctl SET seq = seq + 5 WHERE id = 0;
END`,
}

// CaptureVariants are alternative capture schemas, measured with -variant to
// see where the capture overhead goes. They are not patina's design.
//   - noindex: without the (site, db_version) clock index;
//   - onestmt: the four column clock upserts as one INSERT … SELECT joined
//     with a VALUES list (one pk lookup instead of four);
//   - onestmt-noindex: both.
func CaptureVariant(name string) ([]string, error) {
	var out []string
	for _, q := range CaptureSchema {
		switch {
		case strings.HasPrefix(q, "CREATE INDEX") && strings.HasSuffix(name, "noindex"):
			continue
		case strings.HasPrefix(q, "CREATE TRIGGER") && strings.HasPrefix(name, "onestmt"):
			i := strings.Index(q, "  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)\n    SELECT p.key, 'name'")
			j := strings.Index(q, "  UPDATE __patina_ctl SET seq")
			q = q[:i] + `  INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts)
    SELECT p.key, x.column1, 1, c.db_version, 0, c.seq + x.column2, c.ts
    FROM services__patina_pks p, __patina_ctl c, (VALUES ('name', 1), ('port', 2), ('weight', 3), ('meta', 4)) x
    WHERE p.id = NEW.id AND c.id = 0
    ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1, db_version = excluded.db_version,
      site = 0, seq = excluded.seq, ts = excluded.ts;
` + q[j:]
		}
		out = append(out, q)
	}
	switch name {
	case "", "noindex", "onestmt", "onestmt-noindex":
		return out, nil
	}
	return nil, fmt.Errorf("unknown capture variant %q", name)
}

const (
	insertSQL = `INSERT INTO services(id, name, port, weight, meta) VALUES (?, ?, ?, ?, ?)`
	readSQL   = `SELECT name, port, weight, meta FROM services WHERE id = ?`

	rowsPerTx      = 100  // local writes
	applyRowsPerTx = 1000 // remote apply batches
	baseTS         = 1_700_000_000_000
)

// version is the db_version the capture run gives row i (and the version a
// remote change for row i carries): transaction t gets version t+2, the
// control row starting at 1.
func version(i int) int64 { return int64(i/rowsPerTx) + 2 }

// seqBase is ctl.seq when row i is inserted.
func seqBase(i int) int64 { return int64(i%rowsPerTx) * 5 }

func bindRow(s Stmt, r *Row) {
	s.BindText(1, r.ID)
	s.BindText(2, r.Name)
	s.BindInt64(3, r.Port)
	s.BindFloat(4, r.Weight)
	s.BindBlob(5, r.Meta)
}

func setup(c Conn, stmts ...[]string) {
	for _, list := range stmts {
		for _, q := range list {
			mustExec(c, q)
		}
	}
}

// Raw inserts rows into a fresh database without triggers; rows/s.
func Raw(open Opener, path string, rows []Row) Rate {
	c := openDB(open, path)
	defer c.Close()
	setup(c, Schema)
	ins := mustPrepare(c, insertSQL)
	start := startTimer()
	for i := 0; i < len(rows); i += rowsPerTx {
		mustExec(c, "BEGIN")
		for j := i; j < min(i+rowsPerTx, len(rows)); j++ {
			bindRow(ins, &rows[j])
			check(ins.Exec())
		}
		mustExec(c, "COMMIT")
	}
	rps := start.rate(len(rows))
	check(ins.Close())
	expect(c, "SELECT count(*) FROM services", int64(len(rows)))
	return rps
}

// Read does one point read per row, by pk, in random order, in autocommit,
// on the database Raw left behind; reads/s.
func Read(open Opener, path string, rows []Row) Rate {
	c := openDB(open, path)
	defer c.Close()
	order := rand.New(rand.NewPCG(7, 7)).Perm(len(rows))
	sel := mustPrepare(c, readSQL)
	defer sel.Close()
	var (
		name   string
		port   int64
		weight float64
		meta   []byte
	)
	start := startTimer()
	for _, k := range order {
		r := &rows[k]
		sel.BindText(1, r.ID)
		if !sel.Step() {
			check(fmt.Errorf("read %s: no row (%v)", r.ID, sel.Reset()))
		}
		check(sel.Scan(&name, &port, &weight, &meta))
		check(sel.Reset())
		if port != r.Port || len(meta) != len(r.Meta) {
			check(fmt.Errorf("read %s: got port %d, want %d", r.ID, port, r.Port))
		}
	}
	return start.rate(len(rows))
}

// Capture inserts rows into a fresh database with the capture trigger, one
// version per transaction; rows/s.
func Capture(open Opener, path string, rows []Row, variant string) Rate {
	schema, err := CaptureVariant(variant)
	check(err)
	c := openDB(open, path)
	defer c.Close()
	setup(c, Schema, schema)
	ins := mustPrepare(c, insertSQL)
	ctl := mustPrepare(c, `UPDATE __patina_ctl SET db_version = ?, seq = 0, ts = ? WHERE id = 0`)
	start := startTimer()
	for i := 0; i < len(rows); i += rowsPerTx {
		mustExec(c, "BEGIN")
		ctl.BindInt64(1, version(i))
		ctl.BindInt64(2, baseTS+int64(i))
		check(ctl.Exec())
		for j := i; j < min(i+rowsPerTx, len(rows)); j++ {
			bindRow(ins, &rows[j])
			check(ins.Exec())
		}
		mustExec(c, "COMMIT")
	}
	rps := start.rate(len(rows))
	check(ins.Close())
	check(ctl.Close())
	verifyClocks(c, rows, 0)
	return rps
}

// verifyClocks checks the bookkeeping either path must leave behind.
func verifyClocks(c Conn, rows []Row, site int64) {
	n := int64(len(rows))
	expect(c, "SELECT count(*) FROM services", n)
	expect(c, "SELECT count(*) FROM services__patina_pks", n)
	expect(c, "SELECT count(*) FROM services__patina_clock", 5*n)
	expect(c, "SELECT count(*) FROM services__patina_clock WHERE cid = '-1' AND col_version = 1", n)
	expect(c, fmt.Sprintf("SELECT count(*) FROM services__patina_clock WHERE site = %d", site), 5*n)
	var seq, dbv int64
	for i := range rows {
		seq += 5*seqBase(i) + 0 + 1 + 2 + 3 + 4
		dbv += 5 * version(i)
	}
	expect(c, "SELECT sum(seq) FROM services__patina_clock", seq)
	expect(c, "SELECT sum(db_version) FROM services__patina_clock", dbv)
	expect(c, "SELECT count(*) FROM services__patina_clock k JOIN services__patina_pks p USING (key) JOIN services s USING (id)", 5*n)
}

// cell is one remote change: (pk, cid, value, col_version, db_version, site, cl, seq).
type cell struct {
	cid        string
	colVersion int64
	dbVersion  int64
	seq        int64
}

// remoteRow is the changes of one pk, grouped as the apply loop sees them
// after decoding a changeset.
type remoteRow struct {
	row   *Row
	cl    int64   // causal length (sentinel col_version)
	cells [5]cell // '-1', name, port, weight, meta
	ts    int64
}

var cids = [5]string{"-1", "name", "port", "weight", "meta"}

// changes builds the changes that a capture of rows on a remote site
// produces: the same db_version and seq the capture trigger wrote.
func changes(rows []Row) []remoteRow {
	out := make([]remoteRow, len(rows))
	for i := range rows {
		r := &out[i]
		r.row = &rows[i]
		r.cl = 1
		r.ts = baseTS + int64(i-i%rowsPerTx)
		for k := range r.cells {
			r.cells[k] = cell{cid: cids[k], colVersion: 1, dbVersion: version(i), seq: seqBase(i) + int64(k)}
		}
	}
	return out
}

type localClock struct {
	cid        string
	colVersion int64
	site       int64
}

// Apply merges the remote changes of rows into a fresh database with the
// same schema, triggers switched off by __patina_ctl.sync = 1; rows/s.
func Apply(open Opener, path string, rows []Row) Rate {
	const remoteSite = 1
	c := openDB(open, path)
	defer c.Close()
	setup(c, Schema, CaptureSchema)
	in := changes(rows)

	syncSet := mustPrepare(c, `UPDATE __patina_ctl SET sync = ? WHERE id = 0`)
	pkIns := mustPrepare(c, `INSERT INTO services__patina_pks(id) VALUES (?) ON CONFLICT DO NOTHING`)
	pkSel := mustPrepare(c, `SELECT key FROM services__patina_pks WHERE id = ?`)
	clkSel := mustPrepare(c, `SELECT cid, col_version, site FROM services__patina_clock WHERE key = ?`)
	rowUp := mustPrepare(c, `INSERT INTO services(id, name, port, weight, meta) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, port = excluded.port, weight = excluded.weight, meta = excluded.meta`)
	clkUp := mustPrepare(c, `INSERT INTO services__patina_clock(key, cid, col_version, db_version, site, seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key, cid) DO UPDATE SET col_version = excluded.col_version, db_version = excluded.db_version,
  site = excluded.site, seq = excluded.seq, ts = excluded.ts`)
	stmts := []Stmt{syncSet, pkIns, pkSel, clkSel, rowUp, clkUp}

	local := make([]localClock, 0, 8)
	var won [5]bool
	start := startTimer()
	for i := 0; i < len(in); i += applyRowsPerTx {
		mustExec(c, "BEGIN")
		syncSet.BindInt64(1, 1)
		check(syncSet.Exec())
		for j := i; j < min(i+applyRowsPerTx, len(in)); j++ {
			ch := &in[j]
			pkIns.BindText(1, ch.row.ID)
			check(pkIns.Exec())
			var key int64
			pkSel.BindText(1, ch.row.ID)
			if !pkSel.Step() {
				check(fmt.Errorf("pk %s: no key (%v)", ch.row.ID, pkSel.Reset()))
			}
			check(pkSel.Scan(&key))
			check(pkSel.Reset())

			local = local[:0]
			clkSel.BindInt64(1, key)
			for clkSel.Step() {
				var l localClock
				check(clkSel.Scan(&l.cid, &l.colVersion, &l.site))
				local = append(local, l)
			}
			check(clkSel.Reset())

			// Decide (DESIGN.md §1): causal length first, then col_version,
			// then value, then site. Every change is new here, so all win.
			localCL := int64(0)
			for _, l := range local {
				if l.cid == "-1" {
					localCL = l.colVersion
				}
			}
			if ch.cl < localCL {
				continue
			}
			resurrect := ch.cl > localCL
			all := true
			for k := 1; k < len(ch.cells); k++ {
				won[k] = resurrect || wins(ch.cells[k], local, remoteSite)
				all = all && won[k]
			}
			if !all {
				check(fmt.Errorf("apply %s: a partial merge is not exercised by this benchmark", ch.row.ID))
			}
			bindRow(rowUp, ch.row)
			check(rowUp.Exec())
			for k := range ch.cells {
				cl := &ch.cells[k]
				clkUp.BindInt64(1, key)
				clkUp.BindText(2, cl.cid)
				clkUp.BindInt64(3, cl.colVersion)
				clkUp.BindInt64(4, cl.dbVersion)
				clkUp.BindInt64(5, remoteSite)
				clkUp.BindInt64(6, cl.seq)
				clkUp.BindInt64(7, ch.ts)
				check(clkUp.Exec())
			}
		}
		syncSet.BindInt64(1, 0)
		check(syncSet.Exec())
		mustExec(c, "COMMIT")
	}
	rps := start.rate(len(in))
	for _, s := range stmts {
		check(s.Close())
	}
	verifyClocks(c, rows, remoteSite)
	return rps
}

// wins reports whether a remote cell beats the local clock of its column
// (same causal length). Value comparison on a col_version tie is left out:
// no tie happens in this workload.
func wins(r cell, local []localClock, site int64) bool {
	for _, l := range local {
		if l.cid == r.cid {
			if r.colVersion != l.colVersion {
				return r.colVersion > l.colVersion
			}
			return site > l.site
		}
	}
	return true
}

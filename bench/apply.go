package bench

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/sqlval"
	"github.com/patinadb/patina/sqlite"
)

// ApplyOptions configures the apply benchmark.
type ApplyOptions struct {
	Rows      int    // default 200,000
	Dir       string // where the databases go; default os.TempDir()
	PerTx     int    // rows per local transaction; default 100
	PerApply  int    // changesets per Apply call; default 10
	KeepFiles bool
}

// ApplyResult is the outcome; JSON keys per issue #5.
type ApplyResult struct {
	Rows              int     `json:"rows"`
	CellsPerRow       int     `json:"cells_per_row"`
	RawRowsPerS       float64 `json:"raw_rows_per_s"`
	RawCellsPerS      float64 `json:"raw_cells_per_s"`
	CaptureCellsPerS  float64 `json:"capture_cells_per_s"`
	ApplyCellsPerS    float64 `json:"apply_cells_per_s"`
	ApplyVsRaw        float64 `json:"apply_vs_raw"`
	CaptureVsRaw      float64 `json:"capture_vs_raw"`
	CaptureOverheadX  float64 `json:"capture_overhead_x"`
	ChangesetsApplied int     `json:"changesets_applied"`
}

const applySchema = `CREATE TABLE services (id TEXT NOT NULL PRIMARY KEY, name TEXT, port INTEGER, weight REAL, meta BLOB);`

// benchRow returns row i: a hash-like key, so inserts land in random key
// order as real service ids do.
func benchRow(i int) []patina.Value {
	h := fnv.New64a()
	fmt.Fprint(h, i)
	return []patina.Value{
		patina.Text(fmt.Sprintf("svc-%016x", h.Sum64())),
		patina.Text(fmt.Sprintf("service-%d", i%1000)),
		patina.Int(int64(8000 + i%1000)),
		patina.Real(float64(i%100) / 10),
		patina.Blob([]byte{byte(i), byte(i >> 8), byte(i >> 16), 1, 2, 3, 4, 5}),
	}
}

func multiInsert(n int) string {
	return "INSERT INTO services (id, name, port, weight, meta) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", n), ", ")
}

// Apply measures, on the same rows in one run: raw SQLite inserts without
// bookkeeping, local capture through the store (triggers + changeset
// extraction), and remote apply of the captured changesets into a fresh
// store (merge per cell, bookkeeping in the same transaction).
func Apply(o ApplyOptions) (ApplyResult, error) {
	if o.Rows <= 0 {
		o.Rows = 200_000
	}
	if o.PerTx <= 0 {
		o.PerTx = 100
	}
	if o.PerApply <= 0 {
		o.PerApply = 10
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	dir, err := os.MkdirTemp(o.Dir, "patina-bench-apply-")
	if err != nil {
		return ApplyResult{}, err
	}
	if !o.KeepFiles {
		defer os.RemoveAll(dir)
	}
	res := ApplyResult{Rows: o.Rows, CellsPerRow: 4}

	// Raw: the same multi-row INSERT on a plain connection, same pragmas.
	raw, err := sqlite3.Open(filepath.Join(dir, "raw.db"))
	if err != nil {
		return res, err
	}
	defer raw.Close()
	if err := raw.Exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; ` + applySchema); err != nil {
		return res, err
	}
	// Each transaction prepares its statement, as a request through the
	// API does: the comparison is the bookkeeping, not statement caching.
	start := time.Now()
	for base := 0; base < o.Rows; base += o.PerTx {
		stmt, _, err := raw.Prepare(multiInsert(o.PerTx))
		if err != nil {
			return res, err
		}
		if err := raw.Exec(`BEGIN`); err != nil {
			return res, err
		}
		p := 1
		for i := base; i < base+o.PerTx; i++ {
			for _, v := range benchRow(i) {
				sqlval.Bind(stmt, p, v)
				p++
			}
		}
		if err := stmt.Exec(); err != nil {
			return res, err
		}
		stmt.Close()
		if err := raw.Exec(`COMMIT`); err != nil {
			return res, err
		}
	}
	rawSecs := time.Since(start).Seconds()
	res.RawRowsPerS = float64(o.Rows) / rawSecs
	res.RawCellsPerS = res.RawRowsPerS * 4

	// Capture: the same statements through the store.
	origin, err := openBenchStore(filepath.Join(dir, "origin.db"))
	if err != nil {
		return res, err
	}
	defer origin.Close()
	ctx := context.Background()
	var css []patina.Changeset
	start = time.Now()
	for base := 0; base < o.Rows; base += o.PerTx {
		params := make([]patina.Value, 0, 5*o.PerTx)
		for i := base; i < base+o.PerTx; i++ {
			params = append(params, benchRow(i)...)
		}
		tx, err := origin.Transact(ctx, []patina.Statement{{SQL: multiInsert(o.PerTx), Params: params}})
		if err != nil {
			return res, err
		}
		css = append(css, *tx.Changeset)
	}
	res.CaptureCellsPerS = float64(o.Rows*4) / time.Since(start).Seconds()

	// Apply: the captured changesets into a fresh store.
	replica, err := openBenchStore(filepath.Join(dir, "replica.db"))
	if err != nil {
		return res, err
	}
	defer replica.Close()
	start = time.Now()
	for i := 0; i < len(css); i += o.PerApply {
		batch := css[i:min(i+o.PerApply, len(css))]
		ar, err := replica.Apply(ctx, batch)
		if err != nil {
			return res, err
		}
		for j, e := range ar.Errors {
			if e != nil {
				return res, fmt.Errorf("changeset %d rejected: %w", i+j, e)
			}
		}
	}
	res.ApplyCellsPerS = float64(o.Rows*4) / time.Since(start).Seconds()
	res.ChangesetsApplied = len(css)
	res.ApplyVsRaw = res.ApplyCellsPerS / res.RawCellsPerS
	res.CaptureVsRaw = res.CaptureCellsPerS / res.RawCellsPerS
	res.CaptureOverheadX = res.RawCellsPerS / res.CaptureCellsPerS
	return res, nil
}

func openBenchStore(path string) (*sqlite.DB, error) {
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		return nil, err
	}
	if err := db.ApplySchema([]sqlite.SchemaFile{{Name: "bench.sql", SQL: applySchema}}); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

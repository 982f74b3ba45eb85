// Package harness runs patina's write-capture, remote-apply and point-read
// workloads against any SQLite driver that implements Conn.
//
// The driver adapters live in cmd/<driver> (mattn and ncruces/driver both
// register "sqlite3" in database/sql and panic when linked together, so each
// driver gets its own binary). The database/sql adapter is in sqldb.go and
// imports no driver.
package harness

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Conn is one SQLite connection.
type Conn interface {
	// Exec runs one SQL statement without parameters.
	Exec(sql string) error
	// Prepare compiles one statement; it is reused until Close.
	Prepare(sql string) (Stmt, error)
	Close() error
}

// Stmt is a prepared statement. Parameters are 1-based, as in SQLite.
// Bind errors are reported by the next Exec/Step/Reset.
type Stmt interface {
	BindInt64(i int, v int64)
	BindText(i int, v string)
	BindFloat(i int, v float64)
	BindBlob(i int, v []byte)
	// Exec runs the statement to completion and resets it.
	Exec() error
	// Step advances a query; false at the end or on error.
	Step() bool
	// Scan reads the current row into *string, *int64, *float64 or *[]byte.
	Scan(dest ...any) error
	// Reset ends a query and returns any error from Step.
	Reset() error
	Close() error
}

// Opener opens a connection to a database file.
type Opener func(path string) (Conn, error)

// Options of one benchmark process.
type Options struct {
	Driver  string // label printed in the results
	Dir     string // parent directory for the databases (/dev/shm, /tmp)
	Rows    int
	Runs    int
	Only    string // comma-separated workloads (raw,capture,apply), "" for all
	Variant string // capture variant (see CaptureVariant), "" for patina's
	CacheKB int    // PRAGMA cache_size = -CacheKB when > 0; SQLite's default (2 MB) otherwise
}

// Flags parses the common command line.
func Flags(driver string) Options {
	o := Options{Driver: driver}
	flag.StringVar(&o.Dir, "dir", os.TempDir(), "directory for the database files")
	flag.IntVar(&o.Rows, "rows", 100_000, "rows per workload")
	flag.IntVar(&o.Runs, "runs", 1, "repetitions of each workload")
	flag.StringVar(&o.Only, "only", "", "comma-separated subset of raw,capture,apply (read runs with raw)")
	flag.StringVar(&o.Variant, "variant", "", "capture variant: noindex | onestmt | onestmt-noindex (not patina's design)")
	flag.IntVar(&o.CacheKB, "cache-kb", 0, "PRAGMA cache_size in KiB (0: SQLite's default, 2000 KiB)")
	flag.Parse()
	cacheKB = o.CacheKB
	return o
}

// Label is the driver name printed in the results.
func (o Options) Label() string {
	l := o.Driver
	if o.Variant != "" {
		l += " [" + o.Variant + "]"
	}
	if o.CacheKB > 0 {
		l += fmt.Sprintf(" [cache %d KiB]", o.CacheKB)
	}
	return l
}

// Row is one row of the services table.
type Row struct {
	ID     string
	Name   string
	Port   int64
	Weight float64
	Meta   []byte
}

// Data generates n rows with distinct hash-like ids in random key order.
func Data(n int) []Row {
	r := rand.New(rand.NewPCG(42, 1))
	seen := make(map[string]bool, n)
	rows := make([]Row, 0, n)
	for len(rows) < n {
		id := fmt.Sprintf("svc-%016x", r.Uint64())
		if seen[id] {
			continue
		}
		seen[id] = true
		meta := make([]byte, 32)
		for i := range meta {
			meta[i] = byte(r.Uint32())
		}
		rows = append(rows, Row{
			ID:     id,
			Name:   fmt.Sprintf("service-%d.%s", len(rows), "eu-west"),
			Port:   1024 + int64(r.IntN(60000)),
			Weight: r.Float64(),
			Meta:   meta,
		})
	}
	return rows
}

// Main runs the selected workloads o.Runs times and prints one line per
// figure: RESULT <driver> <dir> <metric> <value>.
func Main(o Options, open Opener) {
	rows := Data(o.Rows)
	for run := 0; run < o.Runs; run++ {
		dir, err := os.MkdirTemp(o.Dir, "patina-drv-")
		check(err)
		do := func(name string) bool { return o.Only == "" || slices.Contains(strings.Split(o.Only, ","), name) }
		if do("raw") {
			report(o, "raw_rows_s", Raw(open, filepath.Join(dir, "raw.db"), rows))
			report(o, "read_s", Read(open, filepath.Join(dir, "raw.db"), rows))
		}
		if do("capture") {
			report(o, "capture_rows_s", Capture(open, filepath.Join(dir, "capture.db"), rows, o.Variant))
		}
		if do("apply") {
			report(o, "apply_rows_s", Apply(open, filepath.Join(dir, "apply.db"), rows))
		}
		check(os.RemoveAll(dir))
	}
}

// Rate is a throughput measured two ways: per wall-clock second (the
// figure) and per CPU second of the whole process (user+sys, GC included),
// which other load on a shared VM disturbs much less.
type Rate struct{ Wall, CPU float64 }

func report(o Options, metric string, r Rate) {
	fmt.Printf("RESULT\t%s\t%s\t%s\t%.0f\n", o.Label(), o.Dir, metric, r.Wall)
	fmt.Printf("RESULT\t%s\t%s\t%s_cpu\t%.0f\n", o.Label(), o.Dir, metric, r.CPU)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func mustPrepare(c Conn, sql string) Stmt {
	s, err := c.Prepare(sql)
	if err != nil {
		check(fmt.Errorf("prepare %q: %w", sql, err))
	}
	return s
}

func mustExec(c Conn, sql string) {
	if err := c.Exec(sql); err != nil {
		check(fmt.Errorf("exec %q: %w", sql, err))
	}
}

var cacheKB int

func openDB(open Opener, path string) Conn {
	c, err := open(path)
	check(err)
	mustExec(c, "PRAGMA journal_mode=WAL")
	mustExec(c, "PRAGMA synchronous=NORMAL")
	if cacheKB > 0 {
		mustExec(c, fmt.Sprintf("PRAGMA cache_size=-%d", cacheKB))
	}
	return c
}

func count(c Conn, sql string) int64 {
	s := mustPrepare(c, sql)
	defer s.Close()
	var n int64
	if !s.Step() {
		check(fmt.Errorf("%s: no row: %v", sql, s.Reset()))
	}
	check(s.Scan(&n))
	check(s.Reset())
	return n
}

func expect(c Conn, sql string, want int64) {
	if got := count(c, sql); got != want {
		check(fmt.Errorf("%s = %d, want %d", sql, got, want))
	}
}

type timer struct {
	wall time.Time
	cpu  time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startTimer() timer { return timer{time.Now(), cpuTime()} }

// rate of n operations since the timer started.
func (t timer) rate(n int) Rate {
	return Rate{
		Wall: float64(n) / time.Since(t.wall).Seconds(),
		CPU:  float64(n) / (cpuTime() - t.cpu).Seconds(),
	}
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patinadb/patina/bench"
)

// benchTB lets the in-process cluster harness run outside `go test`.
type benchTB struct {
	dir      string
	cleanups []func()
	failed   error
}

func (b *benchTB) Helper()                    {}
func (b *benchTB) Logf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (b *benchTB) TempDir() string {
	d, err := os.MkdirTemp(b.dir, "node")
	if err != nil {
		panic(err)
	}
	return d
}
func (b *benchTB) Cleanup(f func())          { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) Fatal(args ...any)         { panic(benchFailure{fmt.Sprint(args...)}) }
func (b *benchTB) Fatalf(f string, a ...any) { panic(benchFailure{fmt.Sprintf(f, a...)}) }

type benchFailure struct{ msg string }

// simDir is where simulated clusters keep their nodes' files: tmpfs when
// the machine has it. Fifty nodes' databases on one shared disk would
// measure that disk's fsync queue, not the protocol; each real node has its
// own disk.
func simDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

// run calls f, turning Fatal into an error and running cleanups.
func (b *benchTB) run(f func() error) (err error) {
	dir, err := os.MkdirTemp(simDir(), "patina-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	defer os.RemoveAll(dir)
	defer func() {
		for i := len(b.cleanups) - 1; i >= 0; i-- {
			b.cleanups[i]()
		}
		if r := recover(); r != nil {
			bf, ok := r.(benchFailure)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", bf.msg)
		}
	}()
	return f()
}

func runBench(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("name a benchmark: propagation, apply, storm or catchup (see BENCHMARKS.md)")
	}
	name, args := args[0], args[1:]
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	outPath := fs.String("out", "", "also write the result as JSON to this file")
	var result any
	var table [][2]string
	switch name {
	case "propagation":
		nodes := fs.Int("nodes", 50, "agents on the simulated network")
		writes := fs.Int("writes", 200, "writes at random origins")
		seed := fs.Int64("seed", 1, "seed for network and origins")
		regions := fs.String("regions", "", "comma-separated regions assigned round-robin (default: all 17 of the matrix)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		var regionList []string
		if *regions != "" {
			regionList = strings.Split(*regions, ",")
		}
		var res bench.PropagationResult
		tb := &benchTB{}
		err := tb.run(func() (err error) {
			res, err = bench.Propagation(tb, bench.PropagationOptions{Nodes: *nodes, Writes: *writes, Seed: *seed, Regions: regionList})
			return err
		})
		if err != nil {
			return err
		}
		result = res
		table = [][2]string{
			{"nodes / regions / writes", fmt.Sprintf("%d / %d / %d", res.Nodes, res.Regions, res.Writes)},
			{"commit → visible everywhere p50", fmt.Sprintf("%.1f ms", res.P50Ms)},
			{"commit → visible everywhere p99", fmt.Sprintf("%.1f ms", res.P99Ms)},
			{"physical floor p50 / p99", fmt.Sprintf("%.1f / %.1f ms", res.FloorP50Ms, res.FloorP99Ms)},
			{"latency ÷ floor p50 / p99", fmt.Sprintf("%.2f / %.2f", res.RatioP50, res.RatioP99)},
			{"messages / bytes per write", fmt.Sprintf("%.0f / %.0f", res.MsgsPerWrite, res.BytesPerWrite)},
		}
	case "apply":
		rows := fs.Int("rows", 200000, "rows inserted (4 cells each)")
		dir := fs.String("dir", "", "directory for the databases (default $TMPDIR); /dev/shm measures CPU, a disk measures I/O")
		if err := fs.Parse(args); err != nil {
			return err
		}
		res, err := bench.Apply(bench.ApplyOptions{Rows: *rows, Dir: *dir})
		if err != nil {
			return err
		}
		result = res
		table = [][2]string{
			{"rows (cells)", fmt.Sprintf("%d (%d)", res.Rows, res.Rows*res.CellsPerRow)},
			{"raw SQLite insert", fmt.Sprintf("%.0f rows/s = %.0f cells/s", res.RawRowsPerS, res.RawCellsPerS)},
			{"local capture", fmt.Sprintf("%.0f cells/s (%.2f of raw, overhead %.1fx)", res.CaptureCellsPerS, res.CaptureVsRaw, res.CaptureOverheadX)},
			{"remote apply", fmt.Sprintf("%.0f cells/s (%.2f of raw)", res.ApplyCellsPerS, res.ApplyVsRaw)},
		}
	case "storm":
		nodes := fs.Int("nodes", 20, "agents on the simulated network")
		updates := fs.Int("updates", 1000000, "updates in the replayed backlog")
		cells := fs.Int("cells", 10000, "distinct cells the backlog rewrites")
		capBytes := fs.Int("cap", 1<<20, "per-node outbound broadcast cap, bytes/s")
		if err := fs.Parse(args); err != nil {
			return err
		}
		var res bench.StormResult
		tb := &benchTB{}
		err := tb.run(func() (err error) {
			res, err = bench.Storm(tb, bench.StormOptions{Nodes: *nodes, Updates: *updates, Cells: *cells, CapBytes: *capBytes})
			return err
		})
		if err != nil {
			return err
		}
		result = res
		table = [][2]string{
			{"nodes / updates / distinct cells", fmt.Sprintf("%d / %d / %d", res.Nodes, res.Updates, res.DistinctCells)},
			{"storm cells reaching each node", fmt.Sprintf("%.0f (%.2fx distinct; broadcast %.0f, sync %.0f)", res.CellsSent, res.CellsSent/float64(res.DistinctCells), res.CellsViaBroadcast, res.CellsViaSync)},
			{"bytes on the network", fmt.Sprintf("%d", res.BytesSent)},
			{"max node egress / cap", fmt.Sprintf("%.0f / %d bytes/s", res.MaxNodeBytesPerS, res.CapBytesPerS)},
			{"unrelated writes p50 / p99", fmt.Sprintf("%.0f / %.0f ms (%d writes)", res.UnrelatedP50Ms, res.UnrelatedP99Ms, res.UnrelatedWrites)},
			{"replay / converge", fmt.Sprintf("%.1f s / %.1f s", res.ReplaySeconds, res.ConvergeSeconds)},
			{"peak heap (all nodes, one process)", fmt.Sprintf("%.0f MB", res.PeakHeapMB)},
		}
	case "catchup":
		changes := fs.Int("changes", 100000, "cells written while the node is offline")
		if err := fs.Parse(args); err != nil {
			return err
		}
		var res bench.CatchupResult
		tb := &benchTB{}
		err := tb.run(func() (err error) {
			res, err = bench.Catchup(tb, bench.CatchupOptions{Changes: *changes})
			return err
		})
		if err != nil {
			return err
		}
		result = res
		table = [][2]string{
			{"changes / versions missed", fmt.Sprintf("%d / %d", res.ChangesMissed, res.VersionsMissed)},
			{"catch-up time", fmt.Sprintf("%.2f s", res.Seconds)},
			{"bytes transferred / missing", fmt.Sprintf("%d / %d (%.2fx)", res.BytesTransferred, res.BytesMissing, res.Ratio)},
		}
	default:
		return fmt.Errorf("unknown benchmark %q; known: propagation, apply, storm, catchup", name)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "patina bench %s\t(%s)\n", name, time.Now().UTC().Format(time.RFC3339))
	for _, row := range table {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
	}
	tw.Flush()
	if *outPath != "" {
		b, _ := json.MarshalIndent(result, "", "  ")
		if err := os.WriteFile(*outPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *outPath, err)
		}
	}
	return nil
}

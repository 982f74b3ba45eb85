package bench

import "testing"

// TestStorm_Small replays a small backlog and checks that superseded cells
// mostly do not travel (far fewer cells than updates reach each node) and
// unrelated writes keep flowing. The full-size figures, against the
// 2x-distinct-cells target, are in BENCHMARKS.md.
func TestStorm_Small(t *testing.T) {
	res, err := Storm(t, StormOptions{Nodes: 6, Updates: 20000, Cells: 500, PerTx: 250, CapBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.CellsSent > float64(res.Updates)/3 {
		t.Fatalf("%.0f storm cells reached each node for %d updates to %d cells; want under a third of the updates", res.CellsSent, res.Updates, res.DistinctCells)
	}
	// Every unrelated write reached every node (Storm waits for it); their
	// p99 against the 2 s target is a benchmark figure, not a test bound.
	if res.UnrelatedWrites == 0 {
		t.Fatal("no unrelated writes were measured during the storm")
	}
}

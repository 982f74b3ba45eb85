package bench

import "testing"

// TestApply_Small runs the apply benchmark on few rows and checks the
// replica ends with every row (the figures themselves are in BENCHMARKS.md).
func TestApply_Small(t *testing.T) {
	res, err := Apply(ApplyOptions{Rows: 2000, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.ChangesetsApplied != 20 || res.RawRowsPerS <= 0 || res.ApplyCellsPerS <= 0 || res.CaptureCellsPerS <= 0 {
		t.Fatalf("implausible result %+v", res)
	}
}

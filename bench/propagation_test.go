package bench

import "testing"

// TestPropagation_SmallCluster runs the propagation benchmark at a size that
// fits the test budget and checks its result is sane (every write reached
// every node, latency is never below the physical floor). The 50-node figure
// is `patina bench propagation`; see BENCHMARKS.md.
func TestPropagation_SmallCluster(t *testing.T) {
	res, err := Propagation(t, PropagationOptions{Nodes: 12, Writes: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.P50Ms < res.FloorP50Ms*0.95 || res.RatioP50 < 0.95 {
		t.Fatalf("latency below the physical floor: %+v", res)
	}
	if res.MsgsPerWrite <= 0 || res.BytesPerWrite <= 0 {
		t.Fatalf("no traffic counted: %+v", res)
	}
}

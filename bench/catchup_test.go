package bench

import "testing"

// TestCatchup_Small checks the catch-up benchmark end to end on few changes:
// the node converges and the bytes sent stay within 1.5x of what it lacked.
func TestCatchup_Small(t *testing.T) {
	res, err := Catchup(t, CatchupOptions{Changes: 8000})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.BytesMissing <= 0 || res.Ratio > 1.5 {
		t.Fatalf("catch-up sent %d bytes for %d missing (%.2fx); want ≤ 1.5x", res.BytesTransferred, res.BytesMissing, res.Ratio)
	}
}

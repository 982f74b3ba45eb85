package antientropy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/patinadb/patina"
)

func TestBackoff_Next(t *testing.T) {
	t.Run("doubles to max and resets when behind", func(t *testing.T) {
		b := &Backoff{Min: 100 * time.Millisecond, Max: time.Second}
		r := &seqRand{} // jitter draw 0 => factor 0.7
		mid := &midRand{}
		var got []time.Duration
		for _, behind := range []bool{false, false, false, false, false, false, true, false} {
			got = append(got, b.Next(behind, mid))
		}
		want := []time.Duration{100, 200, 400, 800, 1000, 1000, 100, 200}
		for i := range want {
			if got[i] != want[i]*time.Millisecond {
				t.Fatalf("step %d: got %v, want %v (all %v)", i, got[i], want[i]*time.Millisecond, got)
			}
		}
		b.Reset()
		if d := b.Next(false, r); d != 100*time.Millisecond {
			t.Fatalf("after Reset with low jitter: got %v, want clamp to Min", d)
		}
		if d := b.Next(false, r); d != 140*time.Millisecond {
			t.Fatalf("second step with low jitter: got %v, want 200ms*0.7", d)
		}
	})
	t.Run("zero value uses defaults", func(t *testing.T) {
		var b Backoff
		if d := b.Next(true, &midRand{}); d != DefaultMinBackoff {
			t.Fatalf("got %v, want %v", d, DefaultMinBackoff)
		}
		for range 20 {
			b.Next(false, &midRand{})
		}
		if d := b.Next(false, &midRand{}); d != DefaultMaxBackoff {
			t.Fatalf("got %v, want %v", d, DefaultMaxBackoff)
		}
	})
	t.Run("max below min", func(t *testing.T) {
		b := Backoff{Min: time.Second, Max: time.Millisecond}
		for range 5 {
			if d := b.Next(false, &midRand{}); d != time.Second {
				t.Fatalf("got %v, want 1s", d)
			}
		}
	})
	t.Run("bounds and jitter", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		b := NewBackoff()
		seen := map[time.Duration]bool{}
		for i := range 2000 {
			d := b.Next(i%50 == 0, r)
			if d < b.Min || d > b.Max {
				t.Fatalf("delay %v outside [%v, %v]", d, b.Min, b.Max)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Fatalf("only %d distinct delays: jitter missing", len(seen))
		}
	})
	t.Run("jitter within 30 percent", func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for range 1000 {
			b := Backoff{Min: time.Second, Max: 10 * time.Second}
			b.Next(false, r)
			d := b.Next(false, r) // step 2s
			if d < 1400*time.Millisecond || d > 2600*time.Millisecond {
				t.Fatalf("delay %v outside 2s±30%%", d)
			}
		}
	})
}

// midRand returns the middle of every range: no jitter.
type midRand struct{}

func (midRand) Int64N(n int64) int64 { return n / 2 }

var _ Rand = (*rand.Rand)(nil)

func TestBehind(t *testing.T) {
	tests := []struct {
		name    string
		local   string
		remotes []string
		want    bool
	}{
		{"in sync", "actor=a heads=a:3,b:4", []string{"actor=b heads=b:4"}, false},
		{"no peers", "actor=a heads=b:4", nil, false},
		{"gap", "actor=a heads=b:4 gaps=b:2", nil, true},
		{"partial", "actor=a heads=b:4 partials=b:4@0/2", nil, true},
		{"own gap ignored", "actor=a heads=a:4 gaps=a:2", nil, false},
		{"peer ahead", "actor=a heads=b:4", []string{"actor=c heads=c:1", "actor=b heads=b:5"}, true},
		{"peer ahead on our own actor", "actor=a heads=a:4", []string{"actor=b heads=a:5"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []patina.SyncState
			for _, r := range tt.remotes {
				rs = append(rs, MustState(t, r))
			}
			if got := Behind(MustState(t, tt.local), rs...); got != tt.want {
				t.Errorf("Behind = %v, want %v", got, tt.want)
			}
		})
	}
}

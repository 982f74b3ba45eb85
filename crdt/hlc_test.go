package crdt

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"pgregory.net/rapid"
)

// fakeNow is a settable wall clock.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time          { return f.t }
func (f *fakeNow) advance(d time.Duration) { f.t = f.t.Add(d) }

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ts(ms int64, counter uint16) patina.Timestamp {
	return patina.Timestamp(uint64(ms)<<16 | uint64(counter))
}

func TestNewClock(t *testing.T) {
	f := &fakeNow{t: epoch}
	c := NewClock(f.now)
	if c.MaxDrift != DefaultMaxDrift {
		t.Fatalf("MaxDrift = %v, want %v", c.MaxDrift, DefaultMaxDrift)
	}
	if c.Last() != 0 {
		t.Fatalf("Last of a new clock = %v, want 0", c.Last())
	}
}

func TestClock_Next(t *testing.T) {
	f := &fakeNow{t: epoch}
	c := NewClock(f.now)
	ms := epoch.UnixMilli()
	steps := []struct {
		name    string
		advance time.Duration
		want    patina.Timestamp
	}{
		{"follows the wall clock", 0, ts(ms, 0)},
		{"same millisecond counts", 0, ts(ms, 1)},
		{"sub-millisecond step counts", 500 * time.Microsecond, ts(ms, 2)},
		{"next millisecond resets the counter", 500 * time.Microsecond, ts(ms+1, 0)},
		{"wall clock backwards keeps counting", -time.Hour, ts(ms+1, 1)},
		{"still behind", time.Minute, ts(ms+1, 2)},
		{"catching up follows the wall again", time.Hour, ts(ms+1+60*1000, 0)},
	}
	for _, s := range steps {
		f.advance(s.advance)
		if got := c.Next(); got != s.want {
			t.Fatalf("%s: Next = %d (ms %d, counter %d), want %d (ms %d, counter %d)",
				s.name, got, got.Millis(), got&0xffff, s.want, s.want.Millis(), s.want&0xffff)
		}
		if c.Last() != s.want {
			t.Fatalf("%s: Last = %d, want %d", s.name, c.Last(), s.want)
		}
	}
}

func TestClock_CounterOverflow(t *testing.T) {
	f := &fakeNow{t: epoch}
	c := NewClock(f.now)
	ms := epoch.UnixMilli()
	prev := c.Next()
	for i := 1; i <= 0xffff; i++ {
		next := c.Next()
		if next <= prev {
			t.Fatalf("Next %d = %d, not above %d", i, next, prev)
		}
		prev = next
	}
	if want := ts(ms, 0xffff); prev != want {
		t.Fatalf("after 65535 ticks in one ms: %d, want %d", prev, want)
	}
	// The counter is full: the next reading carries into the milliseconds,
	// running ahead of the wall clock.
	if got, want := c.Next(), ts(ms+1, 0); got != want {
		t.Fatalf("overflow: Next = ms %d counter %d, want ms %d counter 0", got.Millis(), got&0xffff, ms+1)
	}
	// The wall clock reaching the carried millisecond does not go back.
	f.advance(time.Millisecond)
	if got, want := c.Next(), ts(ms+1, 1); got != want {
		t.Fatalf("after wall reaches carry: Next = %d, want %d", got, want)
	}
	f.advance(time.Millisecond)
	if got, want := c.Next(), ts(ms+2, 0); got != want {
		t.Fatalf("after wall passes carry: Next = %d, want %d", got, want)
	}
}

func TestClock_Update(t *testing.T) {
	ms := epoch.UnixMilli()
	tests := []struct {
		name     string
		maxDrift time.Duration
		remote   patina.Timestamp
		wantErr  bool
	}{
		{"past", 0, ts(ms-10_000, 7), false},
		{"now", 0, ts(ms, 3), false},
		{"ahead within default drift", 0, ts(ms+299, 0xffff), false},
		{"exactly the default drift", 0, ts(ms+300, 0), false},
		{"beyond the default drift", 0, ts(ms+301, 0), true},
		{"far future", 0, ts(ms+24*3600*1000, 0), true},
		{"maximum timestamp", 0, ^patina.Timestamp(0), true},
		{"custom drift allows more", time.Second, ts(ms+999, 0), false},
		{"custom drift refuses", time.Second, ts(ms+1001, 0), true},
		{"negative drift means default", -time.Second, ts(ms+301, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeNow{t: epoch}
			c := &Clock{Now: f.now, MaxDrift: tt.maxDrift} // zero MaxDrift: default
			before := c.Next()
			err := c.Update(tt.remote)
			if tt.wantErr {
				var de *DriftError
				if !errors.As(err, &de) {
					t.Fatalf("Update(%d) = %v, want a *DriftError", tt.remote, err)
				}
				if c.Last() != before {
					t.Fatalf("refused Update changed the clock: Last = %d, was %d", c.Last(), before)
				}
				msg := err.Error()
				for _, want := range []string{ToTime(tt.remote).Format(time.RFC3339Nano), epoch.Format(time.RFC3339Nano), de.Drift.String(), "max drift"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not mention %q", msg, want)
					}
				}
				if de.Drift <= de.MaxDrift || de.MaxDrift <= 0 {
					t.Errorf("DriftError drift %v, max %v", de.Drift, de.MaxDrift)
				}
				return
			}
			if err != nil {
				t.Fatalf("Update(%d) = %v, want nil", tt.remote, err)
			}
			if next := c.Next(); next <= tt.remote || next <= before {
				t.Fatalf("Next after Update(%d) = %d, want above it and above %d", tt.remote, next, before)
			}
		})
	}
}

func TestFromTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want patina.Timestamp
	}{
		{"epoch", time.Unix(0, 0), 0},
		{"before epoch", time.Unix(-5, 0), 0},
		{"millisecond", time.UnixMilli(1234), ts(1234, 0)},
		{"drops sub-millisecond", time.UnixMilli(1234).Add(999 * time.Microsecond), ts(1234, 0)},
		{"date", epoch, ts(epoch.UnixMilli(), 0)},
		{"48-bit limit", time.UnixMilli(maxMillis), ts(maxMillis, 0)},
		{"saturates past 48 bits", time.UnixMilli(maxMillis + 1000), ts(maxMillis, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromTime(tt.in)
			if got != tt.want {
				t.Fatalf("FromTime(%v) = %d, want %d", tt.in, got, tt.want)
			}
			if got.Millis() != tt.want.Millis() {
				t.Fatalf("Millis = %d", got.Millis())
			}
		})
	}
}

func TestToTime(t *testing.T) {
	got := ToTime(ts(epoch.UnixMilli(), 42))
	if !got.Equal(epoch) || got.Location() != time.UTC {
		t.Fatalf("ToTime = %v, want %v in UTC", got, epoch)
	}
	in := epoch.Add(123*time.Millisecond + 456*time.Microsecond)
	if got, want := ToTime(FromTime(in)), in.Truncate(time.Millisecond); !got.Equal(want) {
		t.Fatalf("round trip = %v, want %v", got, want)
	}
}

func TestClock_Concurrent(t *testing.T) {
	var mu sync.Mutex
	f := &fakeNow{t: epoch}
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		f.advance(time.Microsecond * 300)
		return f.t
	}
	c := NewClock(now)
	const workers, per = 8, 500
	results := make([][]patina.Timestamp, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if i%50 == 0 {
					_ = c.Update(c.Last() + 3)
				}
				results[w] = append(results[w], c.Next())
			}
		}()
	}
	wg.Wait()
	seen := map[patina.Timestamp]bool{}
	for _, rs := range results {
		for i, r := range rs {
			if seen[r] {
				t.Fatalf("timestamp %d handed out twice", r)
			}
			seen[r] = true
			if i > 0 && r <= rs[i-1] {
				t.Fatalf("one caller saw %d after %d", r, rs[i-1])
			}
		}
	}
}

// TestClock_Properties drives a clock with a wall clock that jumps both ways
// and remote timestamps around it: Next always increases and exceeds every
// accepted remote; refused remotes change nothing.
func TestClock_Properties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := &fakeNow{t: epoch}
		c := NewClock(f.now)
		var last patina.Timestamp
		for range rapid.IntRange(1, 100).Draw(t, "steps") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				f.advance(time.Duration(rapid.Int64Range(-2000, 2000).Draw(t, "advanceMicros")) * time.Microsecond)
			case 1, 2:
				next := c.Next()
				if next <= last {
					t.Fatalf("Next = %d, not above %d", next, last)
				}
				last = next
			case 3:
				offset := time.Duration(rapid.Int64Range(-1000, 1000).Draw(t, "offsetMillis")) * time.Millisecond
				base := FromTime(f.t.Add(offset))
				if base == 0 {
					continue
				}
				remote := base | patina.Timestamp(rapid.Uint16().Draw(t, "counter"))
				before := c.Last()
				if err := c.Update(remote); err != nil {
					if offset <= DefaultMaxDrift {
						t.Fatalf("Update %v ahead refused: %v", offset, err)
					}
					if c.Last() != before {
						t.Fatalf("refused Update moved Last from %d to %d", before, c.Last())
					}
					continue
				}
				if offset > DefaultMaxDrift+time.Millisecond {
					t.Fatalf("Update %v ahead accepted", offset)
				}
				if remote > last {
					last = remote
				}
			}
			if c.Last() != last {
				t.Fatalf("Last = %d, want %d", c.Last(), last)
			}
		}
	})
}

package netsim

import (
	"slices"
	"testing"
	"time"
)

// TestScheduler_Order checks that events run in (time, submission) order,
// never early, and logs how late the Go timer makes them.
func TestScheduler_Order(t *testing.T) {
	s := newScheduler()
	defer s.close()
	const count = 200
	type ran struct {
		id   int
		late time.Duration
	}
	got := make(chan ran, count)
	base := s.now() + 100*time.Millisecond // all pushed before any is due
	for i := range count {
		at := base + time.Duration(count-i/2*2)*100*time.Microsecond // pairs share a time, in reverse
		s.at(at, func() { got <- ran{i, s.now() - at} })
	}
	var order []int
	var late []time.Duration
	for range count {
		r := <-got
		if r.late < 0 {
			t.Fatalf("event %d ran %v early", r.id, -r.late)
		}
		order = append(order, r.id)
		late = append(late, r.late)
	}
	for k := 0; k < count; k += 2 {
		if want := []int{count - 2 - k, count - 1 - k}; !slices.Equal(order[k:k+2], want) {
			t.Fatalf("order[%d:%d] = %v, want %v", k, k+2, order[k:k+2], want)
		}
	}
	slices.Sort(late)
	t.Logf("lateness p50 %v p99 %v max %v", late[count/2], late[count*99/100], late[count-1])
	if ran, pending := s.stats(); ran != count || pending != 0 {
		t.Fatalf("stats = %d ran, %d pending", ran, pending)
	}
}

package wan

import (
	"sync"
	"time"
)

// chunk is one read (TCP) or datagram (UDP) and when it was read; eof marks
// the end of a TCP direction.
type chunk struct {
	b   []byte
	at  time.Time
	eof bool
}

// timedQueue delivers chunks in order, each at max(read time, notBefore) +
// delay. The delay is set once, when the sender's region is known; chunks
// read before that wait. Because the delay is constant per queue, FIFO order
// is due-time order and any number of chunks can be in flight.
type timedQueue struct {
	ch    chan chunk
	ready chan struct{} // closed by setDelay
	once  sync.Once

	delay     time.Duration
	notBefore time.Time
	stats     *Stats
}

func newTimedQueue(capacity int, stats *Stats) *timedQueue {
	return &timedQueue{ch: make(chan chunk, capacity), ready: make(chan struct{}), stats: stats}
}

// setDelay fixes the delay and the earliest send time; only the first call counts.
func (q *timedQueue) setDelay(d time.Duration, notBefore time.Time) {
	q.once.Do(func() {
		q.delay, q.notBefore = d, notBefore
		close(q.ready)
	})
}

// run delivers chunks until done is closed or deliver fails; eof chunks are
// passed to deliver too (with nil b).
func (q *timedQueue) run(done <-chan struct{}, deliver func(chunk) error) {
	select {
	case <-q.ready:
	case <-done:
		return
	}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var c chunk
		select {
		case c = <-q.ch:
		case <-done:
			return
		}
		at := c.at
		if at.Before(q.notBefore) {
			at = q.notBefore
		}
		due := at.Add(q.delay)
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
		if q.stats != nil && !c.eof {
			q.stats.observeLate(time.Since(due))
		}
		if err := deliver(c); err != nil || c.eof {
			return
		}
	}
}

package netsim

import (
	"sync"
	"time"
)

// event is one timed action of the network: a packet or stream chunk arriving,
// a FIN, a handshake step, a flow-control window update.
type event struct {
	at  time.Duration // since scheduler.start
	seq uint64        // FIFO among events due at the same instant
	fn  func()
}

func (e *event) before(o *event) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

// scheduler runs every event of a Network on one goroutine, in (time,
// submission) order, so a stream's chunks (scheduled with non-decreasing
// times) arrive in order and the cost of a packet is a heap push, not a
// goroutine or a runtime timer. Event functions run on the scheduler
// goroutine: they must not block, only take leaf locks and notify.
type scheduler struct {
	start time.Time

	mu     sync.Mutex
	heap   []event // min-heap on (at, seq)
	seq    uint64
	ran    uint64
	closed bool

	wake   chan struct{} // cap 1: an earlier event was pushed
	done   chan struct{} // closed by close
	exited chan struct{} // closed when run returns
}

func newScheduler() *scheduler {
	s := &scheduler{
		start:  time.Now(),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go s.run()
	return s
}

// now is the monotonic time since the scheduler started.
func (s *scheduler) now() time.Duration { return time.Since(s.start) }

// at schedules fn at time t (since start). After close it does nothing.
func (s *scheduler) at(t time.Duration, fn func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.seq++
	s.heap = append(s.heap, event{at: t, seq: s.seq, fn: fn})
	s.up(len(s.heap) - 1)
	first := s.heap[0].seq == s.seq
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// close stops the scheduler, drops pending events and waits for the
// goroutine to exit.
func (s *scheduler) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.heap = nil
		close(s.done)
	}
	s.mu.Unlock()
	<-s.exited
}

// stats returns the number of events run and pending.
func (s *scheduler) stats() (ran uint64, pending int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ran, len(s.heap)
}

func (s *scheduler) run() {
	defer close(s.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []func()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		now := s.now()
		for len(s.heap) > 0 && s.heap[0].at <= now && len(batch) < 4096 {
			batch = append(batch, s.pop().fn)
		}
		s.ran += uint64(len(batch))
		wait := time.Duration(-1)
		if len(s.heap) > 0 {
			wait = s.heap[0].at - now
		}
		s.mu.Unlock()

		if len(batch) > 0 {
			for i, fn := range batch {
				fn()
				batch[i] = nil
			}
			batch = batch[:0]
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.done:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

func (s *scheduler) pop() event {
	h := s.heap
	e := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	s.heap = h[:last]
	if last > 0 {
		s.down(0)
	}
	return e
}

func (s *scheduler) up(i int) {
	h := s.heap
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (s *scheduler) down(i int) {
	h := s.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

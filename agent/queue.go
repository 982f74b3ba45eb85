package agent

import (
	"sync"

	"github.com/patinadb/patina"
)

// inbound is one changeset waiting to be applied.
type inbound struct {
	cs   patina.Changeset
	from patina.ActorID
	ttl  int
	sync bool // came from anti-entropy: never forwarded
}

// applyQueue is the bounded queue between the peer handlers and the apply
// loop. It keeps one FIFO per origin actor and dequeues round-robin, so a
// noisy origin cannot starve the others (INCIDENTS.md #3); when full it drops
// the oldest item of the longest FIFO, which sync repairs (INCIDENTS.md #7).
type applyQueue struct {
	mu      sync.Mutex
	fifos   map[patina.ActorID][]inbound
	order   []patina.ActorID // round-robin order of origins with items
	next    int
	n, max  int
	dropped uint64
	wake    chan struct{}

	// seen drops duplicates cheaply before they reach the store.
	seen     map[seenKey]struct{}
	seenRing []seenKey
	seenPos  int
}

type seenKey struct {
	actor   patina.ActorID
	version patina.Version
	start   patina.Seq
	cleared bool
}

func newApplyQueue(max int) *applyQueue {
	return &applyQueue{fifos: map[patina.ActorID][]inbound{}, max: max, wake: make(chan struct{}, 1),
		seen: map[seenKey]struct{}{}, seenRing: make([]seenKey, 4*max)}
}

// push enqueues without blocking; it reports false for a duplicate.
func (q *applyQueue) push(it inbound) bool {
	k := seenKey{it.cs.Actor, it.cs.Version, it.cs.Seqs.Start, it.cs.Cleared}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, dup := q.seen[k]; dup {
		return false
	}
	if old := q.seenRing[q.seenPos]; old != (seenKey{}) {
		delete(q.seen, old)
	}
	q.seenRing[q.seenPos] = k
	q.seenPos = (q.seenPos + 1) % len(q.seenRing)
	q.seen[k] = struct{}{}

	a := it.cs.Actor
	if len(q.fifos[a]) == 0 {
		q.order = append(q.order, a)
	}
	q.fifos[a] = append(q.fifos[a], it)
	q.n++
	for q.n > q.max {
		q.dropLongest()
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *applyQueue) dropLongest() {
	var worst patina.ActorID
	best := 0
	for a, f := range q.fifos {
		if len(f) > best {
			worst, best = a, len(f)
		}
	}
	f := q.fifos[worst]
	// Forget it was seen so sync or a later broadcast can bring it again.
	delete(q.seen, seenKey{f[0].cs.Actor, f[0].cs.Version, f[0].cs.Seqs.Start, f[0].cs.Cleared})
	q.fifos[worst] = f[1:]
	q.n--
	q.dropped++
	if len(q.fifos[worst]) == 0 {
		q.removeOrigin(worst)
	}
}

func (q *applyQueue) removeOrigin(a patina.ActorID) {
	delete(q.fifos, a)
	for i, o := range q.order {
		if o == a {
			q.order = append(q.order[:i], q.order[i+1:]...)
			if q.next > i {
				q.next--
			}
			break
		}
	}
	if q.next >= len(q.order) {
		q.next = 0
	}
}

// take dequeues up to max items round-robin across origins.
func (q *applyQueue) take(max int) []inbound {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []inbound
	for len(out) < max && q.n > 0 {
		a := q.order[q.next]
		f := q.fifos[a]
		out = append(out, f[0])
		q.fifos[a] = f[1:]
		q.n--
		if len(q.fifos[a]) == 0 {
			q.removeOrigin(a)
		} else {
			q.next = (q.next + 1) % len(q.order)
		}
	}
	return out
}

// forget lets an item be accepted again (it was not applied).
func (q *applyQueue) forget(it inbound) {
	q.mu.Lock()
	delete(q.seen, seenKey{it.cs.Actor, it.cs.Version, it.cs.Seqs.Start, it.cs.Cleared})
	q.mu.Unlock()
}

func (q *applyQueue) status() patina.QueueStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	return patina.QueueStatus{Len: q.n, Cap: q.max, Dropped: q.dropped}
}

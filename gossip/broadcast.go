package gossip

import (
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/wire"
)

// cellKey names one cell of one origin actor, for coalescing.
type cellKey struct {
	actor  patina.ActorID
	table  string
	pk     string
	column string
}

type queued struct {
	cs      patina.Changeset
	from    patina.ActorID // immediate sender (own actor for local commits)
	ttl     int
	live    int // cells not superseded by a later queued version
	dropped bool
}

// broadcastQueue is the bounded queue of changesets waiting to be sent. A
// later version of the same origin that rewrites a cell supersedes that cell
// in an earlier queued version; a version with no live cell left travels as
// a tiny "cleared" marker (INCIDENTS.md #1: a retry backlog of 1M updates to
// 10k cells travels as at most 10k cells). Overflow drops the oldest.
type broadcastQueue struct {
	mu      sync.Mutex
	items   []*queued
	latest  map[cellKey]*queued
	max     int
	dropped uint64
	wake    chan struct{}
	closed  bool
}

func newBroadcastQueue(max int) *broadcastQueue {
	return &broadcastQueue{latest: map[cellKey]*queued{}, max: max, wake: make(chan struct{}, 1)}
}

func (q *broadcastQueue) push(item *queued) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if item.cs.Complete() && !item.cs.Cleared {
		for i := range item.cs.Changes {
			c := &item.cs.Changes[i]
			k := cellKey{actor: item.cs.Actor, table: c.Table, pk: string(c.PK), column: c.Column}
			if old := q.latest[k]; old != nil && old != item && old.cs.Version < item.cs.Version && !old.dropped {
				old.live--
				if old.live == 0 {
					old.cs = patina.Changeset{Actor: old.cs.Actor, Version: old.cs.Version, Cleared: true, ClearedTo: old.cs.Version, TS: old.cs.TS}
				}
			}
			q.latest[k] = item
		}
		item.live = len(item.cs.Changes)
	}
	q.items = append(q.items, item)
	for len(q.items) > q.max {
		q.items[0].dropped = true
		q.items = q.items[1:]
		q.dropped++
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes and returns every queued item.
func (q *broadcastQueue) take() []*queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	for _, it := range items {
		it.dropped = true // no longer coalescible
	}
	if len(q.latest) > 4*q.max {
		q.latest = map[cellKey]*queued{}
	} else {
		for k, it := range q.latest {
			if it.dropped {
				delete(q.latest, k)
			}
		}
	}
	return items
}

func (q *broadcastQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *broadcastQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// QueueStatus reports the broadcast queue's depth, bound and drops.
func (n *Node) QueueStatus() patina.QueueStatus {
	q := n.bq
	q.mu.Lock()
	defer q.mu.Unlock()
	return patina.QueueStatus{Len: len(q.items), Cap: q.max, Dropped: q.dropped}
}

// Broadcast queues a local commit for immediate push.
func (n *Node) Broadcast(cs patina.Changeset) {
	n.bq.push(&queued{cs: cs, from: n.Actor, ttl: n.MaxTTL})
}

// Forward queues a changeset that was new here.
func (n *Node) Forward(cs patina.Changeset, from patina.ActorID, ttl int) {
	n.bq.push(&queued{cs: cs, from: from, ttl: ttl})
}

// sendLoop drains the queue: it waits CoalesceWindow after the first item so
// superseded cells collapse, picks targets per item, and writes one frame
// per (target, ttl) under the outbound byte rate limit.
func (n *Node) sendLoop() {
	defer n.wg.Done()
	// A small burst: under a backlog the limiter must hold the sender back
	// so the queue coalesces, rather than let a second's worth through.
	limiter := rate.NewLimiter(rate.Limit(n.RateBytesPerSec), max(n.RateBytesPerSec/10, 4096))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.bq.wake:
		}
		if n.CoalesceWindow > 0 {
			t := time.NewTimer(n.CoalesceWindow)
			select {
			case <-n.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		items := mergeCleared(n.bq.take())
		if len(items) == 0 {
			continue
		}
		type key struct {
			addr string
			ttl  int
		}
		frames := map[key][]patina.Changeset{}
		var order []key
		peers := n.alive()
		for _, it := range items {
			for _, m := range n.targets(peers, it, rng) {
				k := key{m.Addr, it.ttl - 1}
				if it.from == n.Actor {
					k.ttl = it.ttl
				}
				if _, ok := frames[k]; !ok {
					order = append(order, k)
				}
				frames[k] = append(frames[k], it.cs)
			}
		}
		n.dropDropped()
		for _, k := range order {
			sets := frames[k]
			for len(sets) > 0 {
				// Keep frames well under the frame size limit.
				end, size := 0, 0
				for end < len(sets) && (end == 0 || size < DefaultChunkBytes*4) {
					size += wire.ChangesetSize(&sets[end])
					end++
				}
				frame := wire.Marshal(nil, &wire.Changesets{From: n.Actor, TTL: uint8(max(k.ttl, 0)), Sets: sets[:end]})
				if err := limiter.WaitN(n.ctx, min(len(frame), limiter.Burst())); err != nil {
					return
				}
				cells := 0
				for i := range sets[:end] {
					cells += len(sets[i].Changes)
				}
				if n.peer(k.addr).send(frame) {
					n.stats.add(func(s *Stats) {
						s.MsgsSent++
						s.BytesSent += uint64(len(frame))
						s.CellsSent += uint64(cells)
					})
				}
				sets = sets[end:]
			}
		}
	}
}

// mergeCleared folds runs of consecutive cleared versions of one origin
// (same sender and TTL) into one cleared range.
func mergeCleared(items []*queued) []*queued {
	out := items[:0]
	for _, it := range items {
		if k := len(out) - 1; k >= 0 && it.cs.Cleared && out[k].cs.Cleared && out[k].cs.Actor == it.cs.Actor &&
			out[k].from == it.from && out[k].ttl == it.ttl && out[k].cs.ClearedTo+1 == it.cs.Version {
			out[k].cs.ClearedTo = it.cs.ClearedTo
			continue
		}
		out = append(out, it)
	}
	return out
}

func (n *Node) dropDropped() {
	n.bq.mu.Lock()
	d := n.bq.dropped
	n.bq.mu.Unlock()
	n.stats.add(func(s *Stats) { s.Dropped = d })
}

// targets picks the peers an item goes to (DESIGN.md §2): a local commit
// goes to a few same-region peers and RelaysPerRegion peers of every other
// region; a relay that received it from another region spreads it inside
// its own region; inside a region it travels on while the TTL lasts.
//
// The choice is stable (rendezvous hashing of this node and the peer), so
// the same few streams carry every broadcast and stay warm: a random choice
// would often pick a peer with no open stream and pay a dial and a hello,
// two round trips, on the latency path.
func (n *Node) targets(peers []patina.Member, it *queued, rng *rand.Rand) []patina.Member {
	byRegion := map[string][]patina.Member{}
	for _, m := range peers {
		if m.Actor == it.from || m.Actor == it.cs.Actor {
			continue
		}
		byRegion[m.Region] = append(byRegion[m.Region], m)
	}
	var out []patina.Member
	if it.from == n.Actor {
		for region, ms := range byRegion {
			if region == n.Region {
				out = append(out, n.stablePick(ms, n.SameRegionFanout)...)
			} else {
				out = append(out, n.stablePick(ms, n.RelaysPerRegion)...)
			}
		}
		return out
	}
	if it.ttl <= 0 {
		return nil // the hop budget is spent: apply here, forward no more
	}
	fromRegion := ""
	n.mu.RLock()
	for _, m := range n.members {
		if m.Actor == it.from {
			fromRegion = m.Region
			break
		}
	}
	n.mu.RUnlock()
	if fromRegion != n.Region {
		return n.stablePick(byRegion[n.Region], n.SameRegionFanout)
	}
	if it.ttl > 1 {
		ms := byRegion[n.Region]
		if len(ms) > 0 {
			return []patina.Member{ms[rng.IntN(len(ms))]}
		}
	}
	return nil
}

// stablePick returns the k members with the highest rendezvous score for
// this node.
func (n *Node) stablePick(ms []patina.Member, k int) []patina.Member {
	if len(ms) <= k {
		return ms
	}
	out := append([]patina.Member(nil), ms...)
	sort.Slice(out, func(i, j int) bool { return n.score(out[i].Actor) > n.score(out[j].Actor) })
	return out[:k]
}

func (n *Node) score(peer patina.ActorID) uint64 {
	h := fnv.New64a()
	h.Write(n.Actor[:])
	h.Write(peer[:])
	return h.Sum64()
}

// warmTargets opens the broadcast streams a local commit would use, so the
// first broadcast does not pay for the dial.
func (n *Node) warmTargets() {
	peers := n.alive()
	seen := map[string]bool{}
	for _, m := range n.targets(peers, &queued{from: n.Actor}, nil) {
		if !seen[m.Addr] {
			seen[m.Addr] = true
			n.peer(m.Addr).warm()
		}
	}
}

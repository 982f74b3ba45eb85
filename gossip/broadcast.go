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
	live    int          // cells not superseded by a later queued version
	gone    map[int]bool // indexes of superseded changes, stripped at take
	dropped bool
	storm   bool // part of a storming origin's held round
}

// cellRef is the newest queued change of a cell.
type cellRef struct {
	item *queued
	idx  int
}

// broadcastQueue is the bounded queue of changesets waiting to be sent. A
// later version of the same origin that rewrites a cell supersedes that cell
// in an earlier queued version: the cell is stripped from it, and the
// version still travels as complete, the stripped seqs being holes, exactly
// as if the origin had sent it after the overwrite. A version with no live
// cell left travels as a tiny "cleared" marker. So a retry backlog of 1M
// updates to 10k cells travels as about 10k cells per send round
// (INCIDENTS.md #1). Overflow drops the oldest, which sync repairs.
type broadcastQueue struct {
	mu      sync.Mutex
	items   []*queued
	latest  map[cellKey]cellRef
	max     int
	dropped uint64
	// superseded counts cells stripped since the last take: the sign of a
	// storm (one origin rewriting the same cells faster than they travel).
	superseded int
	lastPush   time.Time
	// recent remembers, for a queue of this node's own commits, when each
	// cell last left; rewriting a cell that left moments ago counts as
	// superseding too, so a storm is recognised even when the link keeps
	// up and nothing waits in the queue long enough to be stripped.
	recent map[cellKey]time.Time
	wake   chan struct{}
	closed bool
}

func newBroadcastQueue(max int, wake chan struct{}) *broadcastQueue {
	return &broadcastQueue{latest: map[cellKey]cellRef{}, max: max, wake: wake}
}

func (q *broadcastQueue) push(item *queued) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if item.cs.Complete() && !item.cs.Cleared {
		now := time.Now()
		for i := range item.cs.Changes {
			c := &item.cs.Changes[i]
			k := cellKey{actor: item.cs.Actor, table: c.Table, pk: string(c.PK), column: c.Column}
			if q.recent != nil {
				if at, ok := q.recent[k]; ok && now.Sub(at) < StormMemory {
					q.superseded++
				}
			}
			if ref, ok := q.latest[k]; ok && ref.item != item && ref.item.cs.Version < item.cs.Version && !ref.item.dropped {
				old := ref.item
				if old.gone == nil {
					old.gone = map[int]bool{}
				}
				if !old.gone[ref.idx] {
					old.gone[ref.idx] = true
					old.live--
					q.superseded++
				}
				if old.live == 0 {
					old.cs = patina.Changeset{Actor: old.cs.Actor, Version: old.cs.Version, Cleared: true, ClearedTo: old.cs.Version, TS: old.cs.TS}
					old.gone = nil
				}
			}
			q.latest[k] = cellRef{item, i}
		}
		item.live = len(item.cs.Changes)
	}
	q.items = append(q.items, item)
	q.lastPush = time.Now()
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

// take removes and returns every queued item, and how many cells were
// superseded while they waited.
func (q *broadcastQueue) take() ([]*queued, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, superseded := q.items, q.superseded
	q.items, q.superseded = nil, 0
	now := time.Now()
	if q.recent != nil && len(q.recent) > 4*q.max {
		for k, at := range q.recent {
			if now.Sub(at) >= StormMemory {
				delete(q.recent, k)
			}
		}
		if len(q.recent) > 4*q.max {
			clear(q.recent)
		}
	}
	for _, it := range items {
		it.dropped = true // no longer coalescible
		if q.recent != nil && !it.cs.Cleared {
			for i := range it.cs.Changes {
				if !it.gone[i] {
					c := &it.cs.Changes[i]
					q.recent[cellKey{actor: it.cs.Actor, table: c.Table, pk: string(c.PK), column: c.Column}] = now
				}
			}
		}
		if len(it.gone) > 0 {
			kept := make([]patina.Change, 0, it.live)
			for i := range it.cs.Changes {
				if !it.gone[i] {
					kept = append(kept, it.cs.Changes[i])
				}
			}
			it.cs.Changes, it.gone = kept, nil
		}
	}
	clear(q.latest)
	return items, superseded
}

// oldestVersion returns the lowest version queued for actor, if any.
func (q *broadcastQueue) oldestVersion(actor patina.ActorID) (patina.Version, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range q.items {
		if it.cs.Actor == actor {
			return it.cs.Version, true
		}
	}
	return 0, false
}

func (q *broadcastQueue) sinceLastPush() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	return time.Since(q.lastPush)
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
	var st patina.QueueStatus
	for _, q := range []*broadcastQueue{n.bq, n.fq} {
		q.mu.Lock()
		st.Len += len(q.items)
		st.Cap += q.max
		st.Dropped += q.dropped
		q.mu.Unlock()
	}
	return st
}

// Broadcast queues a local commit for immediate push.
func (n *Node) Broadcast(cs patina.Changeset) {
	n.bq.push(&queued{cs: cs, from: n.Actor, ttl: n.MaxTTL})
}

// Forward queues a changeset that was new here.
func (n *Node) Forward(cs patina.Changeset, from patina.ActorID, ttl int) {
	n.fq.push(&queued{cs: cs, from: from, ttl: ttl})
}

// Storm handling for this node's own commits: once queued commits start
// superseding each other's cells, they are held until the origin has been
// quiet for StormQuietPeriod, or for at most MaxCoalesceWindow, then sent
// as one round of current values.
const (
	StormQuietPeriod  = time.Second
	MaxCoalesceWindow = 30 * time.Second
	// StormMemory is how long a sent cell counts as fresh: rewriting it
	// within this time is a sign of a storm.
	StormMemory = 2 * time.Second
	// StormMinCells is how many superseded cells in one send round make a
	// storm; a few rewritten cells (a flapping health check) are not one.
	StormMinCells = 50
)

// sendLoop drains the queues: it waits CoalesceWindow after the first item
// so superseded cells collapse, picks targets per item, and writes one frame
// per (target, ttl) under the outbound byte rate limit. Forwarded changesets
// (other origins) go first and always on the short window. This node's own
// commits are held while they keep superseding each other (a retry storm,
// see StormQuietPeriod), so a storm travels as one or a few rounds of
// current values instead of its history, and other origins' fresh writes
// are not stuck behind it (INCIDENTS.md #1). While commits are held, the
// sync state this node serves advertises its head as the last released
// version, so peers do not pull what the queue is about to coalesce.
func (n *Node) sendLoop() {
	defer n.wg.Done()
	// A small burst: under a backlog the limiter must hold the sender back
	// so the queue coalesces, rather than let a second's worth through.
	limiter := rate.NewLimiter(rate.Limit(n.RateBytesPerSec), max(n.RateBytesPerSec/10, 4096))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	storming := false
	var heldSince time.Time
	var recheck *time.Timer
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.wake:
		}
		if !n.sleep(n.CoalesceWindow) {
			return
		}
		fwd, _ := n.fq.take()
		var local []*queued
		if recheck != nil {
			recheck.Stop()
			recheck = nil
		}
		release := true
		if storming && n.bq.len() > 0 {
			quiet := n.bq.sinceLastPush()
			held := time.Since(heldSince)
			if quiet < StormQuietPeriod && held < MaxCoalesceWindow {
				release = false
				wait := min(StormQuietPeriod-quiet, MaxCoalesceWindow-held)
				recheck = time.AfterFunc(wait, n.poke)
			}
		}
		if release {
			var superseded int
			local, superseded = n.bq.take()
			switch {
			case superseded >= StormMinCells && !storming:
				storming, heldSince = true, time.Now()
			case superseded >= StormMinCells:
				heldSince = time.Now()
			case len(local) > 0:
				storming = false
			}
			if storming {
				// A storm round is bulk: one relay per region is enough,
				// sync covers a relay lost mid-storm.
				for _, it := range local {
					it.storm = true
				}
			}
		}
		if !n.send(mergeCleared(fwd), limiter, rng) || !n.send(mergeCleared(local), limiter, rng) {
			return
		}
		if n.fq.len() > 0 || (!storming && n.bq.len() > 0) {
			n.poke()
		}
	}
}

func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Node) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// send writes items to their targets; false when the node is closing.
func (n *Node) send(items []*queued, limiter *rate.Limiter, rng *rand.Rand) bool {
	if len(items) == 0 {
		return true
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
				return false
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
	return true
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
	d := n.QueueStatus().Dropped
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
				out = append(out, n.regionTargets(ms)...)
			} else {
				relays := n.RelaysPerRegion
				if it.storm {
					relays = 1
				}
				out = append(out, n.stablePick(ms, relays)...)
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
		return n.regionTargets(byRegion[n.Region])
	}
	if len(byRegion[n.Region])+2 <= DirectRegionMax {
		return nil // the region was covered directly by the origin or relay
	}
	// Inside the region: an epidemic. Every node forwards what was new to
	// it, once, to a few random region peers while the hop budget lasts,
	// so a region of any size is covered in about log(N) hops (a fixed
	// relay tree would stop at 1 + fanout + fanout nodes).
	if it.ttl > 1 {
		ms := append([]patina.Member(nil), byRegion[n.Region]...)
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		return ms[:min(len(ms), n.SameRegionFanout)]
	}
	return nil
}

// DirectRegionMax is the region size up to which the origin, or the relay
// that brings a change into a region, sends it to every region peer itself
// (in-region hops are cheap; Corrosion does the same for its nearest ring).
// Larger regions spread it as an epidemic.
const DirectRegionMax = 64

// regionTargets is where the origin or a region's relay sends a change
// inside its region: everyone in a region up to DirectRegionMax nodes, else
// a few stable peers that start the epidemic.
func (n *Node) regionTargets(ms []patina.Member) []patina.Member {
	if len(ms)+1 <= DirectRegionMax {
		return ms
	}
	return n.stablePick(ms, 2*n.SameRegionFanout)
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

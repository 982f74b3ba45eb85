package antientropy

import (
	"sync"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/rangeset"
)

// Planner assigns needs to peers for one sync round so that the same version
// or seq range is never requested from two peers (Corrosion's req_full and
// req_partials). Make one per round with NewPlanner; the sessions of a round
// share it. A Planner is safe for concurrent use, so sessions run in
// parallel may share it.
type Planner struct {
	mu          sync.Mutex
	local       patina.SyncState
	maxVersions uint64

	full     map[patina.ActorID]*rangeset.Set                    // versions assigned
	seqs     map[patina.ActorID]map[patina.Version]*rangeset.Set // seqs assigned of local partials
	maxHeads map[patina.ActorID]patina.Version                   // highest head of any peer added
}

// NewPlanner returns a planner for a round of local, whose needs hold at most
// maxVersions versions each (0 means DefaultMaxVersions).
func NewPlanner(local patina.SyncState, maxVersions uint64) *Planner {
	if maxVersions == 0 {
		maxVersions = DefaultMaxVersions
	}
	return &Planner{
		local:       local,
		maxVersions: maxVersions,
		full:        map[patina.ActorID]*rangeset.Set{},
		seqs:        map[patina.ActorID]map[patina.Version]*rangeset.Set{},
		maxHeads:    map[patina.ActorID]patina.Version{},
	}
}

// Add records the state of peer and returns the needs to request from it:
// Needs(local, remote) minus the versions and seqs already assigned to an
// earlier peer of the round, splitting ranges as needed. The returned needs
// count as assigned. peer names the peer for the caller's bookkeeping;
// assignment is by content, so adding a peer twice returns only what it can
// supply that is still unassigned.
func (p *Planner) Add(peer patina.ActorID, remote patina.SyncState) []patina.Need {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, h := range remote.Heads {
		if a != p.local.Actor && h > p.maxHeads[a] {
			p.maxHeads[a] = h
		}
	}
	return plan(&p.local, &remote, p.maxVersions, p)
}

// claim removes from w what was already assigned and records the rest as
// assigned. Called with p.mu held.
func (p *Planner) claim(a patina.ActorID, w *actorWants) {
	full := p.full[a]
	if full == nil {
		full = &rangeset.Set{}
		p.full[a] = full
	}
	w.full = w.full.Subtract(full)
	for _, r := range w.full.Ranges() {
		full.Insert(r)
	}
	for v, want := range w.partials {
		done := p.seqs[a][v]
		if done == nil {
			if p.seqs[a] == nil {
				p.seqs[a] = map[patina.Version]*rangeset.Set{}
			}
			done = &rangeset.Set{}
			p.seqs[a][v] = done
		}
		rest := want.Subtract(done)
		if rest.IsEmpty() {
			delete(w.partials, v)
			continue
		}
		for _, r := range rest.Ranges() {
			done.Insert(r)
		}
		w.partials[v] = &rest
	}
}

// Outstanding returns, per origin actor, how many versions local still wants
// that no peer added so far was assigned: versions in local's gaps or between
// local's head and the highest head of any peer that no peer holds whole, and
// versions held in part whose missing seqs are not all assigned. Actors with
// nothing outstanding are absent; an empty map means the round, if its
// requests are answered, repairs everything local knows it lacks.
func (p *Planner) Outstanding() map[patina.ActorID]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	actors := map[patina.ActorID]bool{}
	for a := range p.local.Gaps {
		actors[a] = true
	}
	for a := range p.local.Partials {
		actors[a] = true
	}
	for a := range p.maxHeads {
		actors[a] = true
	}
	out := map[patina.ActorID]uint64{}
	for a := range actors {
		if a == p.local.Actor {
			continue
		}
		wanted := rangeset.FromRanges(p.local.Gaps[a])
		if mh, lh := p.maxHeads[a], p.local.Heads[a]; mh > lh {
			wanted.Insert(patina.Range{Start: lh + 1, End: mh})
		}
		for v := range p.local.Partials[a] {
			wanted.Remove(patina.Range{Start: v, End: v})
		}
		if full := p.full[a]; full != nil {
			wanted = wanted.Subtract(full)
		}
		n := wanted.Len()
		for v, lp := range p.local.Partials[a] {
			missing := missingSeqs(lp)
			if done := p.seqs[a][v]; done != nil {
				missing = missing.Subtract(done)
			}
			if !missing.IsEmpty() {
				n++
			}
		}
		if n > 0 {
			out[a] = n
		}
	}
	return out
}

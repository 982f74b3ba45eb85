package antientropy

import (
	"bytes"
	"slices"
	"sort"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/rangeset"
)

// DefaultMaxVersions is the most versions one full need asks for, as in
// Corrosion: small enough that a server answers a need quickly and the newest
// chunks of every actor come first.
const DefaultMaxVersions = 10

// actorWants is what a node wants of one origin actor's versions from one
// peer.
type actorWants struct {
	full     rangeset.Set                     // versions wanted whole
	partials map[patina.Version]*rangeset.Set // seqs wanted of versions held in part
}

// Needs computes what local lacks that remote has, newest first, split into
// needs of at most maxVersions versions each (0 means DefaultMaxVersions).
//
// Per origin actor A other than local.Actor (a node never needs its own
// versions), remote's haves are 1..=remote.Heads[A] minus its gaps and its
// partial versions. Needs asks for the versions in local's gaps or above
// local's head that remote has, excluding versions local holds in part. For
// each version local holds in part it asks for the missing seqs (0..=LastSeq
// minus Have) if remote has the version whole, or for the missing seqs remote
// holds if remote holds it in part too.
//
// Full ranges are split into chunks of maxVersions, highest first. Per actor,
// full chunks and partial needs are ordered by version, highest first; across
// actors (ordered by id bytes) they are interleaved round-robin, so the
// newest need of every actor precedes the older needs of any.
func Needs(local, remote patina.SyncState, maxVersions uint64) []patina.Need {
	return plan(&local, &remote, maxVersions, nil)
}

// plan computes the needs of local from remote minus what p already assigned
// to other peers, and records them in p. p may be nil.
func plan(local, remote *patina.SyncState, maxVersions uint64, p *Planner) []patina.Need {
	if maxVersions == 0 {
		maxVersions = DefaultMaxVersions
	}
	ws := map[patina.ActorID]*actorWants{}
	for _, a := range remoteActors(remote) {
		if a == local.Actor {
			continue
		}
		w := wantsOf(local, remote, a)
		if p != nil {
			p.claim(a, w)
		}
		if !w.full.IsEmpty() || len(w.partials) > 0 {
			ws[a] = w
		}
	}
	return order(ws, maxVersions)
}

// remoteActors returns the origin actors remote knows anything of, sorted by
// id bytes.
func remoteActors(remote *patina.SyncState) []patina.ActorID {
	var as []patina.ActorID
	for a, h := range remote.Heads {
		if h > 0 {
			as = append(as, a)
		}
	}
	for a, ps := range remote.Partials {
		if _, ok := remote.Heads[a]; !ok && len(ps) > 0 {
			as = append(as, a)
		}
	}
	sortActors(as)
	return as
}

func sortActors(as []patina.ActorID) {
	slices.SortFunc(as, func(x, y patina.ActorID) int { return bytes.Compare(x[:], y[:]) })
}

// fullHaves returns the versions of actor a that s holds whole: 1..=head
// minus gaps minus partial versions.
func fullHaves(s *patina.SyncState, a patina.ActorID) rangeset.Set {
	var haves rangeset.Set
	head := s.Heads[a]
	if head == 0 {
		return haves
	}
	haves.Insert(patina.Range{Start: 1, End: head})
	for _, g := range s.Gaps[a] {
		haves.Remove(g)
	}
	for v := range s.Partials[a] {
		haves.Remove(patina.Range{Start: v, End: v})
	}
	return haves
}

// missingSeqs returns the seqs of a partially held version that p lacks.
func missingSeqs(p patina.Partial) rangeset.Set {
	have := rangeset.FromRanges(p.Have)
	return rangeset.FromRanges(have.Missing(patina.Range{Start: 0, End: p.LastSeq}))
}

// wantsOf returns what local wants of actor a's versions that remote can
// supply.
func wantsOf(local, remote *patina.SyncState, a patina.ActorID) *actorWants {
	w := &actorWants{}
	haves := fullHaves(remote, a)
	if !haves.IsEmpty() {
		missing := rangeset.FromRanges(local.Gaps[a])
		if rh, lh := remote.Heads[a], local.Heads[a]; rh > lh {
			missing.Insert(patina.Range{Start: lh + 1, End: rh})
		}
		for v := range local.Partials[a] {
			missing.Remove(patina.Range{Start: v, End: v})
		}
		w.full = missing.Intersect(&haves)
	}
	for v, lp := range local.Partials[a] {
		missing := missingSeqs(lp)
		if missing.IsEmpty() {
			continue
		}
		var seqs rangeset.Set
		if haves.Contains(v) {
			seqs = missing
		} else if rp, ok := remote.Partials[a][v]; ok {
			rh := rangeset.FromRanges(rp.Have)
			seqs = missing.Intersect(&rh)
		}
		if seqs.IsEmpty() {
			continue
		}
		if w.partials == nil {
			w.partials = map[patina.Version]*rangeset.Set{}
		}
		w.partials[v] = &seqs
	}
	return w
}

// order turns wants into needs: chunked, newest first per actor, interleaved
// round-robin across actors in id order.
func order(ws map[patina.ActorID]*actorWants, maxVersions uint64) []patina.Need {
	actors := make([]patina.ActorID, 0, len(ws))
	for a := range ws {
		actors = append(actors, a)
	}
	sortActors(actors)
	lists := make([][]patina.Need, len(actors))
	total := 0
	for i, a := range actors {
		lists[i] = actorNeeds(a, ws[a], maxVersions)
		total += len(lists[i])
	}
	out := make([]patina.Need, 0, total)
	for round := 0; len(out) < total; round++ {
		for _, l := range lists {
			if round < len(l) {
				out = append(out, l[round])
			}
		}
	}
	return out
}

// actorNeeds returns one actor's needs, highest version first.
func actorNeeds(a patina.ActorID, w *actorWants, maxVersions uint64) []patina.Need {
	var ns []patina.Need
	rs := w.full.Ranges()
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		for end := r.End; ; {
			start := r.Start
			if end-r.Start >= maxVersions {
				start = end - maxVersions + 1
			}
			ns = append(ns, patina.Need{Actor: a, Versions: patina.Range{Start: start, End: end}})
			if start == r.Start {
				break
			}
			end = start - 1
		}
	}
	for v, seqs := range w.partials {
		ns = append(ns, patina.Need{Actor: a, Versions: patina.Range{Start: v, End: v}, Seqs: seqs.Ranges()})
	}
	// Full chunks and partial versions never overlap, so ordering by the
	// highest version is total.
	sort.Slice(ns, func(i, j int) bool { return ns[i].Versions.End > ns[j].Versions.End })
	return ns
}

// Serve returns the needs a server holding have can answer, in the order
// given, so that it never streams versions it does not hold. A full need
// keeps only the versions the server holds whole (not in its gaps, not
// partial, not above its head), split into sub-ranges highest first. A
// partial need is kept whole if the server holds the version whole, or cut
// to the seqs the server holds if it holds the version in part (it answers
// those from its buffer); otherwise it is dropped.
func Serve(needs []patina.Need, have patina.SyncState) []patina.Need {
	havesOf := map[patina.ActorID]*rangeset.Set{}
	haves := func(a patina.ActorID) *rangeset.Set {
		h, ok := havesOf[a]
		if !ok {
			s := fullHaves(&have, a)
			h = &s
			havesOf[a] = h
		}
		return h
	}
	var out []patina.Need
	for _, n := range needs {
		h := haves(n.Actor)
		if n.IsPartial() {
			v := n.Versions.Start
			if h.Contains(v) {
				out = append(out, n)
				continue
			}
			p, ok := have.Partials[n.Actor][v]
			if !ok {
				continue
			}
			want := rangeset.FromRanges(n.Seqs)
			held := rangeset.FromRanges(p.Have)
			if got := want.Intersect(&held); !got.IsEmpty() {
				out = append(out, patina.Need{Actor: n.Actor, Versions: patina.Range{Start: v, End: v}, Seqs: got.Ranges()})
			}
			continue
		}
		want := rangeset.FromRanges([]patina.Range{n.Versions})
		got := want.Intersect(h)
		rs := got.Ranges()
		for i := len(rs) - 1; i >= 0; i-- {
			out = append(out, patina.Need{Actor: n.Actor, Versions: rs[i]})
		}
	}
	return out
}

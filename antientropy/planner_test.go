package antientropy

import (
	"fmt"

	"testing"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/rangeset"
	"pgregory.net/rapid"
)

func TestPlanner_Add(t *testing.T) {
	local := MustState(t, "actor=a heads=b:10,c:4 gaps=b:2-3 partials=b:5@0-1/4,c:4@0/3")
	p := NewPlanner(local, 3)
	steps := []struct {
		peer, state string
		want        string
		outstanding string
	}{
		{"b", "actor=b heads=b:8", "b:5[2..=4] b:2..=3", "c:1"},
		{"c", "actor=c heads=b:14,c:6 gaps=b:3 partials=c:4@1-2/3", "b:12..=14 c:5..=6 b:11..=11 c:4[1..=2]", "c:1"},
		{"d", "actor=d heads=b:14,c:6", "c:4[3..=3]", ""},
		{"e", "actor=e heads=b:20,c:6", "b:18..=20 b:15..=17", ""},
		{"f", "actor=f heads=b:22 gaps=b:21-22", "", "b:2"},
	}
	for _, s := range steps {
		got := fmtNeeds(p.Add(actor(s.peer[0]), MustState(t, s.state)))
		if got != s.want {
			t.Errorf("Add(%s):\n got %q\nwant %q", s.peer, got, s.want)
		}
		if got := fmtOutstanding(p.Outstanding()); got != s.outstanding {
			t.Errorf("Outstanding after %s: got %q, want %q", s.peer, got, s.outstanding)
		}
	}
}

func TestPlanner_Outstanding(t *testing.T) {
	p := NewPlanner(MustState(t, "actor=a heads=a:9,b:10 gaps=a:1-2,b:2-3 partials=b:5@0-1/4"), 0)
	if got, want := fmtOutstanding(p.Outstanding()), "b:3"; got != want {
		t.Errorf("before any peer: got %q, want %q (own actor never outstanding)", got, want)
	}
}

// The model: per node, per origin actor, per version, a bitmask of the seqs
// the node holds (seq s is bit s). Versions have at most maxSeqs seqs.
const maxSeqs = 4

type history struct {
	lastSeq map[byte][]uint8 // per actor, per version (index v, 0 unused)
}

func (h history) fullMask(a byte, v int) uint8 { return uint8(1)<<(h.lastSeq[a][v]+1) - 1 }

type knowledge map[byte][]uint8 // per actor, per version: seqs held

func (k knowledge) clone() knowledge {
	c := knowledge{}
	for a, vs := range k {
		c[a] = append([]uint8(nil), vs...)
	}
	return c
}

func maskRanges(m uint8) []patina.Range {
	var rs []patina.Range
	for s := 0; s < 8; s++ {
		if m&(1<<s) == 0 {
			continue
		}
		if n := len(rs); n > 0 && rs[n-1].End == uint64(s-1) {
			rs[n-1].End++
		} else {
			rs = append(rs, patina.Range{Start: uint64(s), End: uint64(s)})
		}
	}
	return rs
}

func rangesMask(rs []patina.Range) uint8 {
	var m uint8
	for _, r := range rs {
		for s := r.Start; s <= r.End && s < 8; s++ {
			m |= 1 << s
		}
	}
	return m
}

// state builds the SyncState a node with knowledge k reports.
func (h history) state(self byte, k knowledge) patina.SyncState {
	st := patina.SyncState{
		Actor:    actor(self),
		Heads:    map[patina.ActorID]patina.Version{},
		Gaps:     map[patina.ActorID][]patina.Range{},
		Partials: map[patina.ActorID]map[patina.Version]patina.Partial{},
	}
	for a, vs := range k {
		head := 0
		for v := len(vs) - 1; v >= 1; v-- {
			if vs[v] != 0 {
				head = v
				break
			}
		}
		if head == 0 {
			continue
		}
		id := actor(a)
		st.Heads[id] = uint64(head)
		var gaps rangeset.Set
		for v := 1; v <= head; v++ {
			switch m := vs[v]; {
			case m == 0:
				gaps.Insert(patina.Range{Start: uint64(v), End: uint64(v)})
			case m != h.fullMask(a, v):
				if st.Partials[id] == nil {
					st.Partials[id] = map[patina.Version]patina.Partial{}
				}
				st.Partials[id][uint64(v)] = patina.Partial{Have: maskRanges(m), LastSeq: uint64(h.lastSeq[a][v])}
			}
		}
		if !gaps.IsEmpty() {
			st.Gaps[id] = gaps.Ranges()
		}
	}
	return st
}

// TestPlanner_convergence plans sync rounds among 2-5 nodes holding random
// parts of a random history and delivers what was requested. No round asks
// for the same version or seq twice or for anything the peer lacks or the node
// has, Outstanding matches a naive reference, and repeated rounds converge
// every node to the union of knowledge.
func TestPlanner_convergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nNodes := rapid.IntRange(2, 5).Draw(t, "nodes")
		maxVersions := rapid.Uint64Range(0, 4).Draw(t, "maxVersions")
		nodes := make([]byte, nNodes)
		for i := range nodes {
			nodes[i] = byte('a' + i)
		}
		// Origin actors: every node, plus 'z', a departed node whose history
		// survives only in the others.
		origins := append(append([]byte(nil), nodes...), 'z')
		h := history{lastSeq: map[byte][]uint8{}}
		for _, a := range origins {
			n := rapid.IntRange(0, 12).Draw(t, fmt.Sprintf("versions of %c", a))
			ls := make([]uint8, n+1)
			for v := 1; v <= n; v++ {
				ls[v] = uint8(rapid.IntRange(0, maxSeqs-1).Draw(t, "lastSeq"))
			}
			h.lastSeq[a] = ls
		}
		know := map[byte]knowledge{}
		for _, x := range nodes {
			k := knowledge{}
			for _, a := range origins {
				ls := h.lastSeq[a]
				vs := make([]uint8, len(ls))
				for v := 1; v < len(ls); v++ {
					full := h.fullMask(a, v)
					switch {
					case a == x:
						vs[v] = full // a node holds all its own versions
					default:
						switch rapid.IntRange(0, 2).Draw(t, "held") {
						case 1:
							vs[v] = full
						case 2:
							vs[v] = uint8(rapid.IntRange(0, int(full)).Draw(t, "seqs"))
						}
					}
				}
				k[a] = vs
			}
			know[x] = k
		}
		// The union: what convergence must reach.
		union := knowledge{}
		for _, a := range origins {
			union[a] = make([]uint8, len(h.lastSeq[a]))
			for _, x := range nodes {
				for v, m := range know[x][a] {
					union[a][v] |= m
				}
			}
		}

		for round := 0; ; round++ {
			if round > 3 {
				t.Fatalf("no convergence after %d rounds", round)
			}
			next := map[byte]knowledge{}
			planned := 0
			for _, x := range nodes {
				planned += planRound(t, h, know, x, nodes, maxVersions, next)
			}
			know = next
			if planned == 0 {
				break
			}
		}
		for _, x := range nodes {
			for _, a := range origins {
				for v := 1; v < len(union[a]); v++ {
					got, want := know[x][a][v], union[a][v]
					if want != h.fullMask(a, v) && got == 0 {
						continue // an incomplete version is never pulled into a gap
					}
					if got != want {
						t.Fatalf("node %c actor %c version %d: holds seqs %08b, union %08b", x, a, v, got, want)
					}
				}
			}
		}
	})
}

// planRound plans one round for node x against every other node in a random
// order, checks the plan and stores x's knowledge after delivery in next. It
// returns the number of needs planned.
func planRound(t *rapid.T, h history, know map[byte]knowledge, x byte, nodes []byte, maxVersions uint64, next map[byte]knowledge) int {
	local := h.state(x, know[x])
	p := NewPlanner(local, maxVersions)
	if maxVersions == 0 {
		maxVersions = DefaultMaxVersions
	}
	var peers []byte
	for _, y := range nodes {
		if y != x {
			peers = append(peers, y)
		}
	}
	peers = rapid.Permutation(peers).Draw(t, "peers")
	got := know[x].clone()
	requested := map[byte][]uint8{} // per actor, per version: seqs requested (full = full mask)
	planned := 0
	for _, y := range peers {
		remote := h.state(y, know[y])
		ns := p.Add(actor(y), remote)
		planned += len(ns)
		if served := Serve(ns, remote); fmtNeeds(served) != fmtNeeds(ns) {
			t.Fatalf("%c asks %c for what it cannot serve:\nasked  %s\nserved %s", x, y, fmtNeeds(ns), fmtNeeds(served))
		}
		lastTop := map[byte]uint64{}
		for _, n := range ns {
			a := n.Actor[0]
			if n.Actor == local.Actor {
				t.Fatalf("%c asks for its own versions: %s", x, fmtNeed(n))
			}
			if top, ok := lastTop[a]; ok && n.Versions.End >= top {
				t.Fatalf("needs of %c to %c not newest first: %s", x, y, fmtNeeds(ns))
			}
			lastTop[a] = n.Versions.Start
			if requested[a] == nil {
				requested[a] = make([]uint8, len(h.lastSeq[a]))
			}
			if n.IsPartial() {
				if n.Versions.Len() != 1 {
					t.Fatalf("partial need spans versions: %s", fmtNeed(n))
				}
				v := int(n.Versions.Start)
				m := rangesMask(n.Seqs)
				switch {
				case requested[a][v]&m != 0:
					t.Fatalf("%c requests %s twice (seqs %08b already requested)", x, fmtNeed(n), requested[a][v])
				case know[x][a][v]&m != 0:
					t.Fatalf("%c requests %s it holds (%08b)", x, fmtNeed(n), know[x][a][v])
				case know[x][a][v] == 0:
					t.Fatalf("%c requests seqs %s of a version it lacks entirely", x, fmtNeed(n))
				case know[y][a][v]&m != m:
					t.Fatalf("%c requests %s from %c which holds %08b", x, fmtNeed(n), y, know[y][a][v])
				}
				requested[a][v] |= m
				got[a][v] |= m
				continue
			}
			if n.Versions.Len() == 0 || n.Versions.Len() > maxVersions {
				t.Fatalf("need %s holds %d versions, max %d", fmtNeed(n), n.Versions.Len(), maxVersions)
			}
			for v := int(n.Versions.Start); v <= int(n.Versions.End); v++ {
				full := h.fullMask(a, v)
				switch {
				case requested[a][v] != 0:
					t.Fatalf("%c requests %c:%d twice", x, a, v)
				case know[x][a][v] != 0:
					t.Fatalf("%c requests %c:%d whole but holds %08b", x, a, v, know[x][a][v])
				case know[y][a][v] != full:
					t.Fatalf("%c requests %c:%d from %c which holds %08b", x, a, v, y, know[y][a][v])
				}
				requested[a][v] = full
				got[a][v] = full
			}
		}
	}
	if got, want := fmtOutstanding(p.Outstanding()), fmtOutstanding(refOutstanding(h, know, x, peers)); got != want {
		t.Fatalf("Outstanding of %c: got %q, want %q", x, got, want)
	}
	next[x] = got
	return planned
}

// refOutstanding is the naive reference for Planner.Outstanding.
func refOutstanding(h history, know map[byte]knowledge, x byte, peers []byte) map[patina.ActorID]uint64 {
	out := map[patina.ActorID]uint64{}
	for a, vs := range know[x] {
		if a == x {
			continue
		}
		head := func(k knowledge) int {
			for v := len(k[a]) - 1; v >= 1; v-- {
				if k[a][v] != 0 {
					return v
				}
			}
			return 0
		}
		top := head(know[x])
		for _, y := range peers {
			top = max(top, head(know[y]))
		}
		for v := 1; v <= top; v++ {
			full := h.fullMask(a, v)
			if vs[v] == full {
				continue
			}
			var supply uint8
			for _, y := range peers {
				m := know[y][a][v]
				if vs[v] == 0 && m != full {
					continue // gaps are only filled whole
				}
				supply |= m
			}
			if missing := full &^ vs[v]; missing&^supply != 0 {
				out[actor(a)]++
			}
		}
	}
	for a, n := range out {
		if n == 0 {
			delete(out, a)
		}
	}
	return out
}

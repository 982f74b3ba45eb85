package rangeset

import (
	"slices"
	"testing"

	"github.com/patinadb/patina"
	"pgregory.net/rapid"
)

// The model is a naive map of members over a small universe: two clusters of
// values, one at the bottom of uint64 and one at the top, so that the
// overflow edges at 0 and math.MaxUint64 are exercised. Ranges never span the
// clusters, so the model stays small and Len stays checkable.
const clusterSize = 40

type model map[uint64]bool

// universe lists every value the model can hold, ascending.
func universe() []uint64 {
	u := make([]uint64, 0, 2*clusterSize)
	for i := uint64(0); i < clusterSize; i++ {
		u = append(u, i)
	}
	for i := uint64(clusterSize); i > 0; i-- {
		u = append(u, max64-(i-1))
	}
	return u
}

// clusterRange maps (high, a, b) to a range inside one cluster. It is empty
// when b < a.
func clusterRange(high bool, a, b uint64) patina.Range {
	a, b = a%clusterSize, b%clusterSize
	if high {
		return patina.Range{Start: max64 - (clusterSize - 1) + a, End: max64 - (clusterSize - 1) + b}
	}
	return patina.Range{Start: a, End: b}
}

func (m model) insert(r patina.Range) {
	for v := r.Start; v <= r.End && r.Start <= r.End; v++ {
		m[v] = true
		if v == max64 {
			break
		}
	}
}

func (m model) remove(r patina.Range) {
	for v := r.Start; v <= r.End && r.Start <= r.End; v++ {
		delete(m, v)
		if v == max64 {
			break
		}
	}
}

// missing is Missing computed on the model: the maximal runs of universe
// values in within that are not members. Because ranges never span clusters,
// within also stays inside one cluster.
func (m model) missing(within patina.Range) []patina.Range {
	var gaps []patina.Range
	if within.End < within.Start {
		return nil
	}
	for v := within.Start; ; v++ {
		if !m[v] {
			if n := len(gaps); n > 0 && gaps[n-1].End+1 == v {
				gaps[n-1].End = v
			} else {
				gaps = append(gaps, patina.Range{Start: v, End: v})
			}
		}
		if v == within.End {
			return gaps
		}
	}
}

// checkModel fails tb unless s satisfies the invariants and holds exactly the
// members of m.
func checkModel(tb fataler, s *Set, m model) {
	tb.Helper()
	checkInvariants(tb, s)
	if got, want := s.Len(), uint64(len(m)); got != want {
		tb.Fatalf("Len = %d, want %d (set %v)", got, want, s)
	}
	if s.IsEmpty() != (len(m) == 0) {
		tb.Fatalf("IsEmpty = %v with %d members", s.IsEmpty(), len(m))
	}
	var lo, hi uint64
	first := true
	for _, v := range universe() {
		if got := s.Contains(v); got != m[v] {
			tb.Fatalf("Contains(%d) = %v, want %v (set %v)", v, got, m[v], s)
		}
		if m[v] {
			if first {
				lo, first = v, false
			}
			hi = v
		}
	}
	if mn, ok := s.Min(); ok != !first || mn != lo {
		tb.Fatalf("Min = %d, %v, want %d, %v", mn, ok, lo, !first)
	}
	if mx, ok := s.Max(); ok != !first || mx != hi {
		tb.Fatalf("Max = %d, %v, want %d, %v", mx, ok, hi, !first)
	}
}

func TestSet_Model(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s Set
		m := model{}
		other := model{}
		var o Set
		genRange := func(label string) patina.Range {
			return clusterRange(
				rapid.Bool().Draw(t, label+"High"),
				rapid.Uint64Range(0, clusterSize-1).Draw(t, label+"A"),
				rapid.Uint64Range(0, clusterSize-1).Draw(t, label+"B"),
			)
		}
		n := rapid.IntRange(1, 60).Draw(t, "ops")
		for range n {
			r := genRange("r")
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0, 1:
				s.Insert(r)
				m.insert(r)
			case 2:
				s.Remove(r)
				m.remove(r)
			case 3:
				o.Insert(r)
				other.insert(r)
			case 4:
				o.Remove(r)
				other.remove(r)
			}
			checkModel(t, &s, m)
			checkModel(t, &o, other)

			// ContainsRange and Missing against the model.
			q := genRange("q")
			gaps := s.Missing(q)
			if want := m.missing(q); !slices.Equal(gaps, want) {
				t.Fatalf("Missing(%v) = %v, want %v (set %v)", q, gaps, want, &s)
			}
			if got, want := s.ContainsRange(q), len(gaps) == 0; got != want {
				t.Fatalf("ContainsRange(%v) = %v, want %v (set %v)", q, got, want, &s)
			}
		}

		and, andM := s.Intersect(&o), model{}
		sub, subM := s.Subtract(&o), model{}
		for v := range m {
			if other[v] {
				andM[v] = true
			} else {
				subM[v] = true
			}
		}
		checkModel(t, &and, andM)
		checkModel(t, &sub, subM)
		fromRanges := FromRanges(s.Ranges())
		if !fromRanges.Equal(&s) {
			t.Fatalf("FromRanges(Ranges()) = %v, want %v", &fromRanges, &s)
		}
		clone := s.Clone()
		if !clone.Equal(&s) {
			t.Fatalf("Clone = %v, want %v", &clone, &s)
		}
		same := len(m) == len(other)
		for v := range m {
			same = same && other[v]
		}
		if got := s.Equal(&o); got != same {
			t.Fatalf("Equal(%v, %v) = %v, want %v", &s, &o, got, same)
		}
	})
}

// FuzzSet decodes the input into Insert and Remove operations, three bytes
// each (op+cluster, start, end), and checks the set against the model after
// every one.
func FuzzSet(f *testing.F) {
	f.Add([]byte{0, 1, 3, 0, 4, 5})
	f.Add([]byte{0, 0, 39, 2, 5, 9, 1, 30, 39, 3, 39, 39})
	f.Add([]byte{1, 0, 39, 3, 0, 0, 3, 39, 39, 2, 10, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Set
		m := model{}
		for ; len(data) >= 3; data = data[3:] {
			op, high := data[0]&2 != 0, data[0]&1 != 0
			r := clusterRange(high, uint64(data[1]), uint64(data[2]))
			if op {
				s.Remove(r)
				m.remove(r)
			} else {
				s.Insert(r)
				m.insert(r)
			}
			checkModel(t, &s, m)
		}
	})
}

package rangeset

import (
	"math"
	"slices"
	"testing"

	"github.com/patinadb/patina"
)

const max64 = math.MaxUint64

func rg(start, end uint64) patina.Range { return patina.Range{Start: start, End: end} }

// fataler is the part of testing.TB the checks need; *rapid.T has it too.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// checkInvariants fails tb unless s's ranges are non-empty, sorted, disjoint
// and non-adjacent.
func checkInvariants(tb fataler, s *Set) {
	tb.Helper()
	for i, r := range s.rs {
		if r.End < r.Start {
			tb.Fatalf("range %d %v is empty in %v", i, r, s)
		}
		if i > 0 {
			prev := s.rs[i-1]
			if prev.End >= r.Start || prev.End+1 == r.Start {
				tb.Fatalf("ranges %d %v and %d %v overlap or touch in %v", i-1, prev, i, r, s)
			}
		}
	}
}

func TestSet_ZeroValue(t *testing.T) {
	var s Set
	if !s.IsEmpty() || s.Len() != 0 || s.Contains(0) || s.Ranges() != nil {
		t.Fatalf("zero Set not empty: %v", &s)
	}
	if _, ok := s.Min(); ok {
		t.Fatal("Min of empty set reported ok")
	}
	if _, ok := s.Max(); ok {
		t.Fatal("Max of empty set reported ok")
	}
	if !s.ContainsRange(rg(5, 4)) {
		t.Fatal("empty range not contained in empty set")
	}
	if got := s.Missing(rg(3, 7)); !slices.Equal(got, []patina.Range{rg(3, 7)}) {
		t.Fatalf("Missing = %v, want [3..=7]", got)
	}
	if got := s.String(); got != "{}" {
		t.Fatalf("String = %q", got)
	}
}

func TestSet_Insert(t *testing.T) {
	tests := []struct {
		name string
		in   []patina.Range
		want []patina.Range
	}{
		{"single", []patina.Range{rg(1, 3)}, []patina.Range{rg(1, 3)}},
		{"empty range ignored", []patina.Range{rg(5, 4)}, nil},
		{"adjacent merge", []patina.Range{rg(1, 3), rg(4, 5)}, []patina.Range{rg(1, 5)}},
		{"adjacent merge left", []patina.Range{rg(4, 5), rg(1, 3)}, []patina.Range{rg(1, 5)}},
		{"gap kept", []patina.Range{rg(1, 3), rg(5, 6)}, []patina.Range{rg(1, 3), rg(5, 6)}},
		{"fill gap", []patina.Range{rg(1, 3), rg(5, 6), rg(4, 4)}, []patina.Range{rg(1, 6)}},
		{"overlap", []patina.Range{rg(1, 5), rg(3, 8)}, []patina.Range{rg(1, 8)}},
		{"contained", []patina.Range{rg(1, 10), rg(3, 4)}, []patina.Range{rg(1, 10)}},
		{"covers many", []patina.Range{rg(2, 3), rg(6, 7), rg(10, 12), rg(20, 21), rg(1, 15)}, []patina.Range{rg(1, 15), rg(20, 21)}},
		{"unsorted", []patina.Range{rg(20, 21), rg(1, 2), rg(10, 11)}, []patina.Range{rg(1, 2), rg(10, 11), rg(20, 21)}},
		{"zero", []patina.Range{rg(0, 0), rg(1, 1)}, []patina.Range{rg(0, 1)}},
		{"max", []patina.Range{rg(max64, max64), rg(max64-2, max64-1)}, []patina.Range{rg(max64-2, max64)}},
		{"max not adjacent", []patina.Range{rg(max64, max64), rg(max64-3, max64-2)}, []patina.Range{rg(max64-3, max64-2), rg(max64, max64)}},
		{"everything", []patina.Range{rg(5, 6), rg(0, max64)}, []patina.Range{rg(0, max64)}},
		{"idempotent", []patina.Range{rg(3, 4), rg(3, 4)}, []patina.Range{rg(3, 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := FromRanges(tt.in)
			checkInvariants(t, &s)
			if got := s.Ranges(); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSet_Remove(t *testing.T) {
	tests := []struct {
		name   string
		start  []patina.Range
		remove patina.Range
		want   []patina.Range
	}{
		{"from empty", nil, rg(1, 3), nil},
		{"empty range", []patina.Range{rg(1, 5)}, rg(4, 3), []patina.Range{rg(1, 5)}},
		{"whole", []patina.Range{rg(1, 5)}, rg(1, 5), nil},
		{"superset", []patina.Range{rg(2, 4), rg(6, 8)}, rg(0, 10), nil},
		{"split", []patina.Range{rg(1, 9)}, rg(4, 5), []patina.Range{rg(1, 3), rg(6, 9)}},
		{"left edge", []patina.Range{rg(1, 9)}, rg(0, 3), []patina.Range{rg(4, 9)}},
		{"right edge", []patina.Range{rg(1, 9)}, rg(7, 12), []patina.Range{rg(1, 6)}},
		{"in gap", []patina.Range{rg(1, 3), rg(7, 9)}, rg(4, 6), []patina.Range{rg(1, 3), rg(7, 9)}},
		{"across ranges", []patina.Range{rg(1, 3), rg(5, 6), rg(8, 10)}, rg(2, 9), []patina.Range{rg(1, 1), rg(10, 10)}},
		{"zero", []patina.Range{rg(0, 5)}, rg(0, 0), []patina.Range{rg(1, 5)}},
		{"max", []patina.Range{rg(max64-5, max64)}, rg(max64, max64), []patina.Range{rg(max64-5, max64-1)}},
		{"split everything", []patina.Range{rg(0, max64)}, rg(1, max64-1), []patina.Range{rg(0, 0), rg(max64, max64)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := FromRanges(tt.start)
			s.Remove(tt.remove)
			checkInvariants(t, &s)
			if got := s.Ranges(); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSet_Contains(t *testing.T) {
	s := FromRanges([]patina.Range{rg(0, 0), rg(3, 5), rg(9, 9), rg(max64, max64)})
	for v, want := range map[uint64]bool{0: true, 1: false, 2: false, 3: true, 5: true, 6: false, 8: false, 9: true, 10: false, max64 - 1: false, max64: true} {
		if got := s.Contains(v); got != want {
			t.Errorf("Contains(%d) = %v, want %v", v, got, want)
		}
	}
}

func TestSet_ContainsRange(t *testing.T) {
	s := FromRanges([]patina.Range{rg(3, 5), rg(9, 12)})
	tests := []struct {
		r    patina.Range
		want bool
	}{
		{rg(3, 5), true},
		{rg(4, 4), true},
		{rg(9, 12), true},
		{rg(3, 6), false},
		{rg(2, 4), false},
		{rg(5, 9), false},
		{rg(13, 14), false},
		{rg(0, 0), false},
		{rg(7, 6), true}, // empty
	}
	for _, tt := range tests {
		t.Run(tt.r.String(), func(t *testing.T) {
			if got := s.ContainsRange(tt.r); got != tt.want {
				t.Fatalf("ContainsRange(%v) = %v, want %v", tt.r, got, tt.want)
			}
		})
	}
}

func TestSet_LenMinMax(t *testing.T) {
	tests := []struct {
		name     string
		in       []patina.Range
		len      uint64
		min, max uint64
	}{
		{"one", []patina.Range{rg(7, 7)}, 1, 7, 7},
		{"two", []patina.Range{rg(1, 3), rg(10, 19)}, 13, 1, 19},
		{"top", []patina.Range{rg(max64-9, max64)}, 10, max64 - 9, max64},
		{"all but zero", []patina.Range{rg(1, max64)}, max64, 1, max64},
		{"all saturates", []patina.Range{rg(0, max64)}, max64, 0, max64},
		{"split all", []patina.Range{rg(0, 5), rg(7, max64)}, max64, 0, max64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := FromRanges(tt.in)
			if got := s.Len(); got != tt.len {
				t.Errorf("Len = %d, want %d", got, tt.len)
			}
			if got, ok := s.Min(); !ok || got != tt.min {
				t.Errorf("Min = %d, %v, want %d", got, ok, tt.min)
			}
			if got, ok := s.Max(); !ok || got != tt.max {
				t.Errorf("Max = %d, %v, want %d", got, ok, tt.max)
			}
		})
	}
}

func TestSet_Missing(t *testing.T) {
	s := FromRanges([]patina.Range{rg(3, 5), rg(9, 12), rg(20, 20)})
	tests := []struct {
		within patina.Range
		want   []patina.Range
	}{
		{rg(1, 25), []patina.Range{rg(1, 2), rg(6, 8), rg(13, 19), rg(21, 25)}},
		{rg(3, 5), nil},
		{rg(4, 10), []patina.Range{rg(6, 8)}},
		{rg(6, 8), []patina.Range{rg(6, 8)}},
		{rg(0, 3), []patina.Range{rg(0, 2)}},
		{rg(12, 20), []patina.Range{rg(13, 19)}},
		{rg(21, max64), []patina.Range{rg(21, max64)}},
		{rg(8, 7), nil},
		{rg(0, max64), []patina.Range{rg(0, 2), rg(6, 8), rg(13, 19), rg(21, max64)}},
	}
	for _, tt := range tests {
		t.Run(tt.within.String(), func(t *testing.T) {
			if got := s.Missing(tt.within); !slices.Equal(got, tt.want) {
				t.Fatalf("Missing(%v) = %v, want %v", tt.within, got, tt.want)
			}
		})
	}
	full := FromRanges([]patina.Range{rg(0, max64)})
	if got := full.Missing(rg(0, max64)); got != nil {
		t.Fatalf("full set Missing = %v, want nil", got)
	}
	top := FromRanges([]patina.Range{rg(max64, max64)})
	if got := top.Missing(rg(max64-2, max64)); !slices.Equal(got, []patina.Range{rg(max64-2, max64-1)}) {
		t.Fatalf("top Missing = %v", got)
	}
}

func TestSet_IntersectSubtract(t *testing.T) {
	tests := []struct {
		name     string
		a, b     []patina.Range
		and, sub []patina.Range
	}{
		{"empty", nil, []patina.Range{rg(1, 2)}, nil, nil},
		{"disjoint", []patina.Range{rg(1, 2)}, []patina.Range{rg(4, 5)}, nil, []patina.Range{rg(1, 2)}},
		{"same", []patina.Range{rg(1, 2), rg(5, 6)}, []patina.Range{rg(1, 2), rg(5, 6)}, []patina.Range{rg(1, 2), rg(5, 6)}, nil},
		{"one spans many", []patina.Range{rg(0, 20)}, []patina.Range{rg(2, 3), rg(6, 7), rg(19, 25)},
			[]patina.Range{rg(2, 3), rg(6, 7), rg(19, 20)}, []patina.Range{rg(0, 1), rg(4, 5), rg(8, 18)}},
		{"interleaved", []patina.Range{rg(1, 4), rg(8, 12)}, []patina.Range{rg(3, 9), rg(11, 15)},
			[]patina.Range{rg(3, 4), rg(8, 9), rg(11, 12)}, []patina.Range{rg(1, 2), rg(10, 10)}},
		{"max", []patina.Range{rg(0, max64)}, []patina.Range{rg(max64, max64)}, []patina.Range{rg(max64, max64)}, []patina.Range{rg(0, max64-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := FromRanges(tt.a), FromRanges(tt.b)
			and := a.Intersect(&b)
			checkInvariants(t, &and)
			if got := and.Ranges(); !slices.Equal(got, tt.and) {
				t.Errorf("Intersect = %v, want %v", got, tt.and)
			}
			and2 := b.Intersect(&a)
			if !and.Equal(&and2) {
				t.Errorf("Intersect not symmetric: %v vs %v", &and, &and2)
			}
			sub := a.Subtract(&b)
			checkInvariants(t, &sub)
			if got := sub.Ranges(); !slices.Equal(got, tt.sub) {
				t.Errorf("Subtract = %v, want %v", got, tt.sub)
			}
			if orig := FromRanges(tt.a); !a.Equal(&orig) {
				t.Errorf("Subtract modified its receiver: %v", &a)
			}
		})
	}
}

func TestSet_CloneIndependent(t *testing.T) {
	s := FromRanges([]patina.Range{rg(1, 5), rg(10, 12)})
	c := s.Clone()
	c.Insert(rg(6, 9))
	c.Remove(rg(1, 1))
	if got := s.Ranges(); !slices.Equal(got, []patina.Range{rg(1, 5), rg(10, 12)}) {
		t.Fatalf("mutating the clone changed the original: %v", got)
	}
	r := s.Ranges()
	r[0] = rg(100, 200)
	if s.Contains(150) {
		t.Fatal("mutating Ranges() changed the set")
	}
	if s.Equal(&c) {
		t.Fatal("Equal reported different sets equal")
	}
}

func TestSet_String(t *testing.T) {
	s := FromRanges([]patina.Range{rg(1, 3), rg(7, 7)})
	if got, want := s.String(), "{1..=3, 7..=7}"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

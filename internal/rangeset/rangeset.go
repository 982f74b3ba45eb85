// Package rangeset holds sets of uint64 values (versions, seqs) as sorted,
// disjoint, non-adjacent inclusive ranges.
//
// The agent keeps one Set per actor for the versions it has seen (heads and
// gaps) and one per partially received version for the seqs that arrived.
// Such sets stay small: a handful of ranges, because gaps close quickly. A
// sorted slice searched with binary search is therefore the whole data
// structure.
//
// Invariant, checked by the tests after every operation: for consecutive
// ranges a, b in the set, a.Start <= a.End and a.End+1 < b.Start (no overlap,
// no adjacency: inserting 1..3 and 4..5 gives 1..5). The range ending at
// math.MaxUint64 is handled without overflow.
//
// A Set is a value holding a slice: assigning one Set to another shares the
// slice, so use Clone before mutating a copy. A Set is not safe for
// concurrent use.
package rangeset

import (
	"math"
	"sort"
	"strings"

	"github.com/patinadb/patina"
)

// Set is a set of uint64 values. The zero value is an empty set ready to use.
type Set struct {
	rs []patina.Range // sorted, disjoint, non-adjacent, none empty
}

// FromRanges returns the set holding every value of the given ranges. The
// ranges may overlap, touch, come in any order or be empty.
func FromRanges(rs []patina.Range) Set {
	var s Set
	for _, r := range rs {
		s.Insert(r)
	}
	return s
}

// firstEndAtLeast returns the index of the first range whose End >= v, or
// len(s.rs).
func (s *Set) firstEndAtLeast(v uint64) int {
	return sort.Search(len(s.rs), func(i int) bool { return s.rs[i].End >= v })
}

// firstStartAbove returns the index of the first range whose Start > v, or
// len(s.rs).
func (s *Set) firstStartAbove(v uint64) int {
	return sort.Search(len(s.rs), func(i int) bool { return s.rs[i].Start > v })
}

// Insert adds every value of r. An empty r (End < Start) is a no-op.
func (s *Set) Insert(r patina.Range) {
	if r.End < r.Start {
		return
	}
	// Ranges that overlap or touch r: End >= r.Start-1 and Start <= r.End+1,
	// with both bounds saturating instead of overflowing.
	lo, hi := r.Start, r.End
	if lo > 0 {
		lo--
	}
	if hi < math.MaxUint64 {
		hi++
	}
	i := s.firstEndAtLeast(lo)
	j := s.firstStartAbove(hi)
	if i < j {
		r.Start = min(r.Start, s.rs[i].Start)
		r.End = max(r.End, s.rs[j-1].End)
	}
	s.rs = replace(s.rs, i, j, r)
}

// Remove deletes every value of r. An empty r (End < Start) is a no-op.
func (s *Set) Remove(r patina.Range) {
	if r.End < r.Start {
		return
	}
	i := s.firstEndAtLeast(r.Start)
	j := s.firstStartAbove(r.End)
	if i >= j {
		return // nothing overlaps r
	}
	var keep [2]patina.Range
	n := 0
	if first := s.rs[i]; first.Start < r.Start {
		keep[n] = patina.Range{Start: first.Start, End: r.Start - 1}
		n++
	}
	if last := s.rs[j-1]; last.End > r.End {
		keep[n] = patina.Range{Start: r.End + 1, End: last.End}
		n++
	}
	s.rs = replace(s.rs, i, j, keep[:n]...)
}

// replace returns rs with rs[i:j] replaced by with. Unlike slices.Replace it
// never keeps stale elements visible past the new length.
func replace(rs []patina.Range, i, j int, with ...patina.Range) []patina.Range {
	if len(with) == j-i {
		copy(rs[i:], with)
		return rs
	}
	out := make([]patina.Range, 0, len(rs)-(j-i)+len(with))
	out = append(out, rs[:i]...)
	out = append(out, with...)
	out = append(out, rs[j:]...)
	return out
}

// Contains reports whether v is in the set.
func (s *Set) Contains(v uint64) bool {
	i := s.firstEndAtLeast(v)
	return i < len(s.rs) && s.rs[i].Start <= v
}

// ContainsRange reports whether every value of r is in the set. An empty r is
// always contained.
func (s *Set) ContainsRange(r patina.Range) bool {
	if r.End < r.Start {
		return true
	}
	i := s.firstEndAtLeast(r.Start)
	return i < len(s.rs) && s.rs[i].Start <= r.Start && s.rs[i].End >= r.End
}

// Ranges returns a copy of the set's ranges, sorted, disjoint and
// non-adjacent. It returns nil for an empty set.
func (s *Set) Ranges() []patina.Range {
	if len(s.rs) == 0 {
		return nil
	}
	return append([]patina.Range(nil), s.rs...)
}

// NumRanges returns the number of ranges in the set.
func (s *Set) NumRanges() int { return len(s.rs) }

// Len returns the number of values in the set. It saturates at
// math.MaxUint64 for the one set that holds 2^64 values (0..=MaxUint64).
func (s *Set) Len() uint64 {
	var n uint64
	for _, r := range s.rs {
		d := r.End - r.Start // fits: the range holds d+1 values
		if n+d < n || n+d == math.MaxUint64 {
			return math.MaxUint64
		}
		n += d + 1
	}
	return n
}

// IsEmpty reports whether the set holds no value.
func (s *Set) IsEmpty() bool { return len(s.rs) == 0 }

// Clone returns an independent copy of the set.
func (s *Set) Clone() Set { return Set{rs: s.Ranges()} }

// Min returns the smallest value in the set; ok is false if it is empty.
func (s *Set) Min() (v uint64, ok bool) {
	if len(s.rs) == 0 {
		return 0, false
	}
	return s.rs[0].Start, true
}

// Max returns the largest value in the set; ok is false if it is empty.
func (s *Set) Max() (v uint64, ok bool) {
	if len(s.rs) == 0 {
		return 0, false
	}
	return s.rs[len(s.rs)-1].End, true
}

// Missing returns the sub-ranges of within that hold no value of the set
// (the gaps), in ascending order. It returns nil if within is empty or fully
// contained.
func (s *Set) Missing(within patina.Range) []patina.Range {
	if within.End < within.Start {
		return nil
	}
	var gaps []patina.Range
	next := within.Start // lowest value of within not yet accounted for
	for i := s.firstEndAtLeast(within.Start); i < len(s.rs); i++ {
		r := s.rs[i]
		if r.Start > within.End {
			break
		}
		if r.Start > next {
			gaps = append(gaps, patina.Range{Start: next, End: r.Start - 1})
		}
		if r.End >= within.End {
			return gaps
		}
		next = r.End + 1 // r.End < within.End <= MaxUint64: no overflow
	}
	return append(gaps, patina.Range{Start: next, End: within.End})
}

// Intersect returns the values present in both s and other.
func (s *Set) Intersect(other *Set) Set {
	var out []patina.Range
	a, b := s.rs, other.rs
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo := max(a[i].Start, b[j].Start)
		hi := min(a[i].End, b[j].End)
		if lo <= hi {
			out = append(out, patina.Range{Start: lo, End: hi})
		}
		// Advance whichever range ends first; the other may still overlap
		// the next range of the first.
		if a[i].End < b[j].End {
			i++
		} else {
			j++
		}
	}
	return Set{rs: out}
}

// Subtract returns the values of s that are not in other.
func (s *Set) Subtract(other *Set) Set {
	out := s.Clone()
	for _, r := range other.rs {
		out.Remove(r)
		if len(out.rs) == 0 {
			break
		}
	}
	return out
}

// Equal reports whether s and other hold the same values.
func (s *Set) Equal(other *Set) bool {
	if len(s.rs) != len(other.rs) {
		return false
	}
	for i := range s.rs {
		if s.rs[i] != other.rs[i] {
			return false
		}
	}
	return true
}

// String formats the set as "{1..=3, 7..=7}", the range notation of
// patina.Range.
func (s *Set) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, r := range s.rs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.String())
	}
	b.WriteByte('}')
	return b.String()
}

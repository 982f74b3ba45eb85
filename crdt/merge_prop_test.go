package crdt

import (
	"cmp"
	"math"
	"math/big"
	"slices"
	"testing"

	"github.com/patinadb/patina"
	"pgregory.net/rapid"
)

// Interesting numbers: extremes, the edges of exact float64 integers (2^53)
// and of int64 (2^63), signed zeros, infinities, NaNs.
var (
	specialInts = []int64{
		0, 1, -1, 2, 3, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1,
		1 << 53, 1<<53 + 1, 1<<53 - 1, -(1 << 53), -(1 << 53) - 1, 1 << 62, -(1 << 62),
	}
	specialFloats = []float64{
		0, math.Copysign(0, -1), 1, -1, 0.5, -0.5, 1.5, -1.5, 2, 3,
		math.Inf(1), math.Inf(-1), math.NaN(), math.Float64frombits(0xfff8000000000001),
		1 << 53, 1<<53 + 2, math.Nextafter(1<<53, 0), -(1 << 53),
		1 << 63, -(1 << 63), math.Nextafter(1<<63, 0), math.Nextafter(-(1 << 63), math.Inf(-1)),
		math.Nextafter(-(1 << 63), 0), 1 << 62, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
	}
)

// genValue draws values of every storage class, biased towards the edges.
func genValue() *rapid.Generator[patina.Value] {
	return rapid.Custom(func(t *rapid.T) patina.Value {
		switch rapid.IntRange(0, 8).Draw(t, "kind") {
		case 0:
			return patina.Null()
		case 1:
			return patina.Int(rapid.SampledFrom(specialInts).Draw(t, "int"))
		case 2:
			return patina.Int(rapid.Int64().Draw(t, "int"))
		case 3:
			return patina.Real(rapid.SampledFrom(specialFloats).Draw(t, "real"))
		case 4:
			// A float near an integer: the exact-comparison edge.
			i := rapid.SampledFrom(specialInts).Draw(t, "base")
			f := float64(i)
			switch rapid.IntRange(0, 2).Draw(t, "nudge") {
			case 1:
				f = math.Nextafter(f, math.Inf(1))
			case 2:
				f = math.Nextafter(f, math.Inf(-1))
			}
			return patina.Real(f)
		case 5:
			return patina.Real(math.Float64frombits(rapid.Uint64().Draw(t, "bits")))
		case 6:
			return patina.Real(rapid.Float64().Draw(t, "real"))
		case 7:
			return patina.Text(string(rapid.SliceOfN(rapid.ByteRange('a', 'c'), 0, 3).Draw(t, "text")))
		default:
			b := rapid.SliceOfN(rapid.ByteRange(0, 2), 0, 3).Draw(t, "blob")
			if len(b) == 0 && rapid.Bool().Draw(t, "nil") {
				b = nil
			}
			return patina.Blob(b)
		}
	})
}

// refCompare is a slow, independent statement of CompareValues' order: it
// compares numbers as exact rationals with math/big.
func refCompare(a, b patina.Value) int {
	rank := map[patina.ValueType]int{patina.TypeNull: 0, patina.TypeInteger: 1, patina.TypeReal: 1, patina.TypeText: 2, patina.TypeBlob: 3}
	if c := cmp.Compare(rank[a.Type], rank[b.Type]); c != 0 {
		return c
	}
	switch a.Type {
	case patina.TypeNull:
		return 0
	case patina.TypeText, patina.TypeBlob:
		return cmp.Compare(string(a.Bytes), string(b.Bytes))
	}
	// Numbers: (tier, exact value, REAL before INTEGER, signed bits).
	type key struct {
		tier int // 0 NaN, 1 -Inf, 2 finite, 3 +Inf
		rat  *big.Rat
		kind int // 0 REAL, 1 INTEGER
		bits int64
	}
	keyOf := func(v patina.Value) key {
		if v.Type == patina.TypeInteger {
			return key{2, new(big.Rat).SetInt64(v.Int), 1, 0}
		}
		bits := int64(math.Float64bits(v.Float))
		switch {
		case math.IsNaN(v.Float):
			return key{0, new(big.Rat), 0, bits}
		case math.IsInf(v.Float, -1):
			return key{1, new(big.Rat), 0, bits}
		case math.IsInf(v.Float, 1):
			return key{3, new(big.Rat), 0, bits}
		}
		return key{2, new(big.Rat).SetFloat64(v.Float), 0, bits}
	}
	ka, kb := keyOf(a), keyOf(b)
	if c := cmp.Compare(ka.tier, kb.tier); c != 0 {
		return c
	}
	if c := ka.rat.Cmp(kb.rat); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.kind, kb.kind); c != 0 {
		return c
	}
	return cmp.Compare(ka.bits, kb.bits)
}

func TestCompareValues_TotalOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vs := rapid.SliceOfN(genValue(), 1, 12).Draw(t, "values")
		for _, a := range vs {
			for _, b := range vs {
				c := CompareValues(a, b)
				if c < -1 || c > 1 {
					t.Fatalf("CompareValues(%v, %v) = %d, want -1, 0 or 1", a, b, c)
				}
				if want := refCompare(a, b); c != want {
					t.Fatalf("CompareValues(%v, %v) = %d, reference says %d", a, b, c, want)
				}
				if back := CompareValues(b, a); back != -c {
					t.Fatalf("not antisymmetric: CompareValues(%v, %v) = %d, reverse %d", a, b, c, back)
				}
				if (c == 0) != a.Equal(b) {
					t.Fatalf("CompareValues(%v, %v) = %d but Equal = %v", a, b, c, a.Equal(b))
				}
			}
		}
		// Transitivity: after sorting, every earlier value is <= every later.
		slices.SortFunc(vs, CompareValues)
		for i := range vs {
			for j := i + 1; j < len(vs); j++ {
				if CompareValues(vs[i], vs[j]) > 0 {
					t.Fatalf("not transitive: sorted %v has %v before %v", vs, vs[i], vs[j])
				}
			}
		}
	})
}

// TestCompareValues_IntRealExact aims at the hard pairs: an INTEGER and a
// REAL within a few units of it, where converting the integer to float64
// would round (above 2^53) or overflow (near 2^63).
func TestCompareValues_IntRealExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var i int64
		switch rapid.IntRange(0, 2).Draw(t, "intKind") {
		case 0:
			i = rapid.SampledFrom(specialInts).Draw(t, "int")
		case 1:
			i = rapid.Int64().Draw(t, "int")
		default:
			// Magnitudes between 2^53 and 2^63, where float64 spacing > 1.
			shift := rapid.IntRange(53, 62).Draw(t, "shift")
			i = int64(1)<<shift + rapid.Int64Range(-4, 4).Draw(t, "offset")
			if rapid.Bool().Draw(t, "negative") {
				i = -i
			}
		}
		f := float64(i)
		for range rapid.IntRange(0, 3).Draw(t, "ulps") {
			if rapid.Bool().Draw(t, "up") {
				f = math.Nextafter(f, math.Inf(1))
			} else {
				f = math.Nextafter(f, math.Inf(-1))
			}
		}
		a, b := patina.Int(i), patina.Real(f)
		if got, want := CompareValues(a, b), refCompare(a, b); got != want {
			t.Fatalf("CompareValues(%d, %v) = %d, reference says %d", i, f, got, want)
		}
		if got, want := CompareValues(b, a), refCompare(b, a); got != want {
			t.Fatalf("CompareValues(%v, %d) = %d, reference says %d", f, i, got, want)
		}
	})
}

// genCell draws cells from small pools so that ties at every level happen.
func genCell() *rapid.Generator[Cell] {
	sites := []patina.ActorID{siteA, siteB, siteC}
	values := []patina.Value{
		patina.Null(), patina.Int(1), patina.Real(1), patina.Int(2), patina.Real(math.Copysign(0, -1)),
		patina.Real(0), patina.Text("started"), patina.Text("destroyed"), patina.Blob([]byte("started")),
	}
	return rapid.Custom(func(t *rapid.T) Cell {
		return Cell{
			ColVersion: rapid.Int64Range(1, 3).Draw(t, "colVersion"),
			Value:      rapid.SampledFrom(values).Draw(t, "value"),
			Site:       rapid.SampledFrom(sites).Draw(t, "site"),
		}
	})
}

func sameCell(a, b Cell) bool {
	return a.ColVersion == b.ColVersion && a.Value.Equal(b.Value) && a.Site == b.Site
}

func TestCellWins_StrictOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genCell().Draw(t, "a"), genCell().Draw(t, "b")
		ab, ba := CellWins(a, b), CellWins(b, a)
		if ab && ba {
			t.Fatalf("both win: %+v and %+v", a, b)
		}
		if same := sameCell(a, b); same == (ab || ba) {
			t.Fatalf("identical=%v but CellWins a>b %v, b>a %v: %+v, %+v", same, ab, ba, a, b)
		}
	})
}

// mergeCells folds cells into one winner, the way apply does cell by cell.
func mergeCells(cells []Cell) Cell {
	w := cells[0]
	for _, c := range cells[1:] {
		if CellWins(c, w) {
			w = c
		}
	}
	return w
}

func TestCellWins_MergeConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cells := rapid.SliceOfN(genCell(), 1, 10).Draw(t, "cells")
		want := mergeCells(cells)
		// Order does not matter (commutative, associative).
		perm := rapid.Permutation(cells).Draw(t, "perm")
		if got := mergeCells(perm); !sameCell(got, want) {
			t.Fatalf("order changed the winner: %+v vs %+v", got, want)
		}
		// Duplicates do not matter (idempotent).
		dup := append(slices.Clone(perm), cells...)
		if got := mergeCells(dup); !sameCell(got, want) {
			t.Fatalf("duplicates changed the winner: %+v vs %+v", got, want)
		}
		// The winner is the maximum: nothing beats it.
		for _, c := range cells {
			if CellWins(c, want) {
				t.Fatalf("%+v beats the winner %+v", c, want)
			}
		}
	})
}

// row is a minimal reference of how a replica applies ClassifyCL, CellWins
// and SentinelWins to one row's clocks. It exists to check that the
// decisions converge; the sqlite package does the same against its tables.
type row struct {
	cl       int64
	sentinel patina.ActorID // site of the sentinel clock at cl; zero if only columns arrived
	cols     map[string]Cell
}

// change is one incoming change: a sentinel (Column == "") or a column.
type change struct {
	cl     int64
	column string
	cell   Cell
}

func (r *row) apply(ch change) {
	switch ClassifyCL(ch.cl, r.cl) {
	case RowIgnore:
		return
	case RowDelete:
		r.cl, r.cols, r.sentinel = ch.cl, nil, ch.cell.Site
		return
	case RowResurrect:
		r.cl, r.cols, r.sentinel = ch.cl, nil, patina.ActorID{}
	}
	if ch.column == "" {
		if SentinelWins(ch.cell.Site, r.sentinel) {
			r.sentinel = ch.cell.Site
		}
		return
	}
	if cur, ok := r.cols[ch.column]; !ok || CellWins(ch.cell, cur) {
		if r.cols == nil {
			r.cols = map[string]Cell{}
		}
		r.cols[ch.column] = ch.cell
	}
}

func (r *row) equal(o *row) bool {
	if r.cl != o.cl || r.sentinel != o.sentinel || len(r.cols) != len(o.cols) {
		return false
	}
	for k, c := range r.cols {
		if oc, ok := o.cols[k]; !ok || !sameCell(c, oc) {
			return false
		}
	}
	return true
}

func TestMerge_RowConverges(t *testing.T) {
	genChange := rapid.Custom(func(t *rapid.T) change {
		cl := rapid.Int64Range(1, 5).Draw(t, "cl")
		cell := genCell().Draw(t, "cell")
		if !IsAlive(cl) || rapid.IntRange(0, 3).Draw(t, "sentinel") == 0 {
			return change{cl: cl, cell: Cell{ColVersion: cl, Site: cell.Site}} // inserts and deletes
		}
		return change{cl: cl, column: rapid.SampledFrom([]string{"a", "b"}).Draw(t, "column"), cell: cell}
	})
	rapid.Check(t, func(t *rapid.T) {
		changes := rapid.SliceOfN(genChange, 1, 12).Draw(t, "changes")
		var want row
		for _, ch := range changes {
			want.apply(ch)
		}
		var got row
		for _, ch := range rapid.Permutation(changes).Draw(t, "perm") {
			got.apply(ch)
		}
		for _, ch := range rapid.Permutation(changes).Draw(t, "again") {
			got.apply(ch) // redelivery changes nothing
		}
		if !got.equal(&want) {
			t.Fatalf("replicas diverged:\n%+v\n%+v", got, want)
		}
		if want.cl != slices.MaxFunc(changes, func(a, b change) int { return cmp.Compare(a.cl, b.cl) }).cl {
			t.Fatalf("row cl %d is not the highest seen", want.cl)
		}
		if !IsAlive(want.cl) && len(want.cols) != 0 {
			t.Fatalf("deleted row kept column clocks: %+v", want)
		}
	})
}

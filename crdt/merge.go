package crdt

import (
	"bytes"
	"cmp"
	"fmt"
	"math"

	"github.com/patinadb/patina"
)

// CompareValues orders two SQLite values for merge tie-breaks: NULL lowest,
// then INTEGER and REAL compared numerically, then TEXT (bytewise), then BLOB
// (bytewise). It returns -1, 0 or +1.
//
// It is a total order, consistent with patina.Value.Equal (0 exactly when
// a.Equal(b)): an INTEGER and a REAL that are numerically equal order
// REAL < INTEGER, and two REALs that are numerically equal (0.0 and -0.0)
// order by their IEEE bits read as signed integers (-0.0 < 0.0). Integers and
// reals compare exactly: int64 9007199254740993 is larger than the float
// 9007199254740992.0, though converting it to float64 would make them equal.
//
// NaN is refused before it reaches a merge (patina.Value.Validate) but does
// not panic here: it orders below every other REAL and every INTEGER, and
// NaNs order among themselves by their bits as signed integers. Values of an
// unknown type order above BLOB, by type number.
func CompareValues(a, b patina.Value) int {
	if ca, cb := class(a.Type), class(b.Type); ca != cb {
		return cmp.Compare(ca, cb)
	}
	switch a.Type {
	case patina.TypeNull:
		return 0
	case patina.TypeInteger:
		switch b.Type {
		case patina.TypeInteger:
			return cmp.Compare(a.Int, b.Int)
		case patina.TypeReal:
			return compareIntReal(a.Int, b.Float)
		}
	case patina.TypeReal:
		switch b.Type {
		case patina.TypeInteger:
			return -compareIntReal(b.Int, a.Float)
		case patina.TypeReal:
			return compareReals(a.Float, b.Float)
		}
	case patina.TypeText, patina.TypeBlob:
		return bytes.Compare(a.Bytes, b.Bytes)
	}
	return 0 // same unknown type: Equal reports these equal too
}

// class ranks the storage classes: INTEGER and REAL share one.
func class(t patina.ValueType) int {
	switch t {
	case patina.TypeNull:
		return 0
	case patina.TypeInteger, patina.TypeReal:
		return 1
	case patina.TypeText:
		return 2
	case patina.TypeBlob:
		return 3
	}
	return 4 + int(t)
}

// compareReals orders two REALs numerically; NaN lowest; numerically equal
// values (only 0.0 and -0.0 differ in bits) and NaNs by signed bits.
func compareReals(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return cmp.Compare(int64(math.Float64bits(a)), int64(math.Float64bits(b)))
	case an:
		return -1
	case bn:
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return cmp.Compare(int64(math.Float64bits(a)), int64(math.Float64bits(b)))
}

// twoTo63 is 2^63 as a float64, exactly.
const twoTo63 = 9223372036854775808.0

// compareIntReal compares an INTEGER with a REAL exactly, without converting
// the integer to float64 (which rounds above 2^53). A numerically equal REAL
// orders below the INTEGER; NaN orders below every INTEGER.
func compareIntReal(i int64, f float64) int {
	switch {
	case math.IsNaN(f):
		return 1
	case f >= twoTo63: // includes +Inf
		return -1
	case f < -twoTo63: // includes -Inf
		return 1
	}
	// Now -2^63 <= f < 2^63, so its integer part fits an int64 exactly.
	t := math.Trunc(f)
	if c := cmp.Compare(i, int64(t)); c != 0 {
		return c
	}
	// i equals the integer part of f; the fraction decides (f - t is exact).
	switch frac := f - t; {
	case frac > 0:
		return -1
	case frac < 0:
		return 1
	}
	return 1 // numerically equal: REAL < INTEGER
}

// Cell is one column's clock and value as merge sees it.
type Cell struct {
	ColVersion int64
	Value      patina.Value
	Site       patina.ActorID
}

// CellWins reports whether incoming should replace local for the same row at
// the same causal length: the higher ColVersion wins; on a tie the larger
// value (CompareValues) wins; on a tie the larger Site (bytes) wins. If all
// three are equal the cells are the same write and it reports false, so
// applying a change twice changes nothing.
func CellWins(incoming, local Cell) bool {
	if incoming.ColVersion != local.ColVersion {
		return incoming.ColVersion > local.ColVersion
	}
	if c := CompareValues(incoming.Value, local.Value); c != 0 {
		return c > 0
	}
	return bytes.Compare(incoming.Site[:], local.Site[:]) > 0
}

// RowOp is what an incoming causal length means for a row.
type RowOp uint8

// The four outcomes of ClassifyCL.
const (
	// RowIgnore: incoming cl < local cl, the change is stale; drop it.
	RowIgnore RowOp = iota
	// RowSame: same cl; merge per column with CellWins (for sentinel-only
	// changes, see SentinelWins).
	RowSame
	// RowDelete: incoming cl even and > local; delete the row, drop its
	// column clocks, keep one tombstone sentinel.
	RowDelete
	// RowResurrect: incoming cl odd and > local (including a row never seen,
	// local cl 0); (re)create the row and zero its column clocks so that any
	// column value at the new cl wins.
	RowResurrect
)

func (op RowOp) String() string {
	switch op {
	case RowIgnore:
		return "ignore"
	case RowSame:
		return "same"
	case RowDelete:
		return "delete"
	case RowResurrect:
		return "resurrect"
	}
	return fmt.Sprintf("RowOp(%d)", uint8(op))
}

// ClassifyCL classifies an incoming change's causal length against the local
// one (0 if the row was never seen).
func ClassifyCL(incoming, local int64) RowOp {
	switch {
	case incoming < local:
		return RowIgnore
	case incoming == local:
		return RowSame
	case IsAlive(incoming):
		return RowResurrect
	}
	return RowDelete
}

// SentinelWins decides, at equal causal length, which site's sentinel clock
// is kept, so that replicas end with identical clock metadata after
// concurrent inserts or concurrent deletes of the same row: the larger site
// (bytes) wins; the same site does not replace itself.
func SentinelWins(incomingSite, localSite patina.ActorID) bool {
	return bytes.Compare(incomingSite[:], localSite[:]) > 0
}

// IsAlive reports whether a causal length means the row exists (odd).
// Causal lengths are never negative; 0 means the row was never seen.
func IsAlive(cl int64) bool { return cl&1 == 1 }

package crdt

import (
	"math"
	"testing"

	"github.com/patinadb/patina"
)

var (
	siteA = patina.ActorID{0x0a}
	siteB = patina.ActorID{0x0b}
	siteC = patina.ActorID{0x0b, 0x01} // > siteB: bytes compare past the first
)

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

func TestCompareValues(t *testing.T) {
	const twoTo53 = 1 << 53
	nan := math.NaN()
	negNaN := math.Float64frombits(math.Float64bits(nan) | 1<<63)
	tests := []struct {
		name string
		a, b patina.Value
		want int
	}{
		{"null equal", patina.Null(), patina.Null(), 0},
		{"null ignores payload", patina.Null(), patina.Value{Int: 5, Bytes: []byte("x")}, 0},
		{"null below int", patina.Null(), patina.Int(math.MinInt64), -1},
		{"null below real", patina.Null(), patina.Real(math.Inf(-1)), -1},
		{"null below nan", patina.Null(), patina.Real(nan), -1},
		{"null below text", patina.Null(), patina.Text(""), -1},
		{"null below blob", patina.Null(), patina.Blob(nil), -1},
		{"int order", patina.Int(-1), patina.Int(1), -1},
		{"int extremes", patina.Int(math.MinInt64), patina.Int(math.MaxInt64), -1},
		{"int equal", patina.Int(7), patina.Int(7), 0},
		{"real order", patina.Real(1.5), patina.Real(2.5), -1},
		{"real equal", patina.Real(1.5), patina.Real(1.5), 0},
		{"int vs real numeric", patina.Int(2), patina.Real(1.5), 1},
		{"real vs int numeric", patina.Real(1.5), patina.Int(2), -1},
		{"int vs real fraction above", patina.Int(1), patina.Real(1.5), -1},
		{"negative fraction", patina.Int(-1), patina.Real(-1.5), 1},
		{"negative fraction above", patina.Int(-2), patina.Real(-1.5), -1},
		{"equal int and real: real lower", patina.Real(3), patina.Int(3), -1},
		{"equal int and real: int higher", patina.Int(3), patina.Real(3), 1},
		{"int zero vs -0.0", patina.Int(0), patina.Real(math.Copysign(0, -1)), 1},
		{"-0.0 below 0.0", patina.Real(math.Copysign(0, -1)), patina.Real(0), -1},
		{"0.0 above -0.0", patina.Real(0), patina.Real(math.Copysign(0, -1)), 1},
		{"exact above 2^53", patina.Int(twoTo53 + 1), patina.Real(twoTo53), 1},
		{"exact below 2^53", patina.Real(twoTo53), patina.Int(twoTo53 + 1), -1},
		{"exact 2^53 equal", patina.Int(twoTo53), patina.Real(twoTo53), 1},
		{"max int below 2^63", patina.Int(math.MaxInt64), patina.Real(1 << 63), -1},
		{"max int vs float(max int)", patina.Int(math.MaxInt64), patina.Real(float64(math.MaxInt64)), -1},
		{"max int above float below 2^63", patina.Int(math.MaxInt64), patina.Real(math.Nextafter(1<<63, 0)), 1},
		{"min int equals -2^63", patina.Int(math.MinInt64), patina.Real(-(1 << 63)), 1},
		{"min int above below -2^63", patina.Int(math.MinInt64), patina.Real(math.Nextafter(-(1 << 63), math.Inf(-1))), 1},
		{"min int below -2^63 + ulp", patina.Int(math.MinInt64), patina.Real(math.Nextafter(-(1 << 63), 0)), -1},
		{"+inf above max int", patina.Real(math.Inf(1)), patina.Int(math.MaxInt64), 1},
		{"-inf below min int", patina.Real(math.Inf(-1)), patina.Int(math.MinInt64), -1},
		{"max float above max int", patina.Real(math.MaxFloat64), patina.Int(math.MaxInt64), 1},
		{"tiny real above int zero", patina.Real(math.SmallestNonzeroFloat64), patina.Int(0), 1},
		{"tiny negative real below int zero", patina.Real(-math.SmallestNonzeroFloat64), patina.Int(0), -1},
		{"nan below -inf", patina.Real(nan), patina.Real(math.Inf(-1)), -1},
		{"nan below min int", patina.Real(nan), patina.Int(math.MinInt64), -1},
		{"min int above nan", patina.Int(math.MinInt64), patina.Real(nan), 1},
		{"nan equal itself", patina.Real(nan), patina.Real(nan), 0},
		{"nans by signed bits", patina.Real(negNaN), patina.Real(nan), -1},
		{"real below text", patina.Real(math.Inf(1)), patina.Text(""), -1},
		{"int below text", patina.Int(math.MaxInt64), patina.Text("0"), -1},
		{"text bytewise", patina.Text("destroyed"), patina.Text("started"), -1},
		{"text prefix", patina.Text("ab"), patina.Text("abc"), -1},
		{"text equal", patina.Text("x"), patina.Text("x"), 0},
		{"text nil equals empty", patina.Text(""), patina.Value{Type: patina.TypeText}, 0},
		{"text bytes not utf8 order", patina.Text("\xff"), patina.Text("\u00e9"), 1},
		{"text below blob", patina.Text("zzz"), patina.Blob([]byte("a")), -1},
		{"text below blob same bytes", patina.Text("a"), patina.Blob([]byte("a")), -1},
		{"blob bytewise", patina.Blob([]byte{0, 1}), patina.Blob([]byte{0, 2}), -1},
		{"blob equal", patina.Blob([]byte{1}), patina.Blob([]byte{1}), 0},
		{"unknown type above blob", patina.Value{Type: 9}, patina.Blob([]byte{0xff}), 1},
		{"unknown types by number", patina.Value{Type: 9}, patina.Value{Type: 10}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompareValues(tt.a, tt.b); got != tt.want {
				t.Fatalf("CompareValues(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := CompareValues(tt.b, tt.a); got != -tt.want {
				t.Fatalf("CompareValues(%v, %v) = %d, want %d (antisymmetry)", tt.b, tt.a, got, -tt.want)
			}
			if tt.a.Type <= patina.TypeBlob && tt.b.Type <= patina.TypeBlob && (tt.want == 0) != tt.a.Equal(tt.b) {
				t.Fatalf("CompareValues = %d but Equal = %v", tt.want, tt.a.Equal(tt.b))
			}
		})
	}
}

func TestCellWins(t *testing.T) {
	tests := []struct {
		name            string
		incoming, local Cell
		want            bool
	}{
		{
			// DESIGN §1 case: two writers set the same column at the same
			// col_version; the larger value wins on every replica.
			"design: equal col_version, larger value wins",
			Cell{1, patina.Text("started"), siteA},
			Cell{1, patina.Text("destroyed"), siteB},
			true,
		},
		{
			"design: equal col_version, smaller value loses",
			Cell{1, patina.Text("destroyed"), siteB},
			Cell{1, patina.Text("started"), siteA},
			false,
		},
		{
			// DESIGN §1 case: the cell edited more often wins, whatever its value.
			"design: more edits beat a larger value",
			Cell{2, patina.Text("destroyed"), siteA},
			Cell{1, patina.Text("started"), siteB},
			true,
		},
		{
			"design: fewer edits lose to a smaller value",
			Cell{1, patina.Text("started"), siteB},
			Cell{2, patina.Text("destroyed"), siteA},
			false,
		},
		{"higher col_version wins over null", Cell{3, patina.Null(), siteA}, Cell{2, patina.Int(9), siteB}, true},
		{"value beats null at tie", Cell{1, patina.Int(0), siteA}, Cell{1, patina.Null(), siteB}, true},
		{"real below equal int at tie", Cell{1, patina.Real(1), siteB}, Cell{1, patina.Int(1), siteA}, false},
		{"larger site wins at full tie", Cell{1, patina.Int(5), siteB}, Cell{1, patina.Int(5), siteA}, true},
		{"smaller site loses at full tie", Cell{1, patina.Int(5), siteA}, Cell{1, patina.Int(5), siteB}, false},
		{"site compares all bytes", Cell{1, patina.Int(5), siteC}, Cell{1, patina.Int(5), siteB}, true},
		{"identical cell does not win", Cell{1, patina.Text("x"), siteA}, Cell{1, patina.Text("x"), siteA}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CellWins(tt.incoming, tt.local); got != tt.want {
				t.Fatalf("CellWins(%+v, %+v) = %v, want %v", tt.incoming, tt.local, got, tt.want)
			}
		})
	}
}

func TestClassifyCL(t *testing.T) {
	tests := []struct {
		name            string
		incoming, local int64
		want            RowOp
	}{
		{"insert of unseen row", 1, 0, RowResurrect},
		{"delete of unseen row keeps a tombstone", 2, 0, RowDelete},
		{"update at same cl", 1, 1, RowSame},
		{"concurrent deletes", 2, 2, RowSame},
		{"nothing seen, nothing sent", 0, 0, RowSame},
		// DESIGN §1 case: a delete (cl 2) beats an update made concurrently
		// at cl 1, whichever arrives first.
		{"design: delete beats concurrent update", 2, 1, RowDelete},
		{"design: update after delete is stale", 1, 2, RowIgnore},
		// DESIGN §1 case: a re-insert after a delete (cl 3) beats a delete
		// made concurrently (cl 2), whichever arrives first.
		{"design: re-insert beats concurrent delete", 3, 2, RowResurrect},
		{"design: delete after re-insert is stale", 2, 3, RowIgnore},
		{"resurrect skipping generations", 5, 2, RowResurrect},
		{"alive jumps to later alive", 5, 1, RowResurrect},
		{"delete skipping generations", 6, 3, RowDelete},
		{"stale alive", 1, 3, RowIgnore},
		{"stale delete", 2, 4, RowIgnore},
		{"large", math.MaxInt64, math.MaxInt64 - 1, RowResurrect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClassifyCL(tt.incoming, tt.local); got != tt.want {
				t.Fatalf("ClassifyCL(%d, %d) = %v, want %v", tt.incoming, tt.local, got, tt.want)
			}
		})
	}
}

func TestSentinelWins(t *testing.T) {
	tests := []struct {
		name            string
		incoming, local patina.ActorID
		want            bool
	}{
		{"larger wins", siteB, siteA, true},
		{"smaller loses", siteA, siteB, false},
		{"same does not replace", siteA, siteA, false},
		{"later bytes decide", siteC, siteB, true},
		{"anything beats zero", siteA, patina.ActorID{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SentinelWins(tt.incoming, tt.local); got != tt.want {
				t.Fatalf("SentinelWins(%v, %v) = %v, want %v", tt.incoming, tt.local, got, tt.want)
			}
		})
	}
}

func TestIsAlive(t *testing.T) {
	for cl, want := range map[int64]bool{0: false, 1: true, 2: false, 3: true, 4: false, math.MaxInt64: true, math.MaxInt64 - 1: false} {
		if got := IsAlive(cl); got != want {
			t.Errorf("IsAlive(%d) = %v, want %v", cl, got, want)
		}
	}
}

func TestRowOp_String(t *testing.T) {
	for op, want := range map[RowOp]string{RowIgnore: "ignore", RowSame: "same", RowDelete: "delete", RowResurrect: "resurrect", 9: "RowOp(9)"} {
		if got := op.String(); got != want {
			t.Errorf("RowOp(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

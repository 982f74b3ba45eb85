package wire

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/patinadb/patina"
)

// A small pool makes equal actors, tables and pks common, so the encoder's
// shortcuts (site = actor, same row, interned names) are all exercised.
var (
	actorPool = []patina.ActorID{{}, actor(1), actor(2), actor(250)}
	namePool  = []string{"t", "services", "-1", "a\x00b", strings.Repeat("n", 255), "é"}
)

func genActor() *rapid.Generator[patina.ActorID] {
	return rapid.OneOf(
		rapid.SampledFrom(actorPool),
		rapid.Custom(func(t *rapid.T) patina.ActorID {
			var a patina.ActorID
			copy(a[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "actor"))
			return a
		}),
	)
}

func genName(label string) *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.SampledFrom(namePool),
		rapid.StringN(1, 20, 255).Filter(func(s string) bool { return len(s) <= MaxNameLen }),
	)
}

func genBytes() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.Just[[]byte](nil),
		rapid.Just([]byte{}),
		rapid.SampledFrom([][]byte{{0}, []byte("\x01\x03web"), {0, 0, 0xff}}),
		rapid.SliceOfN(rapid.Byte(), 0, 300),
	)
}

func genValue() *rapid.Generator[patina.Value] {
	return rapid.Custom(func(t *rapid.T) patina.Value {
		switch typ := patina.ValueType(rapid.IntRange(0, 4).Draw(t, "type")); typ {
		case patina.TypeInteger:
			return patina.Int(rapid.OneOf(
				rapid.SampledFrom([]int64{math.MinInt64, math.MaxInt64, 0, -1, 1}),
				rapid.Int64(),
			).Draw(t, "int"))
		case patina.TypeReal:
			return patina.Real(rapid.OneOf(
				rapid.SampledFrom([]float64{math.Copysign(0, -1), 0, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64}),
				rapid.Float64(),
				rapid.Map(rapid.Uint64(), math.Float64frombits).Filter(func(f float64) bool { return !math.IsNaN(f) }),
			).Draw(t, "real"))
		case patina.TypeText, patina.TypeBlob:
			return patina.Value{Type: typ, Bytes: genBytes().Draw(t, "bytes")}
		}
		return patina.Null()
	})
}

func genRange() *rapid.Generator[patina.Range] {
	return rapid.Custom(func(t *rapid.T) patina.Range {
		start := rapid.OneOf(rapid.Uint64Range(0, 1000), rapid.Uint64()).Draw(t, "start")
		n := rapid.OneOf(rapid.Uint64Range(0, 1000), rapid.Uint64()).Draw(t, "len")
		if start+n < start {
			n = math.MaxUint64 - start
		}
		return patina.Range{Start: start, End: start + n}
	})
}

func genRanges() *rapid.Generator[[]patina.Range] { return rapid.SliceOfN(genRange(), 0, 5) }

func genChangeset() *rapid.Generator[patina.Changeset] {
	return rapid.Custom(func(t *rapid.T) patina.Changeset {
		cs := patina.Changeset{
			Actor:   genActor().Draw(t, "actor"),
			Version: rapid.OneOf(rapid.Uint64Range(1, 100), rapid.Uint64Min(1)).Draw(t, "version"),
			TS:      patina.Timestamp(rapid.Uint64().Draw(t, "ts")),
		}
		if rapid.IntRange(0, 9).Draw(t, "cleared") == 0 {
			cs.Cleared = true
			cs.ClearedTo = cs.Version + rapid.Uint64Range(0, math.MaxUint64-cs.Version).Draw(t, "clearedTo")
			cs.Seqs = patina.Range{Start: rapid.Uint64().Draw(t, "s"), End: rapid.Uint64().Draw(t, "e")}
			cs.LastSeq = rapid.Uint64().Draw(t, "lastSeq")
			return cs
		}
		cs.Seqs = genRange().Draw(t, "seqs")
		cs.LastSeq = cs.Seqs.End + rapid.Uint64Range(0, math.MaxUint64-cs.Seqs.End).Draw(t, "extra")
		n := rapid.IntRange(0, 40).Draw(t, "changes")
		seq := cs.Seqs.Start
		for i := 0; i < n; i++ {
			var c patina.Change
			if i > 0 && rapid.Bool().Draw(t, "sameRow") {
				prev := cs.Changes[i-1]
				c.Table, c.PK, c.CL = prev.Table, prev.PK, prev.CL
			} else {
				c.Table = genName("table").Draw(t, "table")
				c.PK = genBytes().Draw(t, "pk")
				c.CL = rapid.OneOf(rapid.Int64Range(0, 5), rapid.Int64()).Draw(t, "cl")
			}
			c.Column = genName("column").Draw(t, "column")
			c.Value = genValue().Draw(t, "value")
			c.ColVersion = rapid.OneOf(rapid.Int64Range(0, 10), rapid.Int64()).Draw(t, "colVersion")
			c.DBVersion = rapid.OneOf(rapid.Just(cs.Version), rapid.Uint64()).Draw(t, "dbVersion")
			c.Site = rapid.OneOf(rapid.Just(cs.Actor), genActor()).Draw(t, "site")
			c.Seq = rapid.OneOf(rapid.Just(seq), rapid.Uint64()).Draw(t, "seq")
			seq = c.Seq + 1
			cs.Changes = append(cs.Changes, c)
		}
		return cs
	})
}

func genSyncState() *rapid.Generator[patina.SyncState] {
	return rapid.Custom(func(t *rapid.T) patina.SyncState {
		partial := rapid.Custom(func(t *rapid.T) patina.Partial {
			return patina.Partial{Have: genRanges().Draw(t, "have"), LastSeq: rapid.Uint64().Draw(t, "lastSeq")}
		})
		return patina.SyncState{
			Actor:    genActor().Draw(t, "actor"),
			Heads:    rapid.MapOfN(genActor(), rapid.Uint64(), 0, 20).Draw(t, "heads"),
			Gaps:     rapid.MapOfN(genActor(), genRanges(), 0, 10).Draw(t, "gaps"),
			Partials: rapid.MapOfN(genActor(), rapid.MapOfN(rapid.Uint64(), partial, 0, 4), 0, 5).Draw(t, "partials"),
		}
	})
}

func genMessage() *rapid.Generator[Message] {
	return rapid.OneOf(
		rapid.Custom(func(t *rapid.T) Message {
			return &Hello{Protocol: rapid.Uint16().Draw(t, "p"), ClusterID: rapid.Uint16().Draw(t, "c"),
				Actor: genActor().Draw(t, "a"), Region: rapid.String().Draw(t, "r"), Purpose: rapid.Uint8().Draw(t, "u")}
		}),
		rapid.Custom(func(t *rapid.T) Message {
			return &HelloAck{Protocol: rapid.Uint16().Draw(t, "p"), Accepted: rapid.Bool().Draw(t, "a"), Reason: rapid.String().Draw(t, "r")}
		}),
		rapid.Custom(func(t *rapid.T) Message {
			return &Changesets{From: genActor().Draw(t, "from"), TTL: rapid.Uint8().Draw(t, "ttl"),
				Sets: rapid.SliceOfN(genChangeset(), 0, 4).Draw(t, "sets")}
		}),
		rapid.Just[Message](&SyncStateRequest{}),
		rapid.Custom(func(t *rapid.T) Message { return &SyncState{State: genSyncState().Draw(t, "state")} }),
		rapid.Custom(func(t *rapid.T) Message {
			need := rapid.Custom(func(t *rapid.T) patina.Need {
				return patina.Need{Actor: genActor().Draw(t, "a"), Versions: genRange().Draw(t, "v"), Seqs: genRanges().Draw(t, "s")}
			})
			return &SyncNeeds{Needs: rapid.SliceOfN(need, 0, 10).Draw(t, "needs")}
		}),
		rapid.Custom(func(t *rapid.T) Message { return &SyncChangeset{Set: genChangeset().Draw(t, "set")} }),
		rapid.Just[Message](&SyncDone{}),
		rapid.Custom(func(t *rapid.T) Message {
			return &Error{Code: rapid.String().Draw(t, "c"), Message: rapid.String().Draw(t, "m")}
		}),
	)
}

func TestMarshal_RoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "msg")
		frame := Marshal(nil, m)
		got, err := Unmarshal(frame)
		if err != nil {
			t.Fatalf("unmarshal %s: %v", m.Type(), err)
		}
		if d := diff(m, got); d != "" {
			t.Fatalf("%s round trip differs at %s", m.Type(), d)
		}
		// Deterministic: the decoded message encodes to the same bytes.
		if again := Marshal(nil, got); !bytes.Equal(again, frame) {
			t.Fatalf("%s: re-marshal gives other bytes", m.Type())
		}
	})
}

func TestChangeSize_UpperBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sets := rapid.SliceOfN(genChangeset(), 1, 4).Draw(t, "sets")
		bound := FrameOverhead
		for i := range sets {
			bound += ChangesetSize(&sets[i])
			if n, b := len(Marshal(nil, &SyncChangeset{Set: sets[i]})), maxHeader+ChangesetSize(&sets[i]); n > b {
				t.Fatalf("SyncChangeset frame of %d bytes exceeds bound %d", n, b)
			}
		}
		if n := len(Marshal(nil, &Changesets{Sets: sets})); n > bound {
			t.Fatalf("Changesets frame of %d bytes exceeds bound %d", n, bound)
		}
	})
}

package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// frameOf builds a frame of type t around a hand-made payload.
func frameOf(t Type, payload []byte) []byte {
	b := []byte{Magic, byte(ProtocolVersion >> 8), byte(ProtocolVersion), byte(t)}
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

func TestMarshal_RoundTrip(t *testing.T) {
	a, b := actor(1), actor(200)
	edgeValues := []patina.Value{
		patina.Null(),
		patina.Int(math.MinInt64), patina.Int(math.MaxInt64), patina.Int(0), patina.Int(-1),
		patina.Real(math.Copysign(0, -1)), patina.Real(0), patina.Real(math.Inf(1)), patina.Real(math.Inf(-1)),
		patina.Real(math.MaxFloat64), patina.Real(math.SmallestNonzeroFloat64), patina.Real(-1.5),
		patina.Text(""), patina.Text("a\x00b\x00"), patina.Text(strings.Repeat("é", 1000)),
		patina.Blob(nil), patina.Blob([]byte{}), patina.Blob([]byte{0, 0, 0xff}),
		{Type: patina.TypeText}, // empty TEXT with nil bytes: still TEXT, not NULL
	}
	var edge patina.Changeset
	edge.Actor, edge.Version, edge.LastSeq, edge.TS = a, math.MaxUint64, math.MaxUint64, math.MaxUint64
	edge.Seqs = patina.Range{Start: math.MaxUint64 - uint64(len(edgeValues)) + 1, End: math.MaxUint64}
	for i, v := range edgeValues {
		edge.Changes = append(edge.Changes, patina.Change{
			Table: "t", PK: []byte{byte(i % 3)}, Column: fmt.Sprint("c", i), Value: v,
			ColVersion: math.MinInt64 + int64(i), DBVersion: edge.Version, Site: a,
			CL: math.MaxInt64, Seq: edge.Seqs.Start + uint64(i),
		})
	}

	// Site and DBVersion in every combination the encoder distinguishes,
	// including a zero-actor changeset whose changes have a zero Site.
	var sites patina.Changeset
	sites.Actor, sites.Version, sites.Seqs, sites.LastSeq = a, 5, patina.Range{Start: 2, End: 9}, 10
	for i, site := range []patina.ActorID{a, {}, b, a, b, {}} {
		sites.Changes = append(sites.Changes, patina.Change{
			Table: "t", PK: []byte("pk"), Column: "c", Value: patina.Int(int64(i)),
			DBVersion: []patina.Version{5, 0, 4, math.MaxUint64, 5, 6}[i],
			Site:      site, CL: int64(i % 2), Seq: []patina.Seq{2, 3, 7, 8, 0, 9}[i],
		})
	}
	zeroActor := sites
	zeroActor.Actor = patina.ActorID{}

	// Many tables and columns: more distinct names than the dictionary holds.
	many := bigChangeset(b, 1, 90, 300, 5)
	for i := range many.Changes {
		many.Changes[i].Column = fmt.Sprintf("%s_%d", many.Changes[i].Column, i%80)
	}

	heads := map[patina.ActorID]patina.Version{}
	gaps := map[patina.ActorID][]patina.Range{}
	partials := map[patina.ActorID]map[patina.Version]patina.Partial{}
	for i := 0; i < 500; i++ {
		x := patina.ActorID{byte(i), byte(i >> 8), 0xaa}
		heads[x] = uint64(i) * 1_000_003
		if i%3 == 0 {
			gaps[x] = []patina.Range{{Start: 1, End: 1}, {Start: 10, End: uint64(i) + 10}, {Start: math.MaxUint64, End: math.MaxUint64}}
		}
		if i%7 == 0 {
			partials[x] = map[patina.Version]patina.Partial{
				uint64(i) + 1: {Have: []patina.Range{{Start: 0, End: 3}, {Start: 7, End: 7}}, LastSeq: 9},
				uint64(i) + 5: {LastSeq: 0},
			}
		}
	}
	gaps[a] = []patina.Range{}                                    // empty list: decodes as nil
	partials[b] = map[patina.Version]patina.Partial{}             // empty map: decodes as nil
	partials[a] = map[patina.Version]patina.Partial{0: {}, 1: {}} // version 0 key is legal in a state

	tests := []struct {
		name string
		m    Message
	}{
		{"Hello/zero", &Hello{}},
		{"Hello/max", &Hello{Protocol: math.MaxUint16, ClusterID: math.MaxUint16, Actor: b, Region: "ams\x00x", Purpose: 255}},
		{"HelloAck/accepted", &HelloAck{Protocol: 1, Accepted: true}},
		{"HelloAck/refused", &HelloAck{Protocol: 1, Reason: strings.Repeat("why ", 100)}},
		{"Changesets/empty", &Changesets{From: a, TTL: 255}},
		{"Changesets/edge", &Changesets{From: a, TTL: 1, Sets: []patina.Changeset{edge, sites, zeroActor}}},
		{"Changesets/cleared", &Changesets{Sets: []patina.Changeset{
			{Actor: a, Version: 1, Cleared: true, ClearedTo: 1},
			{Actor: b, Version: 2, Cleared: true, ClearedTo: math.MaxUint64, Seqs: patina.Range{Start: 9, End: 1}, LastSeq: 3, TS: 77},
		}}},
		{"Changesets/many", &Changesets{From: b, TTL: 2, Sets: []patina.Changeset{many, bigChangeset(a, 2, 1, 1, 1), many}}},
		{"Changesets/emptyChangeset", &Changesets{Sets: []patina.Changeset{{Actor: a, Version: 1, Changes: []patina.Change{}}}}},
		{"SyncStateRequest", &SyncStateRequest{}},
		{"SyncState/empty", &SyncState{}},
		{"SyncState/emptyMaps", &SyncState{State: patina.SyncState{Actor: a, Heads: map[patina.ActorID]patina.Version{}, Gaps: map[patina.ActorID][]patina.Range{}}}},
		{"SyncState/many", &SyncState{State: patina.SyncState{Actor: a, Heads: heads, Gaps: gaps, Partials: partials}}},
		{"SyncNeeds/empty", &SyncNeeds{Needs: []patina.Need{}}},
		{"SyncNeeds/edge", &SyncNeeds{Needs: []patina.Need{
			{Actor: a, Versions: patina.Range{Start: 0, End: math.MaxUint64}},
			{Actor: b, Versions: patina.Range{Start: 3, End: 3}, Seqs: []patina.Range{{Start: 0, End: 0}, {Start: math.MaxUint64, End: math.MaxUint64}}},
		}}},
		{"SyncChangeset/edge", &SyncChangeset{Set: edge}},
		{"SyncChangeset/many", &SyncChangeset{Set: many}},
		{"SyncDone", &SyncDone{}},
		{"Error", &Error{Code: patina.EINVALID, Message: "bad\x00message"}},
		{"Error/empty", &Error{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := MustRoundTrip(t, tt.m)
			if frame[0] != Magic || Type(frame[3]) != tt.m.Type() {
				t.Fatalf("frame header % x, want magic and type %d", frame[:4], tt.m.Type())
			}
		})
	}
}

func TestUnmarshal_DecodedValues(t *testing.T) {
	// Checks reflect.DeepEqual cannot make: float bits, TEXT vs NULL, no
	// aliasing of the frame.
	cs := patina.Changeset{Actor: actor(1), Version: 1, Changes: []patina.Change{
		{Table: "t", PK: []byte("k"), Column: "a", Value: patina.Real(math.Copysign(0, -1)), Site: actor(1), DBVersion: 1},
		{Table: "t", PK: []byte("k"), Column: "b", Value: patina.Text(""), Site: actor(1), DBVersion: 1, Seq: 1},
		{Table: "t", PK: []byte("k"), Column: "c", Value: patina.Blob(nil), Site: actor(1), DBVersion: 1, Seq: 2},
	}, Seqs: patina.Range{Start: 0, End: 2}, LastSeq: 2}
	frame := Marshal(nil, &SyncChangeset{Set: cs})
	m, err := Unmarshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*SyncChangeset).Set.Changes
	if f := got[0].Value.Float; f != 0 || !math.Signbit(f) {
		t.Errorf("REAL -0.0 decoded as %v (signbit %v)", f, math.Signbit(f))
	}
	if got[1].Value.Type != patina.TypeText || got[1].Value.IsNull() {
		t.Errorf("empty TEXT decoded as %v", got[1].Value.Type)
	}
	if got[2].Value.Type != patina.TypeBlob {
		t.Errorf("empty BLOB decoded as %v", got[2].Value.Type)
	}
	for i := range frame {
		frame[i] = 0xEE
	}
	if string(got[0].PK) != "k" || got[0].Table != "t" || got[2].Column != "c" {
		t.Errorf("decoded message aliases the frame: %+v", got[0])
	}
}

func TestMarshal_Deterministic(t *testing.T) {
	// Build the same state twice with different insertion orders; Go's map
	// iteration order differs run to run, the bytes must not.
	build := func(reverse bool) *SyncState {
		s := patina.SyncState{Actor: actor(9), Heads: map[patina.ActorID]patina.Version{},
			Gaps: map[patina.ActorID][]patina.Range{}, Partials: map[patina.ActorID]map[patina.Version]patina.Partial{}}
		for j := 0; j < 200; j++ {
			i := j
			if reverse {
				i = 199 - j
			}
			a := patina.ActorID{byte(i * 37), byte(i)}
			s.Heads[a] = uint64(i)
			s.Gaps[a] = []patina.Range{{Start: 1, End: uint64(i) + 1}}
			s.Partials[a] = map[patina.Version]patina.Partial{}
			for v := 0; v < 5; v++ {
				s.Partials[a][uint64((v*7+i)%11)] = patina.Partial{LastSeq: uint64(v)}
			}
		}
		return &SyncState{State: s}
	}
	want := Marshal(nil, build(false))
	for i := 0; i < 20; i++ {
		if got := Marshal(nil, build(i%2 == 1)); !bytes.Equal(got, want) {
			t.Fatalf("marshal %d gave different bytes for the same state", i)
		}
	}
}

func TestMarshal_AppendsAndSizesLength(t *testing.T) {
	// Payload lengths around every uvarint boundary exercise the length
	// fix-up in Marshal, with and without bytes already in dst.
	for _, n := range []int{0, 1, 120, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<21 + 5} {
		for _, prefix := range [][]byte{nil, []byte("prefix")} {
			m := &Error{Message: strings.Repeat("x", n)}
			b := Marshal(bytes.Clone(prefix), m)
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("n=%d: prefix overwritten", n)
			}
			got, err := Unmarshal(b[len(prefix):])
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			if d := diff(m, got); d != "" {
				t.Fatalf("n=%d: %s", n, d)
			}
		}
	}
}

func TestMarshal_PanicsOnForeignMessage(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "not a message of package wire") {
			t.Fatalf("recover() = %v", r)
		}
	}()
	Marshal(nil, foreign{})
}

type foreign struct{}

func (foreign) Type() Type { return TypeHello }

func TestMarshal_Compact(t *testing.T) {
	// 25 rows of 4 cells of one actor and version: the row, the names, the
	// site, the version and the seq are written once per row, or never.
	cs := bigChangeset(actor(3), 123456, 2, 25, 4)
	frame := Marshal(nil, &SyncChangeset{Set: cs})
	perChange := float64(len(frame)) / float64(len(cs.Changes))
	if perChange > 16 {
		t.Errorf("%d changes took %d bytes (%.1f per change), want at most 16 per change", len(cs.Changes), len(frame), perChange)
	}
	if bound := maxHeader + ChangesetSize(&cs); len(frame) > bound {
		t.Errorf("frame of %d bytes exceeds the ChangesetSize bound %d", len(frame), bound)
	}
	t.Logf("%d changes: %d bytes, %.1f per change; ChangesetSize bound %d", len(cs.Changes), len(frame), perChange, maxHeader+ChangesetSize(&cs))
}

func TestUnmarshal_VersionMismatch(t *testing.T) {
	for _, m := range sampleMessages() {
		frame := Marshal(nil, m)
		binary.BigEndian.PutUint16(frame[1:], 2)
		_, err := Unmarshal(frame)
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Got != 2 || ve.Want != ProtocolVersion {
			t.Fatalf("%s: err = %v, want *VersionError{2, %d}", m.Type(), err, ProtocolVersion)
		}
		if want := "peer speaks wire protocol v2, this node speaks v1; upgrade the older node"; err.Error() != want {
			t.Fatalf("err = %q, want %q", err, want)
		}
		// Only the first 3 bytes are needed to tell.
		if _, err := Unmarshal(frame[:3]); !errors.As(err, &ve) {
			t.Fatalf("3-byte v2 header: err = %v, want *VersionError", err)
		}
	}
}

func TestUnmarshal_Errors(t *testing.T) {
	a := actor(1)
	change := func(mod func(*patina.Change)) *SyncChangeset {
		c := patina.Change{Table: "t", PK: []byte("k"), Column: "c", Value: patina.Int(1), DBVersion: 1, Site: a, CL: 1}
		mod(&c)
		return &SyncChangeset{Set: patina.Changeset{Actor: a, Version: 1, Changes: []patina.Change{c}}}
	}
	csWith := func(mod func(*patina.Changeset)) *SyncChangeset {
		cs := patina.Changeset{Actor: a, Version: 4, Seqs: patina.Range{Start: 0, End: 2}, LastSeq: 2}
		mod(&cs)
		return &SyncChangeset{Set: cs}
	}
	valid := Marshal(nil, &SyncChangeset{Set: bigChangeset(a, 1, 1, 1, 3)})
	flip := func(off int, b byte) []byte { f := bytes.Clone(valid); f[off] = b; return f }

	// heads[1]'s version is a truncated varint inside a well-formed frame.
	headsPayload := append(make([]byte, 16), 2)
	headsPayload = append(append(headsPayload, ab(1)...), 5)
	headsPayload = append(append(headsPayload, ab(2)...), 0x80)

	// The first change (offset of its flags byte: header 5, actor 16,
	// version 1, flags 1, seqs 3, ts 8, count 1).
	const firstChange = 5 + 16 + 1 + 1 + 3 + 8 + 1

	tests := []struct {
		name  string
		frame []byte
		want  []string
	}{
		{"empty", nil, []string{"wire: decode frame: header: magic: truncated at byte 0 of 0"}},
		{"magic", []byte{0x16, 3, 1, 0, 5}, []string{"first byte 0x16 is not the patina magic 0xb7"}},
		{"unknownType", frameOf(42, nil), []string{"unknown message type 42 (this node knows 1..9", "at byte 3"}},
		{"typeZero", frameOf(0, nil), []string{"unknown message type 0"}},
		{"lengthShort", append(frameOf(TypeSyncDone, nil), 0), []string{"1 trailing bytes after the frame"}},
		{"lengthLong", frameOf(TypeError, []byte{5, 'a'})[:6], []string{"header: payload length: truncated: 2 payload bytes announced, 1 present"}},
		{"trailingPayload", frameOf(TypeSyncDone, []byte{0}), []string{"wire: decode SyncDone: 1 trailing bytes after the message at byte 5 of 6"}},
		{"truncatedHeads", frameOf(TypeSyncState, headsPayload), []string{"wire: decode SyncState: heads[1]: version: truncated at byte 55 of 56"}},
		{"countTooLarge", frameOf(TypeSyncNeeds, binary.AppendUvarint(nil, 1<<40)), []string{"needs: count 1099511627776 cannot fit in the 0 bytes left"}},
		{"varintOverflow", frameOf(TypeSyncNeeds, bytes.Repeat([]byte{0xff}, 11)), []string{"needs: varint overflows 64 bits"}},
		{"bool", frameOf(TypeHelloAck, []byte{0, 1, 2, 0}), []string{"accepted: boolean byte is 2, want 0 or 1"}},
		{"nan", Marshal(nil, change(func(c *patina.Change) { c.Value = patina.Real(math.NaN()) })), []string{"changes[0]: value: REAL NaN refused"}},
		{"nanPayload", Marshal(nil, change(func(c *patina.Change) { c.Value = patina.Real(math.Float64frombits(0x7ff8_0000_dead_beef)) })), []string{"REAL NaN refused"}},
		{"valueType", Marshal(nil, change(func(c *patina.Change) { c.Value = patina.Value{Type: 5} })), []string{"value type 5 unknown (want 0..4"}},
		{"emptyTable", Marshal(nil, change(func(c *patina.Change) { c.Table = "" })), []string{"changes[0]: table: table name of 0 bytes, want 1..255"}},
		{"longTable", Marshal(nil, change(func(c *patina.Change) { c.Table = strings.Repeat("t", 256) })), []string{"table name of 256 bytes, want 1..255"}},
		{"version0", Marshal(nil, csWith(func(cs *patina.Changeset) { cs.Version = 0 })), []string{"wire: decode SyncChangeset: version: version 0 does not exist"}},
		{"clearedTo", Marshal(nil, csWith(func(cs *patina.Changeset) { cs.Cleared, cs.ClearedTo = true, 3 })), []string{"cleared_to: cleared range 4..=3 ends before it starts"}},
		{"clearedWithChanges", Marshal(nil, &SyncChangeset{Set: func() patina.Changeset {
			cs := bigChangeset(a, 1, 1, 1, 1)
			cs.Cleared, cs.ClearedTo = true, 1
			return cs
		}()}), []string{"a cleared changeset carries no changes, this one has 1"}},
		{"seqsReversed", Marshal(nil, csWith(func(cs *patina.Changeset) { cs.Seqs = patina.Range{Start: 2, End: 1} })), []string{"seqs: seqs 2..=1 with last_seq 2 break start <= end <= last_seq"}},
		{"seqsPastLast", Marshal(nil, csWith(func(cs *patina.Changeset) { cs.LastSeq = 1 })), []string{"seqs 0..=2 with last_seq 1"}},
		{"changesetFlags", flip(5+16+1, 0x02), []string{"flags: unknown changeset flag bits 0x02"}},
		{"changeFlags", flip(firstChange, 0x83), []string{"changes[0]: flags: unknown change flag bits 0x80"}},
		{"siteMode", flip(firstChange, 0x33), []string{"unknown site mode 3"}},
		{"firstWithoutRow", flip(firstChange, 0x02), []string{"the first change does not name its table and pk"}},
		{"firstWithoutCL", flip(firstChange, 0x01), []string{"the first change does not carry its cl"}},
		{"nameRef", flip(firstChange+1, 0x05), []string{"changes[0]: table: name reference 5 points past the 0 names defined so far"}},
		{"needReversed", Marshal(nil, &SyncNeeds{Needs: []patina.Need{{Actor: a, Versions: patina.Range{Start: 5, End: 4}}}}), []string{"needs[0]: versions: end: range ends before it starts (start 5, end 4)"}},
		{"needSeqsReversed", Marshal(nil, &SyncNeeds{Needs: []patina.Need{{Actor: a, Versions: patina.Range{Start: 5, End: 5}, Seqs: []patina.Range{{Start: 0, End: 1}, {Start: 3, End: 2}}}}}), []string{"needs[0]: seqs[1]: range: end: range ends before it starts"}},
		{"gapReversed", Marshal(nil, &SyncState{State: patina.SyncState{Gaps: map[patina.ActorID][]patina.Range{a: {{Start: 3, End: 1}}}}}), []string{"gaps[0]: ranges[0]: range: end"}},
		{"haveReversed", Marshal(nil, &SyncState{State: patina.SyncState{Partials: map[patina.ActorID]map[patina.Version]patina.Partial{a: {1: {Have: []patina.Range{{Start: 3, End: 1}}}}}}}), []string{"partials[0]: versions[0]: have[0]: range: end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustDecodeError(t, tt.frame, tt.want...)
		})
	}

	t.Run("unsortedHeads", func(t *testing.T) {
		p := append(make([]byte, 16), 2)
		p = append(append(p, ab(2)...), 1)
		p = append(append(p, ab(1)...), 1)
		p = append(p, 0, 0)
		MustDecodeError(t, frameOf(TypeSyncState, p), "heads[1]: actor: actor", "keys must ascend strictly")
	})
	t.Run("duplicateHeads", func(t *testing.T) {
		p := append(make([]byte, 16), 2)
		p = append(append(p, ab(1)...), 1)
		p = append(append(p, ab(1)...), 2)
		p = append(p, 0, 0)
		MustDecodeError(t, frameOf(TypeSyncState, p), "heads[1]: actor", "keys must ascend strictly")
	})
	t.Run("duplicatePartialVersion", func(t *testing.T) {
		p := append(make([]byte, 16), 0, 0, 1)
		p = append(append(p, ab(1)...), 2, 7, 0, 0, 7, 0, 0)
		MustDecodeError(t, frameOf(TypeSyncState, p), "partials[0]: versions[1]: version: version 7 after 7: versions must ascend strictly")
	})
}

func TestUnmarshal_Truncation(t *testing.T) {
	for _, m := range sampleMessages() {
		frame := Marshal(nil, m)
		for n := 0; n < len(frame); n++ {
			if _, err := Unmarshal(frame[:n]); err == nil {
				t.Fatalf("%s: prefix of %d of %d bytes decoded without error", m.Type(), n, len(frame))
			}
			// Also with the length field telling the truth about the
			// shorter payload, so the payload decoder itself meets the end.
			if n > maxHeader {
				p := frame[len(frame)-payloadLen(frame):]
				cut := len(p) - (len(frame) - n)
				if cut >= 0 {
					if _, err := Unmarshal(frameOf(m.Type(), p[:cut])); err == nil && cut < len(p) {
						t.Fatalf("%s: payload cut to %d of %d bytes decoded without error", m.Type(), cut, len(p))
					}
				}
			}
		}
	}
}

func payloadLen(frame []byte) int {
	n, _ := binary.Uvarint(frame[headerFixed:])
	return int(n)
}

func TestUnmarshal_BitFlip(t *testing.T) {
	for _, m := range sampleMessages() {
		frame := Marshal(nil, m)
		var decoded, refused int
		for i := 0; i < len(frame)*8; i++ {
			f := bytes.Clone(frame)
			f[i/8] ^= 1 << (i % 8)
			got, err := Unmarshal(f)
			if err != nil {
				refused++
				continue
			}
			decoded++
			again, err := Unmarshal(Marshal(nil, got))
			if err != nil {
				t.Fatalf("%s bit %d: re-marshal of a decoded message fails: %v", m.Type(), i, err)
			}
			if d := diff(got, again); d != "" {
				t.Fatalf("%s bit %d: re-marshal round trip differs at %s", m.Type(), i, d)
			}
		}
		t.Logf("%s: %d flips decoded (bits in values), %d refused", m.Type(), decoded, refused)
	}
}

func TestUnmarshal_AllocationBound(t *testing.T) {
	// The densest input: minimal 4-byte changes (same row, NULL, implicit
	// everything), each decoding into a whole patina.Change.
	cs := patina.Changeset{Actor: actor(1), Version: 1}
	for i := 0; i < 20000; i++ {
		cs.Changes = append(cs.Changes, patina.Change{Table: "t", PK: []byte("k"), Column: "c", DBVersion: 1, Site: actor(1), Seq: uint64(i)})
	}
	cs.Seqs, cs.LastSeq = patina.Range{Start: 0, End: 19999}, 19999
	dense := Marshal(nil, &SyncChangeset{Set: cs})

	lying := frameOf(TypeChangesets, append(append(make([]byte, 17), 0xff, 0xff, 0xff, 0xff, 0x0f), make([]byte, 100)...))
	for name, b := range map[string][]byte{"dense": dense, "lyingCount": lying} {
		t.Run(name, func(t *testing.T) {
			n := allocated(func() { _, _ = Unmarshal(b) })
			if limit := uint64(48*len(b) + 4096); n > limit {
				t.Fatalf("decoding %d bytes allocated %d, want at most %d", len(b), n, limit)
			}
			t.Logf("%d bytes allocated %d (%.1fx)", len(b), n, float64(n)/float64(len(b)))
		})
	}
}

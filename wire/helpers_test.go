package wire

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// normalize returns a deep copy of m in the form Unmarshal produces: empty
// slices and maps nil, Values holding only the field of their type. REAL
// values move their IEEE bits into Int (and Float to 0) so that
// reflect.DeepEqual tells -0.0 from 0.0.
func normalize(m Message) Message {
	switch m := m.(type) {
	case *Hello:
		c := *m
		return &c
	case *HelloAck:
		c := *m
		return &c
	case *Changesets:
		c := *m
		c.Sets = nil
		for _, cs := range m.Sets {
			c.Sets = append(c.Sets, normChangeset(cs))
		}
		return &c
	case *SyncStateRequest:
		return &SyncStateRequest{}
	case *SyncState:
		return &SyncState{State: normState(m.State)}
	case *SyncNeeds:
		c := &SyncNeeds{}
		for _, n := range m.Needs {
			n.Seqs = normRanges(n.Seqs)
			c.Needs = append(c.Needs, n)
		}
		return c
	case *SyncChangeset:
		return &SyncChangeset{Set: normChangeset(m.Set)}
	case *SyncDone:
		return &SyncDone{}
	case *Error:
		c := *m
		return &c
	}
	panic(fmt.Sprintf("normalize %T", m))
}

func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func normValue(v patina.Value) patina.Value {
	switch v.Type {
	case patina.TypeInteger:
		return patina.Value{Type: v.Type, Int: v.Int}
	case patina.TypeReal:
		return patina.Value{Type: v.Type, Int: int64(math.Float64bits(v.Float))}
	case patina.TypeText, patina.TypeBlob:
		return patina.Value{Type: v.Type, Bytes: normBytes(v.Bytes)}
	}
	return patina.Value{Type: v.Type}
}

func normChangeset(cs patina.Changeset) patina.Changeset {
	out := cs
	out.Changes = nil
	for _, c := range cs.Changes {
		c.PK = normBytes(c.PK)
		c.Value = normValue(c.Value)
		out.Changes = append(out.Changes, c)
	}
	return out
}

func normRanges(rs []patina.Range) []patina.Range {
	if len(rs) == 0 {
		return nil
	}
	return append([]patina.Range(nil), rs...)
}

func normState(s patina.SyncState) patina.SyncState {
	out := patina.SyncState{Actor: s.Actor}
	if len(s.Heads) > 0 {
		out.Heads = map[patina.ActorID]patina.Version{}
		for a, v := range s.Heads {
			out.Heads[a] = v
		}
	}
	if len(s.Gaps) > 0 {
		out.Gaps = map[patina.ActorID][]patina.Range{}
		for a, rs := range s.Gaps {
			out.Gaps[a] = normRanges(rs)
		}
	}
	if len(s.Partials) > 0 {
		out.Partials = map[patina.ActorID]map[patina.Version]patina.Partial{}
		for a, ps := range s.Partials {
			var m map[patina.Version]patina.Partial
			if len(ps) > 0 {
				m = map[patina.Version]patina.Partial{}
				for v, p := range ps {
					m[v] = patina.Partial{Have: normRanges(p.Have), LastSeq: p.LastSeq}
				}
			}
			out.Partials[a] = m
		}
	}
	return out
}

// diff returns "" when a and b are equal after normalization, else the path
// of the first difference.
func diff(a, b Message) string {
	na, nb := normalize(a), normalize(b)
	if reflect.DeepEqual(na, nb) {
		return ""
	}
	return firstDiff("", reflect.ValueOf(na), reflect.ValueOf(nb))
}

func firstDiff(path string, a, b reflect.Value) string {
	if a.Kind() != b.Kind() {
		return fmt.Sprintf("%s: kind %v vs %v", path, a.Kind(), b.Kind())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return fmt.Sprintf("%s: nil %v vs %v", path, a.IsNil(), b.IsNil())
		}
		return firstDiff(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := firstDiff(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.Len() != b.Len() || a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: len %d (nil %v) vs %d (nil %v)", path, a.Len(), a.IsNil(), b.Len(), b.IsNil())
		}
		for i := 0; i < a.Len(); i++ {
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.Len() != b.Len() || a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: len %d (nil %v) vs %d (nil %v)", path, a.Len(), a.IsNil(), b.Len(), b.IsNil())
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if d := firstDiff(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), bv); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return fmt.Sprintf("%s: %#v vs %#v", path, a.Interface(), b.Interface())
	}
	return ""
}

// MustRoundTrip marshals m, unmarshals the frame, fails tb unless the result
// equals m, and returns the frame.
func MustRoundTrip(tb testing.TB, m Message) []byte {
	tb.Helper()
	frame := Marshal(nil, m)
	got, err := Unmarshal(frame)
	if err != nil {
		tb.Fatalf("unmarshal %s (%d bytes): %v", m.Type(), len(frame), err)
	}
	if d := diff(m, got); d != "" {
		tb.Fatalf("%s round trip differs at %s", m.Type(), d)
	}
	return frame
}

// MustDecodeError unmarshals b and fails tb unless it returns a
// *DecodeError whose text contains every want.
func MustDecodeError(tb testing.TB, b []byte, want ...string) *DecodeError {
	tb.Helper()
	m, err := Unmarshal(b)
	if err == nil {
		tb.Fatalf("unmarshal succeeded with %#v, want error containing %q", m, want)
	}
	de, ok := err.(*DecodeError)
	if !ok {
		tb.Fatalf("unmarshal error %T %v, want *DecodeError", err, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			tb.Fatalf("unmarshal error %q does not contain %q", err, w)
		}
	}
	return de
}

func actor(b byte) patina.ActorID {
	var a patina.ActorID
	for i := range a {
		a[i] = b + byte(i)
	}
	return a
}

// bigChangeset returns a changeset of actor a and version v with rows rows of
// cols columns each, over tables tables, every change of a new seq.
func bigChangeset(a patina.ActorID, v patina.Version, tables, rows, cols int) patina.Changeset {
	cs := patina.Changeset{Actor: a, Version: v, TS: patina.Timestamp(1_700_000_000_000 << 16)}
	var seq patina.Seq
	for r := 0; r < rows; r++ {
		table := fmt.Sprintf("table_%d", r%tables)
		pk := []byte(fmt.Sprintf("\x01\x0bmachine-%06d", r))
		cs.Changes = append(cs.Changes, patina.Change{
			Table: table, PK: pk, Column: patina.SentinelColumn, Value: patina.Null(),
			ColVersion: 1, DBVersion: v, Site: a, CL: 1, Seq: seq,
		})
		seq++
		for c := 1; c < cols; c++ {
			var val patina.Value
			switch c % 4 {
			case 0:
				val = patina.Int(int64(r*c) - 5)
			case 1:
				val = patina.Text(fmt.Sprintf("10.0.%d.%d", r%256, c))
			case 2:
				val = patina.Real(float64(r) / 3)
			case 3:
				val = patina.Blob([]byte{byte(r), byte(c), 0})
			}
			cs.Changes = append(cs.Changes, patina.Change{
				Table: table, PK: pk, Column: fmt.Sprintf("col_%d", c), Value: val,
				ColVersion: int64(c), DBVersion: v, Site: a, CL: 1, Seq: seq,
			})
			seq++
		}
	}
	if seq > 0 {
		cs.Seqs = patina.Range{Start: 0, End: seq - 1}
		cs.LastSeq = seq - 1
	}
	return cs
}

// sampleMessages returns one valid message of every type, several for the
// richer ones: the seeds of the fuzzers and the inputs of the corruption
// tests.
func sampleMessages() []Message {
	a, b, c := actor(0x10), actor(0x40), actor(0x90)
	small := patina.Changeset{
		Actor: a, Version: 7, Seqs: patina.Range{Start: 0, End: 3}, LastSeq: 3, TS: 1 << 20,
		Changes: []patina.Change{
			{Table: "services", PK: []byte("\x01\x03web"), Column: "addr", Value: patina.Text("10.0.0.1"), ColVersion: 1, DBVersion: 7, Site: a, CL: 1, Seq: 0},
			{Table: "services", PK: []byte("\x01\x03web"), Column: "port", Value: patina.Int(-8080), ColVersion: 2, DBVersion: 7, Site: a, CL: 1, Seq: 1},
			{Table: "services", PK: []byte("\x01\x03web"), Column: "weight", Value: patina.Real(math.Copysign(0, -1)), ColVersion: 3, DBVersion: 6, Site: patina.ActorID{}, CL: 1, Seq: 2},
			{Table: "nodes", PK: []byte("\x01\x01n"), Column: "-1", Value: patina.Blob([]byte{0, 1, 2}), ColVersion: 4, DBVersion: 7, Site: b, CL: 2, Seq: 3},
		},
	}
	cleared := patina.Changeset{Actor: b, Version: 3, Cleared: true, ClearedTo: 9, TS: 42}
	return []Message{
		&Hello{Protocol: ProtocolVersion, ClusterID: 7, Actor: a, Region: "fra", Purpose: PurposeSync},
		&HelloAck{Protocol: ProtocolVersion, Accepted: false, Reason: "cluster id 8 is not ours (7)"},
		&Changesets{From: b, TTL: 3, Sets: []patina.Changeset{small, cleared}},
		&SyncStateRequest{},
		&SyncState{State: patina.SyncState{
			Actor: a,
			Heads: map[patina.ActorID]patina.Version{a: 10, b: 3, c: 1 << 40},
			Gaps:  map[patina.ActorID][]patina.Range{b: {{Start: 1, End: 2}}, c: {{Start: 5, End: 5}, {Start: 9, End: 100}}},
			Partials: map[patina.ActorID]map[patina.Version]patina.Partial{
				c: {101: {Have: []patina.Range{{Start: 0, End: 10}}, LastSeq: 20}, 102: {LastSeq: 1}},
			},
		}},
		&SyncNeeds{Needs: []patina.Need{
			{Actor: b, Versions: patina.Range{Start: 1, End: 2}},
			{Actor: c, Versions: patina.Range{Start: 101, End: 101}, Seqs: []patina.Range{{Start: 11, End: 20}}},
		}},
		&SyncChangeset{Set: small},
		&SyncChangeset{Set: bigChangeset(c, 99, 3, 5, 4)},
		&SyncDone{},
		&Error{Code: patina.EUNAVAILABLE, Message: "sync limit reached; retry in 2s"},
	}
}

// ab returns the bytes of actor(b).
func ab(b byte) []byte { a := actor(b); return a[:] }

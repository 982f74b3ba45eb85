package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/patinadb/patina"
)

// Smallest encodings, used to bound counts by the bytes left before
// allocating anything (a count field is never trusted beyond them).
const (
	minChange    = 4                      // flags, column reference, NULL tag, col_version
	minChangeset = 16 + 1 + 1 + 3 + 8 + 1 // actor, version, flags, seqs, ts, count
	minActorKey  = 16 + 1                 // actor and one more varint
	minRange     = 2                      // start, length
	minPartial   = 3                      // version, last_seq, count
	minNeed      = 16 + minRange + 1      // actor, versions, seq count
)

// maxDepth bounds the path kept for error messages; the deepest message
// (SyncState partials) needs 3.
const maxDepth = 6

type pathElem struct {
	name string
	idx  int // -1: not an element of a list
}

// decoder reads one frame. Errors are sticky: after the first, every read
// returns zero values and the first error is reported.
type decoder struct {
	b     []byte
	off   int
	typ   Type
	err   *DecodeError
	path  [maxDepth]pathElem
	depth int
	dict  [dictMax]string
	ndict int
}

type header struct {
	version uint16
	typ     Type
}

func (d *decoder) error() error { return d.err }

func (d *decoder) push(name string, idx int) {
	if d.depth < maxDepth {
		d.path[d.depth] = pathElem{name, idx}
	}
	d.depth++
}

func (d *decoder) pop() { d.depth-- }

// failAt records the first error: field (under the current path) starting at
// frame offset off is wrong for reason.
func (d *decoder) failAt(off int, field, reason string) {
	if d.err != nil {
		return
	}
	var sb strings.Builder
	for i := 0; i < min(d.depth, maxDepth); i++ {
		if i > 0 {
			sb.WriteString(": ")
		}
		sb.WriteString(d.path[i].name)
		if d.path[i].idx >= 0 {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(d.path[i].idx))
			sb.WriteByte(']')
		}
	}
	if field != "" {
		if sb.Len() > 0 {
			sb.WriteString(": ")
		}
		sb.WriteString(field)
	}
	d.err = &DecodeError{Type: d.typ, Path: sb.String(), Offset: off, Size: len(d.b), Reason: reason}
}

// header reads the frame header and bounds d.b to the payload it announces.
// It stops after the protocol version when that is not ours.
func (d *decoder) header() (header, bool) {
	var h header
	b := d.b
	if len(b) < 1 {
		d.failAt(0, "header: magic", "truncated")
		return h, false
	}
	if b[0] != Magic {
		d.failAt(0, "header: magic", fmt.Sprintf("first byte 0x%02x is not the patina magic 0x%02x (not a patina data-plane frame)", b[0], Magic))
		return h, false
	}
	if len(b) < 3 {
		d.failAt(1, "header: protocol version", "truncated")
		return h, false
	}
	h.version = binary.BigEndian.Uint16(b[1:])
	if h.version != ProtocolVersion {
		return h, true
	}
	if len(b) < 4 {
		d.failAt(3, "header: type", "truncated")
		return h, false
	}
	h.typ = Type(b[3])
	if !h.typ.valid() {
		d.failAt(3, "header: type", fmt.Sprintf("unknown message type %d (this node knows %d..%d; does the peer run a newer build?)", b[3], TypeHello, maxType))
		return h, false
	}
	d.typ = h.typ
	d.off = headerFixed
	n := d.uvarint("header: payload length")
	if d.err != nil {
		return h, false
	}
	if rem := uint64(len(b) - d.off); n > rem {
		d.failAt(headerFixed, "header: payload length", fmt.Sprintf("truncated: %d payload bytes announced, %d present", n, rem))
		return h, false
	} else if n < rem {
		d.failAt(d.off+int(n), "", fmt.Sprintf("%d trailing bytes after the frame", rem-n))
		return h, false
	}
	return h, true
}

func (d *decoder) need(n int, field string) bool {
	if d.err != nil {
		return false
	}
	if len(d.b)-d.off < n {
		d.failAt(d.off, field, "truncated")
		return false
	}
	return true
}

func (d *decoder) byte(field string) byte {
	if !d.need(1, field) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) bool(field string) bool {
	off := d.off
	switch v := d.byte(field); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.failAt(off, field, fmt.Sprintf("boolean byte is %d, want 0 or 1", v))
		return false
	}
}

func (d *decoder) u16(field string) uint16 {
	if !d.need(2, field) {
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u64(field string) uint64 {
	if !d.need(8, field) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) actor(field string) patina.ActorID {
	var a patina.ActorID
	if d.need(16, field) {
		copy(a[:], d.b[d.off:])
		d.off += 16
	}
	return a
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n == 0 {
		d.failAt(d.off, field, "truncated")
		return 0
	} else if n < 0 {
		d.failAt(d.off, field, "varint overflows 64 bits")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n == 0 {
		d.failAt(d.off, field, "truncated")
		return 0
	} else if n < 0 {
		d.failAt(d.off, field, "varint overflows 64 bits")
		return 0
	}
	d.off += n
	return v
}

// count reads a list or map length and refuses one that the bytes left could
// not hold at minElem bytes per element.
func (d *decoder) count(field string, minElem int) int {
	off := d.off
	n := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if rem := len(d.b) - d.off; n > uint64(rem/minElem) {
		d.failAt(off, field, fmt.Sprintf("count %d cannot fit in the %d bytes left", n, rem))
		return 0
	}
	return int(n)
}

// raw reads length-prefixed bytes without copying them.
func (d *decoder) raw(field string) []byte {
	off := d.off
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if rem := len(d.b) - d.off; n > uint64(rem) {
		d.failAt(off, field, fmt.Sprintf("truncated: %d bytes announced, %d left", n, rem))
		return nil
	}
	p := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return p
}

// bytes reads length-prefixed bytes into a new slice; empty decodes as nil.
func (d *decoder) bytes(field string) []byte {
	p := d.raw(field)
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) str(field string) string { return string(d.raw(field)) }

// name reads a table or column name, a dictionary reference or a literal.
func (d *decoder) name(field string) string {
	off := d.off
	x := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if x == 0 {
		s := d.str(field)
		if d.ndict < dictMax {
			d.dict[d.ndict] = s
			d.ndict++
		}
		return s
	}
	if x > uint64(d.ndict) {
		d.failAt(off, field, fmt.Sprintf("name reference %d points past the %d names defined so far", x, d.ndict))
		return ""
	}
	return d.dict[x-1]
}

// rng reads an inclusive range written as start and End-Start; it refuses
// ranges that end before they start.
func (d *decoder) rng(field string) patina.Range {
	d.push(field, -1)
	defer d.pop()
	var r patina.Range
	r.Start = d.uvarint("start")
	off := d.off
	n := d.uvarint("end")
	r.End = r.Start + n
	if d.err == nil && r.End < r.Start {
		d.failAt(off, "end", fmt.Sprintf("range ends before it starts (start %d, end %d)", r.Start, r.End))
	}
	return r
}

func (d *decoder) ranges(field string) []patina.Range {
	n := d.count(field, minRange)
	if n == 0 {
		return nil
	}
	rs := make([]patina.Range, n)
	for i := 0; i < n && d.err == nil; i++ {
		d.push(field, i)
		rs[i] = d.rng("range")
		d.pop()
	}
	return rs
}

func (d *decoder) message(t Type) Message {
	switch t {
	case TypeHello:
		m := &Hello{}
		m.Protocol = d.u16("protocol")
		m.ClusterID = d.u16("cluster_id")
		m.Actor = d.actor("actor")
		m.Region = d.str("region")
		m.Purpose = d.byte("purpose")
		return m
	case TypeHelloAck:
		m := &HelloAck{}
		m.Protocol = d.u16("protocol")
		m.Accepted = d.bool("accepted")
		m.Reason = d.str("reason")
		return m
	case TypeChangesets:
		m := &Changesets{}
		m.From = d.actor("from")
		m.TTL = d.byte("ttl")
		if n := d.count("sets", minChangeset); n > 0 {
			m.Sets = make([]patina.Changeset, n)
			for i := 0; i < n && d.err == nil; i++ {
				d.push("sets", i)
				d.changeset(&m.Sets[i])
				d.pop()
			}
		}
		return m
	case TypeSyncStateRequest:
		return &SyncStateRequest{}
	case TypeSyncState:
		m := &SyncState{}
		d.syncState(&m.State)
		return m
	case TypeSyncNeeds:
		m := &SyncNeeds{}
		if n := d.count("needs", minNeed); n > 0 {
			m.Needs = make([]patina.Need, n)
			for i := 0; i < n && d.err == nil; i++ {
				d.push("needs", i)
				nd := &m.Needs[i]
				nd.Actor = d.actor("actor")
				nd.Versions = d.rng("versions")
				nd.Seqs = d.ranges("seqs")
				d.pop()
			}
		}
		return m
	case TypeSyncChangeset:
		m := &SyncChangeset{}
		d.changeset(&m.Set)
		return m
	case TypeSyncDone:
		return &SyncDone{}
	case TypeError:
		m := &Error{}
		m.Code = d.str("code")
		m.Message = d.str("message")
		return m
	}
	d.failAt(headerFixed-1, "header: type", fmt.Sprintf("unknown message type %d", t))
	return nil
}

func (d *decoder) changeset(cs *patina.Changeset) {
	cs.Actor = d.actor("actor")
	off := d.off
	cs.Version = d.uvarint("version")
	if d.err == nil && cs.Version == 0 {
		d.failAt(off, "version", "version 0 does not exist (versions start at 1)")
	}
	off = d.off
	flags := d.byte("flags")
	if flags&csFlagsReserved != 0 {
		d.failAt(off, "flags", fmt.Sprintf("unknown changeset flag bits 0x%02x", flags&csFlagsReserved))
	}
	if flags&csCleared != 0 {
		cs.Cleared = true
		off = d.off
		cs.ClearedTo = d.uvarint("cleared_to")
		if d.err == nil && cs.ClearedTo < cs.Version {
			d.failAt(off, "cleared_to", fmt.Sprintf("cleared range %d..=%d ends before it starts", cs.Version, cs.ClearedTo))
		}
	}
	off = d.off
	cs.Seqs.Start = d.uvarint("seqs: start")
	cs.Seqs.End = d.uvarint("seqs: end")
	cs.LastSeq = d.uvarint("last_seq")
	if d.err == nil && !cs.Cleared && (cs.Seqs.Start > cs.Seqs.End || cs.Seqs.End > cs.LastSeq) {
		d.failAt(off, "seqs", fmt.Sprintf("seqs %d..=%d with last_seq %d break start <= end <= last_seq", cs.Seqs.Start, cs.Seqs.End, cs.LastSeq))
	}
	cs.TS = patina.Timestamp(d.u64("ts"))
	off = d.off
	n := d.count("changes", minChange)
	if n == 0 {
		return
	}
	if cs.Cleared {
		d.failAt(off, "changes", fmt.Sprintf("a cleared changeset carries no changes, this one has %d", n))
		return
	}
	cs.Changes = make([]patina.Change, n)
	for i := 0; i < n && d.err == nil; i++ {
		d.push("changes", i)
		d.change(cs, i)
		d.pop()
	}
}

func (d *decoder) change(cs *patina.Changeset, i int) {
	c := &cs.Changes[i]
	var prev *patina.Change
	if i > 0 {
		prev = &cs.Changes[i-1]
	}
	off := d.off
	flags := d.byte("flags")
	switch {
	case d.err != nil:
		return
	case flags&flagsReserved != 0:
		d.failAt(off, "flags", fmt.Sprintf("unknown change flag bits 0x%02x", flags&flagsReserved))
	case flags&siteMask == siteMask:
		d.failAt(off, "flags", "unknown site mode 3")
	case prev == nil && flags&flagRow == 0:
		d.failAt(off, "flags", "the first change does not name its table and pk")
	case prev == nil && flags&flagCL == 0:
		d.failAt(off, "flags", "the first change does not carry its cl")
	}
	if flags&flagRow != 0 {
		off = d.off
		c.Table = d.name("table")
		if d.err == nil && (c.Table == "" || len(c.Table) > MaxNameLen) {
			d.failAt(off, "table", fmt.Sprintf("table name of %d bytes, want 1..%d", len(c.Table), MaxNameLen))
		}
		c.PK = d.bytes("pk")
	} else if prev != nil {
		c.Table, c.PK = prev.Table, prev.PK
	}
	c.Column = d.name("column")
	d.value(&c.Value)
	c.ColVersion = d.varint("col_version")
	c.DBVersion = cs.Version
	if flags&flagDBVersion != 0 {
		c.DBVersion = d.uvarint("db_version")
	}
	switch flags & siteMask {
	case siteActor:
		c.Site = cs.Actor
	case siteExplicit:
		c.Site = d.actor("site")
	}
	if flags&flagCL != 0 {
		c.CL = d.varint("cl")
	} else if prev != nil {
		c.CL = prev.CL
	}
	switch {
	case flags&flagSeq != 0:
		c.Seq = d.uvarint("seq")
	case prev != nil:
		c.Seq = prev.Seq + 1
	default:
		c.Seq = cs.Seqs.Start
	}
}

func (d *decoder) value(v *patina.Value) {
	off := d.off
	t := patina.ValueType(d.byte("value"))
	if d.err != nil {
		return
	}
	v.Type = t
	switch t {
	case patina.TypeNull:
	case patina.TypeInteger:
		v.Int = d.varint("value")
	case patina.TypeReal:
		v.Float = math.Float64frombits(d.u64("value"))
		if d.err == nil && math.IsNaN(v.Float) {
			d.failAt(off, "value", "REAL NaN refused (SQLite cannot store NaN; poison input)")
		}
	case patina.TypeText, patina.TypeBlob:
		v.Bytes = d.bytes("value")
	default:
		d.failAt(off, "value", fmt.Sprintf("value type %d unknown (want 0..4: NULL, INTEGER, REAL, TEXT, BLOB)", uint8(t)))
	}
}

func (d *decoder) syncState(s *patina.SyncState) {
	s.Actor = d.actor("actor")

	if n := d.count("heads", minActorKey); n > 0 {
		s.Heads = make(map[patina.ActorID]patina.Version, n)
		var prev patina.ActorID
		for i := 0; i < n && d.err == nil; i++ {
			d.push("heads", i)
			a := d.sortedActor(i, &prev)
			s.Heads[a] = d.uvarint("version")
			d.pop()
		}
	}

	if n := d.count("gaps", minActorKey); n > 0 {
		s.Gaps = make(map[patina.ActorID][]patina.Range, n)
		var prev patina.ActorID
		for i := 0; i < n && d.err == nil; i++ {
			d.push("gaps", i)
			a := d.sortedActor(i, &prev)
			s.Gaps[a] = d.ranges("ranges")
			d.pop()
		}
	}

	if n := d.count("partials", minActorKey); n > 0 {
		s.Partials = make(map[patina.ActorID]map[patina.Version]patina.Partial, n)
		var prev patina.ActorID
		for i := 0; i < n && d.err == nil; i++ {
			d.push("partials", i)
			a := d.sortedActor(i, &prev)
			var ps map[patina.Version]patina.Partial
			if m := d.count("versions", minPartial); m > 0 {
				ps = make(map[patina.Version]patina.Partial, m)
				var prevV patina.Version
				for j := 0; j < m && d.err == nil; j++ {
					d.push("versions", j)
					off := d.off
					v := d.uvarint("version")
					if d.err == nil && j > 0 && v <= prevV {
						d.failAt(off, "version", fmt.Sprintf("version %d after %d: versions must ascend strictly", v, prevV))
					}
					prevV = v
					var p patina.Partial
					p.LastSeq = d.uvarint("last_seq")
					p.Have = d.ranges("have")
					ps[v] = p
					d.pop()
				}
			}
			s.Partials[a] = ps
			d.pop()
		}
	}
}

// sortedActor reads the i-th key of an actor map, which must be above the
// previous key *prev (then updated): maps are written in ascending order, each key once.
func (d *decoder) sortedActor(i int, prev *patina.ActorID) patina.ActorID {
	off := d.off
	a := d.actor("actor")
	if d.err == nil && i > 0 && compareActors(a, *prev) <= 0 {
		d.failAt(off, "actor", fmt.Sprintf("actor %s after %s: keys must ascend strictly", a, *prev))
	}
	*prev = a
	return a
}

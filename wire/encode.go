package wire

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/patinadb/patina"
)

// headerFixed is the part of the frame header before the payload length:
// magic, protocol version (2 bytes), type.
const headerFixed = 4

// maxHeader is the longest frame header: headerFixed plus a 10-byte uvarint.
const maxHeader = headerFixed + binary.MaxVarintLen64

// dictMax is how many distinct table and column names one frame interns;
// names past it are always written in full.
const dictMax = 64

// Change flags.
const (
	flagRow       = 0x01 // table and pk follow; else those of the previous change
	flagCL        = 0x02 // cl follows; else that of the previous change
	flagSeq       = 0x04 // seq follows; else previous seq + 1 (Seqs.Start for the first)
	flagDBVersion = 0x08 // db_version follows; else the changeset's Version
	siteMask      = 0x30 // where Site comes from:
	siteActor     = 0x00 //   the changeset's Actor
	siteZero      = 0x10 //   the zero ActorID
	siteExplicit  = 0x20 //   16 bytes follow
	flagsReserved = 0xC0
)

// Changeset flags.
const (
	csCleared       = 0x01
	csFlagsReserved = 0xFE
)

type encoder struct {
	b     []byte
	dict  [dictMax]string
	ndict int
}

func (e *encoder) message(m Message) {
	switch m := m.(type) {
	case *Hello:
		e.u16(m.Protocol)
		e.u16(m.ClusterID)
		e.b = append(e.b, m.Actor[:]...)
		e.str(m.Region)
		e.b = append(e.b, m.Purpose)
	case *HelloAck:
		e.u16(m.Protocol)
		e.bool(m.Accepted)
		e.str(m.Reason)
	case *Changesets:
		e.b = append(e.b, m.From[:]...)
		e.b = append(e.b, m.TTL)
		e.uvarint(uint64(len(m.Sets)))
		for i := range m.Sets {
			e.changeset(&m.Sets[i])
		}
	case *SyncStateRequest, *SyncDone:
	case *SyncState:
		e.syncState(&m.State)
	case *SyncNeeds:
		e.uvarint(uint64(len(m.Needs)))
		for i := range m.Needs {
			n := &m.Needs[i]
			e.b = append(e.b, n.Actor[:]...)
			e.rng(n.Versions)
			e.ranges(n.Seqs)
		}
	case *SyncChangeset:
		e.changeset(&m.Set)
	case *Error:
		e.str(m.Code)
		e.str(m.Message)
	default:
		panic(fmt.Sprintf("wire: marshal %T: not a message of package wire", m))
	}
}

func (e *encoder) u16(v uint16)     { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) bytes(p []byte) {
	e.uvarint(uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// name writes a table or column name: a dictionary reference (index + 1), or
// 0 and the name in full, which then enters the dictionary if it has room.
func (e *encoder) name(s string) {
	for i := 0; i < e.ndict; i++ {
		if e.dict[i] == s {
			e.uvarint(uint64(i) + 1)
			return
		}
	}
	e.b = append(e.b, 0)
	e.str(s)
	if e.ndict < dictMax {
		e.dict[e.ndict] = s
		e.ndict++
	}
}

// rng writes an inclusive range as start and End-Start. A range with End <
// Start wraps around and is refused by the decoder.
func (e *encoder) rng(r patina.Range) {
	e.uvarint(r.Start)
	e.uvarint(r.End - r.Start)
}

func (e *encoder) ranges(rs []patina.Range) {
	e.uvarint(uint64(len(rs)))
	for _, r := range rs {
		e.rng(r)
	}
}

func (e *encoder) value(v *patina.Value) {
	e.b = append(e.b, byte(v.Type))
	switch v.Type {
	case patina.TypeInteger:
		e.varint(v.Int)
	case patina.TypeReal:
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v.Float))
	case patina.TypeText, patina.TypeBlob:
		e.bytes(v.Bytes)
	}
}

func (e *encoder) changeset(cs *patina.Changeset) {
	e.b = append(e.b, cs.Actor[:]...)
	e.uvarint(cs.Version)
	if cs.Cleared {
		e.b = append(e.b, csCleared)
		e.uvarint(cs.ClearedTo)
	} else {
		e.b = append(e.b, 0)
	}
	e.uvarint(cs.Seqs.Start)
	e.uvarint(cs.Seqs.End)
	e.uvarint(cs.LastSeq)
	e.b = binary.BigEndian.AppendUint64(e.b, uint64(cs.TS))
	e.uvarint(uint64(len(cs.Changes)))
	for i := range cs.Changes {
		c := &cs.Changes[i]
		var prev *patina.Change
		nextSeq := cs.Seqs.Start
		if i > 0 {
			prev = &cs.Changes[i-1]
			nextSeq = prev.Seq + 1
		}
		var flags byte
		if prev == nil || c.Table != prev.Table || !bytes.Equal(c.PK, prev.PK) {
			flags |= flagRow
		}
		if prev == nil || c.CL != prev.CL {
			flags |= flagCL
		}
		if c.Seq != nextSeq {
			flags |= flagSeq
		}
		if c.DBVersion != cs.Version {
			flags |= flagDBVersion
		}
		switch {
		case c.Site == cs.Actor:
			flags |= siteActor
		case c.Site.IsZero():
			flags |= siteZero
		default:
			flags |= siteExplicit
		}
		e.b = append(e.b, flags)
		if flags&flagRow != 0 {
			e.name(c.Table)
			e.bytes(c.PK)
		}
		e.name(c.Column)
		e.value(&c.Value)
		e.varint(c.ColVersion)
		if flags&flagDBVersion != 0 {
			e.uvarint(c.DBVersion)
		}
		if flags&siteMask == siteExplicit {
			e.b = append(e.b, c.Site[:]...)
		}
		if flags&flagCL != 0 {
			e.varint(c.CL)
		}
		if flags&flagSeq != 0 {
			e.uvarint(c.Seq)
		}
	}
}

func compareActors(a, b patina.ActorID) int { return bytes.Compare(a[:], b[:]) }

func sortedActors[V any](m map[patina.ActorID]V) []patina.ActorID {
	keys := make([]patina.ActorID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareActors)
	return keys
}

// syncState writes every map in ascending key order, so one state always
// gives the same bytes.
func (e *encoder) syncState(s *patina.SyncState) {
	e.b = append(e.b, s.Actor[:]...)
	e.uvarint(uint64(len(s.Heads)))
	for _, a := range sortedActors(s.Heads) {
		e.b = append(e.b, a[:]...)
		e.uvarint(s.Heads[a])
	}
	e.uvarint(uint64(len(s.Gaps)))
	for _, a := range sortedActors(s.Gaps) {
		e.b = append(e.b, a[:]...)
		e.ranges(s.Gaps[a])
	}
	e.uvarint(uint64(len(s.Partials)))
	for _, a := range sortedActors(s.Partials) {
		e.b = append(e.b, a[:]...)
		ps := s.Partials[a]
		vs := make([]patina.Version, 0, len(ps))
		for v := range ps {
			vs = append(vs, v)
		}
		slices.SortFunc(vs, cmp.Compare)
		e.uvarint(uint64(len(vs)))
		for _, v := range vs {
			p := ps[v]
			e.uvarint(v)
			e.uvarint(p.LastSeq)
			e.ranges(p.Have)
		}
	}
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func varintLen(v int64) int {
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// putUvarint writes v into dst as a uvarint of exactly n bytes, where n is
// uvarintLen(v).
func putUvarint(dst []byte, v uint64, n int) {
	if binary.PutUvarint(dst[:n], v) != n {
		panic("wire: internal error: uvarint length mismatch")
	}
}

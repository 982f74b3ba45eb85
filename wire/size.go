package wire

import (
	"encoding/binary"

	"github.com/patinadb/patina"
)

// Size bounds for chunking. They are upper bounds, never estimates that can
// fall short: a sender that keeps FrameOverhead plus the ChangesetSize of
// every set under a peer's frame limit never has a frame refused for size.
const (
	// FrameOverhead bounds what a Changesets or SyncChangeset frame spends
	// outside its changesets: the frame header and the From, TTL and count
	// fields.
	FrameOverhead = maxHeader + 16 + 1 + binary.MaxVarintLen64

	// ChangesetOverhead bounds a changeset's own fields (actor, version,
	// flags, cleared_to, seqs, last_seq, ts, change count).
	ChangesetOverhead = 16 + 1 + 6*binary.MaxVarintLen64 + 8
)

// ChangeSize returns an upper bound on the bytes c takes inside any encoded
// changeset, computed without encoding: c as if it started a new row, with
// its names written in full and every field that may be implicit written
// out (Site counts 16 bytes unless it is zero). The real encoding is smaller
// by whatever it can leave out: the row when c shares the previous change's
// table and pk, interned names, and Site when it is the changeset's actor.
func ChangeSize(c *patina.Change) int {
	n := 1 + // flags
		nameSize(c.Table) + bytesSize(len(c.PK)) + nameSize(c.Column) +
		valueSize(&c.Value) +
		varintLen(c.ColVersion) + uvarintLen(c.DBVersion) + varintLen(c.CL) + uvarintLen(c.Seq)
	if !c.Site.IsZero() {
		n += 16
	}
	return n
}

// ChangesetSize returns an upper bound on the bytes cs takes inside a frame:
// ChangesetOverhead plus the ChangeSize of each change.
func ChangesetSize(cs *patina.Changeset) int {
	n := ChangesetOverhead
	for i := range cs.Changes {
		n += ChangeSize(&cs.Changes[i])
	}
	return n
}

func bytesSize(n int) int   { return uvarintLen(uint64(n)) + n }
func nameSize(s string) int { return 1 + bytesSize(len(s)) }
func valueSize(v *patina.Value) int {
	switch v.Type {
	case patina.TypeInteger:
		return 1 + varintLen(v.Int)
	case patina.TypeReal:
		return 1 + 8
	case patina.TypeText, patina.TypeBlob:
		return 1 + bytesSize(len(v.Bytes))
	}
	return 1
}

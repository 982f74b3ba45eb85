package patina

import (
	"encoding/hex"
	"fmt"
	"math"
)

// ActorID identifies one node's database (its site id). It is a random UUID
// created with the database; deleting the database gives a new actor.
type ActorID [16]byte

// String returns the 32 lowercase hex digits of the id, as Corrosion prints it.
func (a ActorID) String() string { return hex.EncodeToString(a[:]) }

// IsZero reports whether a is the zero id.
func (a ActorID) IsZero() bool { return a == ActorID{} }

// ParseActorID parses 32 hex digits (dashes allowed, as in a UUID).
func ParseActorID(s string) (ActorID, error) {
	var a ActorID
	clean := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			clean = append(clean, s[i])
		}
	}
	if len(clean) != 32 {
		return a, fmt.Errorf("parse actor id %q: want 32 hex digits, got %d", s, len(clean))
	}
	if _, err := hex.Decode(a[:], clean); err != nil {
		return a, fmt.Errorf("parse actor id %q: %w", s, err)
	}
	return a, nil
}

// Version is the per-actor transaction counter (cr-sqlite's db_version): every
// committed local transaction that changed something gets the next one.
type Version = uint64

// Seq orders the changes inside one version, starting at 0.
type Seq = uint64

// Timestamp is a hybrid logical clock reading: the high 48 bits are Unix
// milliseconds, the low 16 bits a logical counter. It travels with every
// changeset for lag metrics and GC horizons, never for conflict resolution.
type Timestamp uint64

// Millis returns the physical part of t in Unix milliseconds.
func (t Timestamp) Millis() int64 { return int64(t >> 16) }

// Range is an inclusive range of versions or seqs. A Range with End < Start is
// empty.
type Range struct {
	Start, End uint64
}

// Len returns the number of values in r.
func (r Range) Len() uint64 {
	if r.End < r.Start {
		return 0
	}
	return r.End - r.Start + 1
}

// Contains reports whether v is in r.
func (r Range) Contains(v uint64) bool { return v >= r.Start && v <= r.End }

func (r Range) String() string { return fmt.Sprintf("%d..=%d", r.Start, r.End) }

// SentinelColumn is the column name of the per-row clock whose col_version is
// the row's causal length (odd = alive, even = deleted).
const SentinelColumn = "-1"

// Change is one cell of a changeset.
type Change struct {
	Table      string
	PK         []byte // packed primary key, see sqlite.PackPK
	Column     string // column name, or SentinelColumn
	Value      Value
	ColVersion int64
	DBVersion  Version
	Site       ActorID
	CL         int64 // causal length of the row
	Seq        Seq
}

// Changeset is every change of one version of one actor, or one chunk of it.
// A chunk carries the seq range it covers (holes are seqs since overwritten)
// and LastSeq, the highest seq of the whole version. A changeset with
// Cleared set carries no changes: versions Version..=ClearedTo exist but every
// cell they wrote has been overwritten since.
type Changeset struct {
	Actor     ActorID
	Version   Version
	Changes   []Change // in seq order
	Seqs      Range
	LastSeq   Seq
	TS        Timestamp
	Cleared   bool
	ClearedTo Version
}

// Complete reports whether the changeset holds the whole version.
func (c *Changeset) Complete() bool {
	return c.Cleared || (c.Seqs.Start == 0 && c.Seqs.End == c.LastSeq)
}

// Versions returns the version range the changeset speaks for.
func (c *Changeset) Versions() Range {
	if c.Cleared {
		return Range{c.Version, c.ClearedTo}
	}
	return Range{c.Version, c.Version}
}

// ValueType is a SQLite storage class.
type ValueType uint8

// Storage classes, numbered as on the wire.
const (
	TypeNull ValueType = iota
	TypeInteger
	TypeReal
	TypeText
	TypeBlob
)

func (t ValueType) String() string {
	switch t {
	case TypeNull:
		return "NULL"
	case TypeInteger:
		return "INTEGER"
	case TypeReal:
		return "REAL"
	case TypeText:
		return "TEXT"
	case TypeBlob:
		return "BLOB"
	}
	return fmt.Sprintf("ValueType(%d)", uint8(t))
}

// Value is one SQLite value. Text and Blob keep their bytes in Bytes.
type Value struct {
	Type  ValueType
	Int   int64
	Float float64
	Bytes []byte
}

// Null, Int, Real, Text and Blob construct values.
func Null() Value            { return Value{} }
func Int(i int64) Value      { return Value{Type: TypeInteger, Int: i} }
func Real(f float64) Value   { return Value{Type: TypeReal, Float: f} }
func Text(s string) Value    { return Value{Type: TypeText, Bytes: []byte(s)} }
func Blob(b []byte) Value    { return Value{Type: TypeBlob, Bytes: b} }
func (v Value) IsNull() bool { return v.Type == TypeNull }
func (v Value) String() string {
	switch v.Type {
	case TypeNull:
		return "NULL"
	case TypeInteger:
		return fmt.Sprint(v.Int)
	case TypeReal:
		return fmt.Sprint(v.Float)
	case TypeText:
		return fmt.Sprintf("%q", v.Bytes)
	case TypeBlob:
		return fmt.Sprintf("x'%x'", v.Bytes)
	}
	return "?"
}

// Validate refuses values SQLite cannot store faithfully (NaN).
func (v Value) Validate() error {
	if v.Type == TypeReal && math.IsNaN(v.Float) {
		return Errorf(EINVALID, "NaN is not a storable REAL value (SQLite turns it into NULL); send NULL or a number instead")
	}
	if v.Type > TypeBlob {
		return Errorf(EINVALID, "unknown value type %d", v.Type)
	}
	return nil
}

// Equal reports whether two values are identical (same class, same bits).
func (v Value) Equal(w Value) bool {
	if v.Type != w.Type {
		return false
	}
	switch v.Type {
	case TypeInteger:
		return v.Int == w.Int
	case TypeReal:
		return math.Float64bits(v.Float) == math.Float64bits(w.Float)
	case TypeText, TypeBlob:
		return string(v.Bytes) == string(w.Bytes)
	}
	return true
}

// Chunks cuts a complete changeset (changes in seq order) into chunks of
// about maxBytes each, as estimated by size (at least one change each). The
// chunks cover contiguous seq ranges from Seqs.Start to Seqs.End; holes are
// seqs since overwritten. A changeset that fits is returned as is.
func (c *Changeset) Chunks(maxBytes int, size func(*Change) int) []Changeset {
	if c.Cleared || len(c.Changes) == 0 {
		return []Changeset{*c}
	}
	var out []Changeset
	start, total, from := c.Seqs.Start, 0, 0
	for i := range c.Changes {
		total += size(&c.Changes[i])
		last := i == len(c.Changes)-1
		if total >= maxBytes || last {
			end := c.Changes[i].Seq
			if last {
				end = c.Seqs.End
			}
			out = append(out, Changeset{Actor: c.Actor, Version: c.Version, Changes: c.Changes[from : i+1],
				Seqs: Range{Start: start, End: end}, LastSeq: c.LastSeq, TS: c.TS})
			start, total, from = end+1, 0, i+1
		}
	}
	return out
}

// Validate checks what can be checked of a changeset without a database:
// versions start at 1, seq ranges fit last_seq, every change sits inside
// its chunk's range, causal lengths are positive and values storable. A
// changeset failing it is poison wherever it goes.
func (c *Changeset) Validate() error {
	if c.Version == 0 {
		return Errorf(EINVALID, "changeset of actor %s: version 0 does not exist (versions start at 1)", c.Actor)
	}
	if c.Cleared {
		if c.ClearedTo < c.Version || len(c.Changes) > 0 {
			return Errorf(EINVALID, "changeset of actor %s: cleared range %d..=%d is empty or carries changes", c.Actor, c.Version, c.ClearedTo)
		}
		return nil
	}
	if c.Seqs.Start > c.Seqs.End || c.Seqs.End > c.LastSeq {
		return Errorf(EINVALID, "changeset of actor %s version %d: seq range %v does not fit last seq %d", c.Actor, c.Version, c.Seqs, c.LastSeq)
	}
	for i := range c.Changes {
		ch := &c.Changes[i]
		switch {
		case ch.Table == "":
			return Errorf(EINVALID, "changeset of actor %s version %d: change %d names no table", c.Actor, c.Version, i)
		case ch.Seq < c.Seqs.Start || ch.Seq > c.Seqs.End:
			return Errorf(EINVALID, "changeset of actor %s version %d: table %q: seq %d outside the chunk's range %v", c.Actor, c.Version, ch.Table, ch.Seq, c.Seqs)
		case ch.CL <= 0:
			return Errorf(EINVALID, "changeset of actor %s version %d: table %q: causal length %d is not positive", c.Actor, c.Version, ch.Table, ch.CL)
		}
		if err := ch.Value.Validate(); err != nil {
			return Errorf(EINVALID, "changeset of actor %s version %d: table %q column %q: %s", c.Actor, c.Version, ch.Table, ch.Column, ErrorMessage(err))
		}
	}
	return nil
}

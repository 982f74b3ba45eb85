package wire

import (
	"fmt"

	"github.com/patinadb/patina"
)

// ProtocolVersion is the wire protocol this build speaks. It is written in the
// header of every frame; a frame with another version is refused with a
// *VersionError before its payload is read.
const ProtocolVersion uint16 = 1

// Magic is the first byte of every patina data-plane frame. memberlist never
// starts a stream with it (its message types are small numbers below 32, plus
// 244 for labels and the encryption marker), and neither does TLS (0x16) or
// HTTP, so a listener shared with them can tell the protocols apart by one
// byte.
const Magic = 0xB7

// MaxFrameSize is the default cap on one frame (header included) that
// ReadFrame accepts when its caller passes no limit of its own.
const MaxFrameSize = 8 << 20

// MaxNameLen is the longest table name a changeset may carry, in bytes.
const MaxNameLen = 255

// Type identifies the message a frame carries.
type Type uint8

// Message types, numbered as on the wire. Numbers are never reused; a number
// this build does not know decodes to an error naming it, never a panic.
const (
	TypeHello            Type = iota + 1 // stream opening: who I am
	TypeHelloAck                         // answer to hello (accepted, or refused with a reason)
	TypeChangesets                       // broadcast: one or more changesets with a TTL
	TypeSyncStateRequest                 // "send me your state"
	TypeSyncState                        // a patina.SyncState
	TypeSyncNeeds                        // []patina.Need
	TypeSyncChangeset                    // one patina.Changeset streamed in answer to needs
	TypeSyncDone                         // end of answers
	TypeError                            // {Code, Message}

	maxType = TypeError
)

var typeNames = [...]string{
	TypeHello:            "Hello",
	TypeHelloAck:         "HelloAck",
	TypeChangesets:       "Changesets",
	TypeSyncStateRequest: "SyncStateRequest",
	TypeSyncState:        "SyncState",
	TypeSyncNeeds:        "SyncNeeds",
	TypeSyncChangeset:    "SyncChangeset",
	TypeSyncDone:         "SyncDone",
	TypeError:            "Error",
}

func (t Type) String() string {
	if t.valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

func (t Type) valid() bool { return t >= TypeHello && t <= maxType }

// Hello purposes: what the stream a Hello opens will carry.
const (
	PurposeBroadcast uint8 = 1 // Changesets frames pushed by the opener
	PurposeSync      uint8 = 2 // an anti-entropy session
)

// Message is one peer message. It is implemented by the pointer types of this
// package: *Hello, *HelloAck, *Changesets, *SyncStateRequest, *SyncState,
// *SyncNeeds, *SyncChangeset, *SyncDone and *Error.
type Message interface {
	Type() Type
}

// Hello opens every data-plane stream: who the opener is and what the stream
// is for.
type Hello struct {
	Protocol  uint16 // the highest wire protocol the opener speaks
	ClusterID uint16 // a node with another cluster id is never a peer
	Actor     patina.ActorID
	Region    string
	Purpose   uint8 // PurposeBroadcast or PurposeSync
}

// HelloAck answers a Hello. A refusal says why in Reason, in words an
// operator can act on.
type HelloAck struct {
	Protocol uint16
	Accepted bool
	Reason   string
}

// Changesets is a broadcast: changesets pushed by From, to be forwarded while
// TTL is above zero.
type Changesets struct {
	From patina.ActorID
	TTL  uint8
	Sets []patina.Changeset
}

// SyncStateRequest asks the peer for its SyncState.
type SyncStateRequest struct{}

// SyncState carries a node's state summary.
type SyncState struct {
	State patina.SyncState
}

// SyncNeeds asks the peer for versions and seqs.
type SyncNeeds struct {
	Needs []patina.Need
}

// SyncChangeset is one changeset (or chunk) streamed in answer to SyncNeeds.
type SyncChangeset struct {
	Set patina.Changeset
}

// SyncDone ends the answers to a SyncNeeds.
type SyncDone struct{}

// Error reports a failure to the peer, with a patina error code.
type Error struct {
	Code    string
	Message string
}

func (*Hello) Type() Type            { return TypeHello }
func (*HelloAck) Type() Type         { return TypeHelloAck }
func (*Changesets) Type() Type       { return TypeChangesets }
func (*SyncStateRequest) Type() Type { return TypeSyncStateRequest }
func (*SyncState) Type() Type        { return TypeSyncState }
func (*SyncNeeds) Type() Type        { return TypeSyncNeeds }
func (*SyncChangeset) Type() Type    { return TypeSyncChangeset }
func (*SyncDone) Type() Type         { return TypeSyncDone }
func (*Error) Type() Type            { return TypeError }

// VersionError is returned for a frame written in another wire protocol
// version.
type VersionError struct {
	Got, Want uint16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("peer speaks wire protocol v%d, this node speaks v%d; upgrade the older node", e.Got, e.Want)
}

// DecodeError is returned for a frame that is malformed, truncated or carries
// a value patina refuses (poison input). It says what failed and where.
type DecodeError struct {
	Type   Type   // the message being decoded; 0 when the frame header failed
	Path   string // the field that failed, e.g. "sets[2]: changes[17]: value"
	Offset int    // frame byte offset where that field starts
	Size   int    // frame length in bytes
	Reason string // what is wrong, e.g. "truncated"
}

func (e *DecodeError) Error() string {
	what := "frame"
	if e.Type.valid() {
		what = e.Type.String()
	}
	path := ""
	if e.Path != "" {
		path = e.Path + ": "
	}
	return fmt.Sprintf("wire: decode %s: %s%s at byte %d of %d", what, path, e.Reason, e.Offset, e.Size)
}

// Marshal appends one complete frame carrying m to dst and returns the
// extended slice. The layout is documented in the package comment.
//
// Marshal encodes whatever it is given; Unmarshal validates. A message that
// breaks a decode rule (a NaN REAL, an empty table name, Seqs out of order)
// marshals into a frame every peer refuses, so producers should validate
// values where they are created. Marshal panics only on a nil message or a
// Message type from outside this package, both programming errors.
func Marshal(dst []byte, m Message) []byte {
	e := encoder{b: dst}
	start := len(e.b)
	e.b = append(e.b, Magic, byte(ProtocolVersion>>8), byte(ProtocolVersion), byte(m.Type()))
	// Reserve lenGuess bytes for the payload length; fixed up below.
	const lenGuess = 3
	e.b = append(e.b, 0, 0, 0)
	payload := len(e.b)
	e.message(m)
	n := len(e.b) - payload
	need := uvarintLen(uint64(n))
	if need != lenGuess {
		hdr := start + headerFixed
		if need > lenGuess {
			e.b = append(e.b, make([]byte, need-lenGuess)...)
		}
		copy(e.b[hdr+need:], e.b[payload:payload+n])
		e.b = e.b[:hdr+need+n]
	}
	putUvarint(e.b[start+headerFixed:], uint64(n), need)
	return e.b
}

// Unmarshal decodes exactly one complete frame; trailing bytes are an error.
// It never panics, allocates at most a constant times len(b), and returns a
// *VersionError for a frame of another protocol version and a *DecodeError
// for anything else it refuses. The decoded message never aliases b.
func Unmarshal(b []byte) (Message, error) {
	d := decoder{b: b}
	h, ok := d.header()
	if !ok {
		return nil, d.error()
	}
	if h.version != ProtocolVersion {
		return nil, &VersionError{Got: h.version, Want: ProtocolVersion}
	}
	m := d.message(h.typ)
	if d.err == nil && d.off != len(d.b) {
		d.failAt(d.off, "", fmt.Sprintf("%d trailing bytes after the message", len(d.b)-d.off))
	}
	if d.err != nil {
		return nil, d.error()
	}
	return m, nil
}

// Package wire is the versioned binary codec for every message patina peers
// exchange on the data plane (broadcast and anti-entropy streams). It is pure:
// it turns messages into bytes and back, with no network, clock, goroutine or
// logging. ReadFrame and WriteFrame only cut frames out of an io.Reader and
// check them on the way to an io.Writer.
//
// Every decoder here faces bytes from other machines, so Unmarshal never
// panics, never allocates more than a constant times the frame's size (no
// length or count is trusted beyond the bytes that remain; the worst case,
// a frame of minimal 4-byte changes each becoming a 152-byte patina.Change,
// is about 40 bytes per frame byte), and refuses poison input with a
// *DecodeError naming the field and byte offset, so the receiver can
// quarantine it and keep serving (INCIDENTS.md #5: one poison row gossiped
// fleet-wide). The decoders are fuzzed (FuzzUnmarshal, FuzzReadFrame).
//
// # Frame
//
//	magic     1 byte   0xB7 (Magic)
//	version   2 bytes  big-endian, ProtocolVersion
//	type      1 byte   Type
//	length    uvarint  payload bytes that follow, exactly
//	payload   length bytes, laid out by type as below
//
// The magic and version are frozen for every future version, so a node can
// always tell a newer peer apart (*VersionError) from garbage.
//
// # Primitives
//
// uvarint and varint are encoding/binary's (varint is zigzag). u16 and u64
// are fixed-width big-endian. actor is 16 raw bytes. bytes and string are a
// uvarint length then the bytes (TEXT may hold NUL bytes). bool is one byte,
// 0 or 1. A range is start (uvarint) then End-Start (uvarint); one that would
// end before it starts is refused. list(X) is a uvarint count then count X.
//
// A name (table or column) is a uvarint: 0 is followed by the name as a
// string, which enters the frame's name dictionary if it holds fewer than 64
// names; n > 0 refers to the n-th dictionary entry. One dictionary spans the
// whole frame, so a broadcast of many small changesets to the same tables
// writes each name once.
//
// A value is a tag byte (patina.ValueType: 0 NULL, 1 INTEGER, 2 REAL, 3 TEXT,
// 4 BLOB) then: nothing; a varint; the IEEE 754 bits as u64 (so -0.0, ±Inf
// and subnormals round-trip bit for bit; NaN is refused at decode); bytes;
// bytes. Only the field of the value's type travels: a decoded Value has the
// other fields zero.
//
// # Payloads
//
//	Hello            protocol u16, cluster_id u16, actor, region string, purpose byte
//	HelloAck         protocol u16, accepted bool, reason string
//	Changesets       from actor, ttl byte, list(changeset)
//	SyncStateRequest (empty)
//	SyncState        actor, list(actor, head uvarint), list(actor, list(range)),
//	                 list(actor, list(version uvarint, last_seq uvarint, list(range)))
//	SyncNeeds        list(actor, versions range, list(range))
//	SyncChangeset    changeset
//	SyncDone         (empty)
//	Error            code string, message string
//
// SyncState maps are written in ascending key order (actors by bytes,
// versions numerically), so one state always gives the same bytes, and the
// decoder refuses keys out of order or repeated.
//
// A changeset is:
//
//	actor       actor
//	version     uvarint, >= 1
//	flags       byte: 0x01 cleared; other bits zero
//	cleared_to  uvarint, only when cleared; >= version
//	seqs        start uvarint, end uvarint (not a range: written as is)
//	last_seq    uvarint; unless cleared, seqs start <= end <= last_seq
//	ts          u64
//	changes     list(change); empty when cleared
//
// A change starts with a flags byte saying which fields it shares with its
// neighbours, since the changes of a changeset are mostly cells of a few rows
// of one version of one actor:
//
//	0x01  table (name) and pk (bytes) follow; else the previous change's
//	0x02  cl follows; else the previous change's
//	0x04  seq follows; else the previous change's seq + 1 (seqs start for the first)
//	0x08  db_version follows; else the changeset's version
//	0x30  site: 0x00 the changeset's actor, 0x10 the zero ActorID, 0x20 16 bytes follow
//	0xC0  reserved, zero
//
// then, in order: [table, pk], column name, value, col_version varint,
// [db_version uvarint], [site actor], [cl varint], [seq uvarint]. The first
// change of a changeset must carry table, pk and cl. Table names are 1..255
// bytes.
//
// # Validation
//
// Marshal writes whatever it is given; Unmarshal refuses, besides malformed
// or truncated bytes: a value type above 4; a REAL NaN; a table name empty
// or over 255 bytes; a changeset version 0; a cleared changeset whose
// cleared_to is below its version or that carries changes; a non-cleared
// changeset without seqs start <= end <= last_seq; any range (needs, gaps,
// partial seqs) ending before it starts; SyncState keys out of order or
// repeated; reserved flag bits; a bool other than 0 or 1; a count larger than
// the remaining bytes could hold; bytes after the message or the frame.
//
// # Round trip
//
// Unmarshal(Marshal(m)) equals m exactly, Site and DBVersion included for any
// value, with two normalizations: every empty slice or map (Value.Bytes,
// Change.PK, Changes, Sets, Needs, ranges, SyncState maps) decodes as nil,
// and a Value keeps only the field of its type. A TEXT or BLOB value with no
// bytes stays distinct from NULL by its tag. Consecutive changes of one row
// share one decoded PK slice; nothing decoded aliases the frame.
package wire

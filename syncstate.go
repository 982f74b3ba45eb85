package patina

// SyncState is a node's compact summary of what it holds, exchanged by
// anti-entropy: per origin actor the highest version seen (head), the version
// ranges below the head it is missing (gaps), and versions received only in
// part (partials).
type SyncState struct {
	Actor    ActorID
	Heads    map[ActorID]Version
	Gaps     map[ActorID][]Range
	Partials map[ActorID]map[Version]Partial
}

// Partial is a version received in part: the seq ranges held and the
// version's last seq.
type Partial struct {
	Have    []Range
	LastSeq Seq
}

// NeedCount returns how many versions the state is missing in gaps and
// partials, for metrics and for "behind" decisions.
func (s *SyncState) NeedCount() uint64 {
	var n uint64
	for _, rs := range s.Gaps {
		for _, r := range rs {
			n += r.Len()
		}
	}
	for _, ps := range s.Partials {
		n += uint64(len(ps))
	}
	return n
}

// Need is one request of an anti-entropy session: versions of an actor, or
// the missing seqs of one partially held version.
type Need struct {
	Actor    ActorID
	Versions Range   // full versions wanted (when Seqs is empty)
	Seqs     []Range // for a partial: the seq ranges wanted of Versions.Start
}

// IsPartial reports whether the need asks for seqs of a single version.
func (n Need) IsPartial() bool { return len(n.Seqs) > 0 }

package patina

import "context"

// Broadcaster pushes committed or newly applied changesets to peers.
type Broadcaster interface {
	// Broadcast queues a locally committed changeset for immediate push; it
	// never blocks.
	Broadcast(cs Changeset)
	// Forward queues a changeset received from peer `from` that was new
	// here; ttl is the hop budget it arrived with. It never blocks.
	Forward(cs Changeset, from ActorID, ttl int)
}

// ChangesetHandler receives changesets from peers. It must not block: it
// only enqueues.
type ChangesetHandler interface {
	HandleChangesets(from ActorID, css []Changeset, ttl int)
}

// SyncServer answers anti-entropy requests from a peer.
type SyncServer interface {
	SyncState() SyncState
	ChangesFor(ctx context.Context, actor ActorID, r Range, maxBytes int, fn func(Changeset) error) error
	PartialChangesFor(ctx context.Context, actor ActorID, v Version, seqs []Range, maxBytes int, fn func(Changeset) error) error
}

// PeerClient opens anti-entropy sessions to peers.
type PeerClient interface {
	// SyncState fetches a peer's state summary.
	SyncState(ctx context.Context, peer Member) (SyncState, error)
	// Pull asks peer for needs and calls fn with each changeset it streams.
	Pull(ctx context.Context, peer Member, needs []Need, fn func(Changeset) error) error
}

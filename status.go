package patina

// NodeStatus is what `patina status` and GET /v1/status report about a node.
type NodeStatus struct {
	Actor     ActorID
	Region    string
	ClusterID uint16
	Members   []Member
	// Sync is the node's bookkeeping summary.
	Heads       map[ActorID]Version
	GapVersions uint64 // versions known to exist and not yet received
	Partials    int    // versions received in part
	// Queues: current depth and bound of every bounded queue, by name
	// ("apply", "broadcast", ...).
	Queues map[string]QueueStatus
	// Deferred changes wait for schema; Quarantined were rejected.
	Deferred    int
	Quarantined int
	// LagP99Seconds is the p99 of commit-to-apply lag of remote changes
	// over the last minutes.
	LagP99Seconds float64
}

// QueueStatus is the depth and bound of one queue.
type QueueStatus struct {
	Len, Cap int
	Dropped  uint64
}

// Package patina is the vocabulary of a gossip-replicated SQLite database for
// service discovery and cluster state. It holds only types and interfaces;
// every implementation lives in a subpackage.
//
// The data path, in eight steps:
//
//  1. A program writes through the agent's HTTP API (package http).
//  2. agent.Transact runs the statements in one SQLite transaction; SQL
//     triggers (package sqlite) turn every changed cell into a Change stamped
//     with this node's next Version and a Seq.
//  3. The committed Changeset goes to the Broadcaster, which pushes it at once
//     to a bounded, region-aware set of peers (package gossip).
//  4. A peer's ChangesetHandler only enqueues what arrives; it never blocks.
//  5. The agent's apply loop batches queued changesets into Store.Apply, which
//     merges every cell with the CRDT rules of package crdt.
//  6. What was new is forwarded with a decreasing TTL and handed to
//     subscriptions.
//  7. Anti-entropy (package antientropy) periodically compares SyncState with
//     a few peers and pulls what gossip missed, newest first.
//  8. Every replica converges to the same rows and the same clocks.
package patina

// Package antientropy decides what a node pulls from its peers to repair what
// broadcast missed (DESIGN.md §2, "Anti-entropy sync"). It is pure: it takes
// sync states and received changesets and returns requests, delays and peer
// choices; the agent's sync driver does the I/O over patina.PeerClient.
//
// The pieces, in the order a sync round uses them:
//
//  1. Backoff says when the next round starts: randomized exponential
//     backoff from DefaultMinBackoff to DefaultMaxBackoff, back to the
//     minimum whenever the node is behind. Corrosion waits 1 s..15 s and
//     never resets; patina targets sub-second repair.
//  2. ChoosePeers picks a few partners: those known to hold versions we
//     lack first, then the least recently synced, then the same region, then
//     at random.
//  3. A Planner, shared by the round's sessions, turns each peer's state
//     into Needs and never asks two peers for the same version or seq range
//     (Corrosion's req_full and req_partials).
//  4. A Session runs one exchange with one peer as a state machine in the
//     style of etcd-io/raft: Ready returns what to send, Step takes what
//     arrived, Advance acknowledges the send.
//  5. On the serving side, Serve drops needs the server cannot answer, so it
//     never streams versions it does not hold.
//
// Needs are newest first: per origin actor the highest chunk of at most
// maxVersions versions comes first, and the first chunk of every actor comes
// before the second chunk of any (Corrosion commit 6b0ac51d replaced a random
// shuffle with newest first, so fresh writes are repaired before old ones).
package antientropy

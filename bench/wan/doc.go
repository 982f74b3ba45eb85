// Package wan is a userspace WAN emulator for benchmarks: TCP and UDP proxies
// on loopback that hold every segment and datagram for the one-way latency
// between the sender's region and the receiver's region, so real processes of
// different systems (patina, etcd, Consul, Serf) see the same network.
//
// Each emulated node has a real address, where its process listens, and a
// proxy address, which it advertises to its peers. A proxy on the proxy
// address forwards to the real address. It learns the sender's region from
// the source of the connection or datagram:
//
//   - by IP: the source IP is a node's real IP (UDP sockets bound to the
//     node's address, or dialers that bind their local address);
//   - by owner (Linux): the source socket's uid (netlink sock_diag for TCP,
//     /proc/net/{tcp,udp} otherwise) names the node when each node runs
//     under its own uid (Node.UID); without uids, the process holding the
//     socket (/proc/PID/fd) is matched with the process holding a node's
//     listening socket (slow: tens of ms on a loaded machine). Loopback dials from an unbound socket all come from 127.0.0.1,
//     so this is what identifies most TCP peers.
//
// Per-source proxy ports (peer j reaches node i on its own port) would need
// every node to be told a different address for each peer; gossip systems
// learn one advertised address per node, so the emulator identifies the
// sender instead.
//
// Delay is applied per connection direction with a timed FIFO: each chunk is
// stamped when read and written when its due time comes, so a slow link
// pipelines (many chunks in flight) instead of sleeping once per write. New
// TCP connections also pay the handshake: client data is held until one RTT
// after the connection was accepted, and the backend is dialled 1.5 RTT after
// it, as a real three-way handshake would allow. UDP keeps one session per
// source address, so replies sent to the session come back through the proxy
// with the reverse delay.
package wan

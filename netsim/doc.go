// Package netsim is an in-memory simulated network for running many patina
// nodes in one process with realistic wide-area behaviour: region latency,
// jitter, packet loss, per-host bandwidth caps, partitions and crashes.
//
// It offers the net package's own primitives, so transport code written for
// the real network runs over it unchanged: a Host has one net.PacketConn
// (ListenPacket, UDP-like, for memberlist's gossip and probes), one
// net.Listener (Listen) and Dial for net.Conn streams (TCP-like, for
// memberlist's push/pull and patina's data plane). Addresses are plain
// host:port strings; every net.Addr returned is an Addr whose String is the
// host address given to AddHost.
//
// # Model
//
// Latency comes from a region RTT matrix (the embedded rtt_ms.csv, 17 regions,
// see Regions and RTT; Config.RTT replaces it). Data from a host in region A
// to one in region B takes RTT(A, B)/2, plus a random jitter of up to
// Config.Jitter times that, plus serialization on the sender's egress link when
// Config.Bandwidth (or Host.SetBandwidth) caps it: a send departs when the
// link is free and holds it for size/bandwidth.
//
//   - Packets are delivered once, or dropped: with probability Config.Loss,
//     when the hosts are partitioned (checked at send and at arrival), when the
//     receiver is down or not listening, or when its receive queue
//     (Config.PacketQueue) is full. Jitter may reorder them. WriteTo never
//     blocks.
//   - Streams are reliable and ordered. Dial costs one RTT (the listener gets
//     the conn after one one-way delay). Written bytes become readable at the
//     peer one one-way delay later; Write blocks when the direction's window
//     (Config.StreamBuffer, bytes in flight plus unread, reopened one one-way
//     delay after a read) is full, and, under a bandwidth cap, when the link is
//     booked more than 25 ms ahead, so bulk streams do not queue seconds of
//     data in front of gossip packets. Close sends FIN after the written data
//     (the peer reads io.EOF), CloseWrite half-closes, and deadlines return
//     errors matching os.ErrDeadlineExceeded with Timeout() true.
//   - Partition and Down break the affected streams: reads return what had
//     already arrived, then an error wrapping ErrPartitioned or ErrHostDown.
//     Dial fails at once (no SYN timeout) with an error wrapping
//     ErrUnknownHost, ErrHostDown, ErrRefused or ErrPartitioned.
//
// Time is real, not virtual: a test across the Pacific waits the real 100 ms.
// Every delivery is an event in one min-heap run by one scheduler goroutine per
// Network, so traffic costs a heap push, not a goroutine or timer, and
// Network.Close leaves no goroutine behind. All randomness comes from one
// rand.Rand seeded with Config.Seed: the same seed and the same sequence of
// sends make the same loss and jitter decisions.
package netsim

package netsim

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for Config fields left zero.
const (
	// DefaultPacketQueue is the number of received packets a host buffers
	// before ReadFrom takes them; further packets are dropped.
	DefaultPacketQueue = 4096
	// DefaultStreamBuffer is the flow-control window of one stream direction:
	// bytes in flight plus bytes received and not yet read.
	DefaultStreamBuffer = 4 << 20
)

const (
	// acceptBacklog bounds connections waiting for Accept; a dial beyond it is
	// refused, like a full SYN backlog.
	acceptBacklog = 1024
	// maxChunk is the largest piece a stream write is cut into; each piece is
	// one scheduler event and, with a bandwidth cap, one link reservation.
	maxChunk = 64 << 10
	// minChunk is the smallest piece when a low bandwidth cap shrinks pieces
	// (one Ethernet-sized segment).
	minChunk = 1460
	// maxStreamLinkQueue is how far ahead of now a stream may reserve its
	// host's link before its writer blocks. Without it one bulk stream would
	// queue seconds of data on the link and delay every gossip packet behind
	// it, which a real kernel (whose socket buffer is not the NIC queue) does
	// not do.
	maxStreamLinkQueue = 25 * time.Millisecond
	// maxPacketLinkQueue is how far ahead of now a packet may reserve its
	// host's link; beyond it the packet is dropped (a full NIC/router queue).
	maxPacketLinkQueue = 500 * time.Millisecond
)

// Errors wrapped by the errors of Dial, and of Read and Write on a stream that
// broke. Test them with errors.Is.
var (
	ErrUnknownHost   = errors.New("unknown host")
	ErrHostDown      = errors.New("host down")
	ErrRefused       = errors.New("connection refused")
	ErrPartitioned   = errors.New("partitioned")
	ErrReset         = errors.New("connection reset by peer")
	ErrNetworkClosed = errors.New("network closed")
	// ErrShutdown is returned by Write after CloseWrite (TCP's EPIPE).
	ErrShutdown = errors.New("write after CloseWrite")
)

// Config is the behaviour of a simulated network. The zero value is a
// lossless network with the embedded region RTT matrix and no bandwidth cap.
type Config struct {
	// Seed seeds the one random source of the network (loss and jitter
	// decisions). The same seed and the same sequence of sends give the same
	// decisions. Zero is a valid seed.
	Seed int64
	// RTT returns the round-trip time between two regions; one-way delay is
	// half of it. Nil means the embedded matrix (package func RTT), and then
	// AddHost refuses a region the matrix lacks. A custom func must answer for
	// every pair of regions it is given.
	RTT func(from, to string) time.Duration
	// Jitter adds to every one-way delay a uniformly random extra in
	// [0, Jitter*delay]. Packets may reorder; streams never do. Zero means none.
	Jitter float64
	// Loss is the probability, in [0, 1], that a packet is dropped. Streams
	// are reliable (like TCP) and never lose bytes. Zero means none.
	Loss float64
	// Bandwidth caps each host's egress, in bytes per second, shared by its
	// packets and streams: a send departs when the host's link is free and
	// occupies it for size/Bandwidth. Zero means unlimited. Host.SetBandwidth
	// overrides it per host.
	Bandwidth int64
	// PacketQueue bounds each host's received-but-unread packets; overflow is
	// dropped and counted. Zero means DefaultPacketQueue.
	PacketQueue int
	// StreamBuffer bounds, in bytes, each stream direction's data in flight
	// plus received-but-unread; a writer blocks when it is full (flow
	// control). Zero means DefaultStreamBuffer.
	StreamBuffer int
}

// Network is an in-memory network of hosts, each with one packet socket and
// one stream listener, connected with region latency, jitter, loss, per-host
// bandwidth caps and partitions. Time is real time: a 140 ms RTT takes 140 ms.
// All methods are safe for concurrent use.
type Network struct {
	cfg   Config
	sched *scheduler

	mu     sync.RWMutex
	hosts  map[string]*Host
	groups map[string]int // partition group per host addr; nil = healed
	closed bool

	rngMu sync.Mutex
	rng   *rand.Rand
	loss  float64

	streamsMu sync.Mutex
	streams   map[*stream]struct{}
}

// New returns a running network. It panics on an invalid Config (negative
// or out-of-range values), which is a programming error.
func New(cfg Config) *Network {
	if cfg.Loss < 0 || cfg.Loss > 1 || cfg.Jitter < 0 || cfg.Bandwidth < 0 || cfg.PacketQueue < 0 || cfg.StreamBuffer < 0 {
		panic(fmt.Sprintf("netsim: invalid config: Loss %v (want 0..1), Jitter %v, Bandwidth %d, PacketQueue %d, StreamBuffer %d (want >= 0)",
			cfg.Loss, cfg.Jitter, cfg.Bandwidth, cfg.PacketQueue, cfg.StreamBuffer))
	}
	if cfg.PacketQueue == 0 {
		cfg.PacketQueue = DefaultPacketQueue
	}
	if cfg.StreamBuffer == 0 {
		cfg.StreamBuffer = DefaultStreamBuffer
	}
	return &Network{
		cfg:     cfg,
		sched:   newScheduler(),
		hosts:   map[string]*Host{},
		rng:     rand.New(rand.NewSource(cfg.Seed)),
		loss:    cfg.Loss,
		streams: map[*stream]struct{}{},
	}
}

// AddHost adds a host with a unique address (host:port, e.g. "10.0.0.7:7946";
// memberlist wants an IP as the host part) in a region. The host starts up,
// with nothing listening.
func (n *Network) AddHost(addr, region string) (*Host, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("netsim: add host %q: want host:port: %w", addr, err)
	}
	if n.cfg.RTT == nil {
		if _, ok := RTT(region, region); !ok {
			return nil, fmt.Errorf("netsim: add host %s: unknown region %q (known: %v)", addr, region, Regions())
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("netsim: add host %s: %w", addr, ErrNetworkClosed)
	}
	if _, ok := n.hosts[addr]; ok {
		return nil, fmt.Errorf("netsim: add host %s: address already in use", addr)
	}
	h := &Host{n: n, addr: addr, region: region, bandwidth: n.cfg.Bandwidth}
	n.hosts[addr] = h
	return h, nil
}

// Host returns the host with addr, or nil.
func (n *Network) Host(addr string) *Host {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.hosts[addr]
}

// Hosts returns every host, sorted by address.
func (n *Network) Hosts() []*Host {
	n.mu.RLock()
	hs := make([]*Host, 0, len(n.hosts))
	for _, h := range n.hosts {
		hs = append(hs, h)
	}
	n.mu.RUnlock()
	slices.SortFunc(hs, func(a, b *Host) int { return strings.Compare(a.addr, b.addr) })
	return hs
}

// Partition splits the network: hosts in different groups cannot reach each
// other; hosts named in no group form one more group together, so
// Partition([]string{a}) isolates a from everyone. Packets across groups are
// dropped (also those already in flight), dials fail with ErrPartitioned, and
// existing streams across groups break: their reads return what had already
// arrived, then an error wrapping ErrPartitioned. A new Partition replaces the
// previous one. It panics on an unknown or repeated address.
func (n *Network) Partition(groups ...[]string) {
	gid := map[string]int{}
	n.mu.Lock()
	for i, g := range groups {
		for _, addr := range g {
			if _, ok := n.hosts[addr]; !ok {
				n.mu.Unlock()
				panic(fmt.Sprintf("netsim: partition: unknown host %q", addr))
			}
			if _, dup := gid[addr]; dup {
				n.mu.Unlock()
				panic(fmt.Sprintf("netsim: partition: host %q in two groups", addr))
			}
			gid[addr] = i + 1
		}
	}
	n.groups = gid
	n.mu.Unlock()
	n.breakStreams(func(s *stream) bool { return !n.reachable(s.a, s.b) }, ErrPartitioned)
}

// Heal removes the partition. Broken streams stay broken; dial again.
func (n *Network) Heal() {
	n.mu.Lock()
	n.groups = nil
	n.mu.Unlock()
}

// SetLoss changes the packet loss probability (0..1) from now on.
func (n *Network) SetLoss(p float64) {
	if p < 0 || p > 1 {
		panic(fmt.Sprintf("netsim: SetLoss(%v): want 0..1", p))
	}
	n.rngMu.Lock()
	n.loss = p
	n.rngMu.Unlock()
}

// HostStats are one host's counters since AddHost.
type HostStats struct {
	PacketsSent     int64 // packets accepted by WriteTo
	PacketsDropped  int64 // of those, never delivered: loss, partition, down or closed receiver, full queue
	PacketBytes     int64 // payload bytes of PacketsSent
	PacketsReceived int64 // packets delivered into this host's receive queue
	StreamBytesSent int64 // bytes accepted by Write on this host's streams
	StreamsOpened   int64 // successful Dials from this host
	StreamsAccepted int64 // connections handed to this host's listener
}

// Stats returns every host's counters, keyed by host address.
func (n *Network) Stats() map[string]HostStats {
	n.mu.RLock()
	defer n.mu.RUnlock()
	m := make(map[string]HostStats, len(n.hosts))
	for addr, h := range n.hosts {
		m[addr] = h.Stats()
	}
	return m
}

// Close shuts the network down: every listener, packet conn and stream is
// closed or broken (errors wrap ErrNetworkClosed or net.ErrClosed), undelivered
// traffic is discarded and the scheduler goroutine exits. Close is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	hosts := make([]*Host, 0, len(n.hosts))
	for _, h := range n.hosts {
		hosts = append(hosts, h)
	}
	n.mu.Unlock()
	for _, h := range hosts {
		h.closeSockets()
	}
	n.breakStreams(func(*stream) bool { return true }, ErrNetworkClosed)
	n.sched.close()
	return nil
}

func (n *Network) isClosed() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.closed
}

// reachable reports whether a and b are in the same partition group.
func (n *Network) reachable(a, b *Host) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.groups == nil || n.groups[a.addr] == n.groups[b.addr]
}

// oneWay returns the base one-way delay from a to b.
func (n *Network) oneWay(a, b *Host) time.Duration {
	var rtt time.Duration
	if n.cfg.RTT != nil {
		rtt = n.cfg.RTT(a.region, b.region)
	} else {
		rtt, _ = RTT(a.region, b.region) // regions validated by AddHost
	}
	return max(0, rtt/2)
}

// jitter returns the random extra delay for a one-way delay d.
func (n *Network) jitter(d time.Duration) time.Duration {
	if n.cfg.Jitter == 0 || d <= 0 {
		return 0
	}
	n.rngMu.Lock()
	f := n.rng.Float64()
	n.rngMu.Unlock()
	return time.Duration(f * n.cfg.Jitter * float64(d))
}

// packetFate draws the random decisions for one packet, always in the same
// order so that a seed reproduces them: lost, then extra delay.
func (n *Network) packetFate(d time.Duration) (lost bool, extra time.Duration) {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	if n.loss > 0 {
		lost = n.rng.Float64() < n.loss
	}
	if n.cfg.Jitter > 0 && d > 0 {
		extra = time.Duration(n.rng.Float64() * n.cfg.Jitter * float64(d))
	}
	return lost, extra
}

func (n *Network) register(s *stream) bool {
	n.streamsMu.Lock()
	defer n.streamsMu.Unlock()
	if n.isClosed() {
		return false
	}
	n.streams[s] = struct{}{}
	return true
}

func (n *Network) unregister(s *stream) {
	n.streamsMu.Lock()
	delete(n.streams, s)
	n.streamsMu.Unlock()
}

// breakStreams breaks every registered stream for which match is true.
func (n *Network) breakStreams(match func(*stream) bool, reason error) {
	n.streamsMu.Lock()
	var hit []*stream
	for s := range n.streams {
		if match(s) {
			hit = append(hit, s)
		}
	}
	n.streamsMu.Unlock()
	for _, s := range hit {
		s.fail(reason)
	}
}

// Addr is the address of a simulated host; String returns the host:port given
// to AddHost.
type Addr string

// Network returns "netsim".
func (Addr) Network() string { return "netsim" }

// String returns the host address.
func (a Addr) String() string { return string(a) }

var _ net.Addr = Addr("")

package netsim

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Host is one machine of the network: an address in a region with at most
// one packet conn and one listener open at a time.
type Host struct {
	n      *Network
	addr   string
	region string

	mu        sync.Mutex
	down      bool
	pc        *packetConn
	ln        *listener
	bandwidth int64         // egress bytes/s, 0 = unlimited
	linkFree  time.Duration // scheduler time the egress link is next idle

	packetsSent, packetsDropped, packetBytes, packetsReceived atomic.Int64
	streamBytesSent, streamsOpened, streamsAccepted           atomic.Int64
}

// Addr returns the host's address as given to AddHost.
func (h *Host) Addr() string { return h.addr }

// Region returns the host's region.
func (h *Host) Region() string { return h.region }

// String returns "addr (region)".
func (h *Host) String() string { return h.addr + " (" + h.region + ")" }

// Stats returns the host's counters.
func (h *Host) Stats() HostStats {
	return HostStats{
		PacketsSent:     h.packetsSent.Load(),
		PacketsDropped:  h.packetsDropped.Load(),
		PacketBytes:     h.packetBytes.Load(),
		PacketsReceived: h.packetsReceived.Load(),
		StreamBytesSent: h.streamBytesSent.Load(),
		StreamsOpened:   h.streamsOpened.Load(),
		StreamsAccepted: h.streamsAccepted.Load(),
	}
}

// SetBandwidth sets this host's egress cap in bytes per second (0 =
// unlimited), overriding Config.Bandwidth.
func (h *Host) SetBandwidth(bytesPerSec int64) {
	if bytesPerSec < 0 {
		panic(fmt.Sprintf("netsim: SetBandwidth(%d): want >= 0", bytesPerSec))
	}
	h.mu.Lock()
	h.bandwidth = bytesPerSec
	h.mu.Unlock()
}

// IsDown reports whether the host is down.
func (h *Host) IsDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// ListenPacket opens the host's packet conn (UDP-like). There is one per host;
// after it is closed (or after Down and Up) it can be opened again.
func (h *Host) ListenPacket() (net.PacketConn, error) {
	if h.n.isClosed() {
		return nil, fmt.Errorf("netsim: listen packet on %s: %w", h.addr, ErrNetworkClosed)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, fmt.Errorf("netsim: listen packet on %s: %w", h.addr, ErrHostDown)
	}
	if h.pc != nil {
		return nil, fmt.Errorf("netsim: listen packet on %s: address already in use", h.addr)
	}
	h.pc = newPacketConn(h)
	return h.pc, nil
}

// Listen opens the host's stream listener (TCP-like). There is one per host;
// after it is closed (or after Down and Up) it can be opened again.
func (h *Host) Listen() (net.Listener, error) {
	if h.n.isClosed() {
		return nil, fmt.Errorf("netsim: listen on %s: %w", h.addr, ErrNetworkClosed)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, fmt.Errorf("netsim: listen on %s: %w", h.addr, ErrHostDown)
	}
	if h.ln != nil {
		return nil, fmt.Errorf("netsim: listen on %s: address already in use", h.addr)
	}
	h.ln = &listener{h: h}
	return h.ln, nil
}

// Dial opens a stream to the host at addr. It fails at once, with an error
// like "netsim: dial 10.0.0.3:7946 from 10.0.0.1:7946: partitioned" wrapping
// ErrUnknownHost, ErrHostDown, ErrRefused or ErrPartitioned, when the target
// cannot be reached; otherwise the handshake costs one RTT: the listener gets
// the conn after one one-way delay and Dial returns after the RTT. If ctx ends
// first, the half-open stream is reset and the error wraps ctx.Err().
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n := h.n
	fail := func(err error) error {
		return fmt.Errorf("netsim: dial %s from %s: %w", addr, h.addr, err)
	}
	if n.isClosed() {
		return nil, fail(ErrNetworkClosed)
	}
	if h.IsDown() {
		return nil, fail(fmt.Errorf("%w: %s", ErrHostDown, h.addr))
	}
	to := n.Host(addr)
	if to == nil {
		return nil, fail(ErrUnknownHost)
	}
	if !n.reachable(h, to) {
		return nil, fail(ErrPartitioned)
	}
	to.mu.Lock()
	down, listening := to.down, to.ln != nil
	to.mu.Unlock()
	if down {
		return nil, fail(ErrHostDown)
	}
	if !listening {
		return nil, fail(ErrRefused)
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(err)
	}

	s := newStream(h, to)
	if !n.register(s) {
		return nil, fail(ErrNetworkClosed)
	}
	n.sched.at(n.sched.now()+s.oneWay, s.arrive)
	select {
	case <-s.dialed:
		if s.dialErr != nil {
			return nil, fail(s.dialErr)
		}
		h.streamsOpened.Add(1)
		return s.ca, nil
	case <-ctx.Done():
		s.fail(ErrReset)
		return nil, fail(ctx.Err())
	}
}

// Down crashes the host: its listener and packet conn close (blocked calls
// return net.ErrClosed), every stream to or from it breaks (reads on both ends
// return what had already arrived, then an error wrapping ErrHostDown), and
// traffic to it is dropped until Up and a new Listen or ListenPacket.
func (h *Host) Down() {
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		return
	}
	h.down = true
	h.mu.Unlock()
	h.closeSockets()
	h.n.breakStreams(func(s *stream) bool { return s.a == h || s.b == h },
		fmt.Errorf("%w: %s", ErrHostDown, h.addr))
}

// Up restarts a host that is down: it can Listen, ListenPacket and Dial again.
func (h *Host) Up() {
	h.mu.Lock()
	h.down = false
	h.mu.Unlock()
}

// closeSockets closes the listener and the packet conn.
func (h *Host) closeSockets() {
	h.mu.Lock()
	pc, ln := h.pc, h.ln
	h.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
	if ln != nil {
		ln.Close()
	}
}

// packetConn returns the open packet conn, or nil when down or closed.
func (h *Host) packetConn() *packetConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil
	}
	return h.pc
}

// listener returns the open listener, or nil when down or closed.
func (h *Host) listener() *listener {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil
	}
	return h.ln
}

// reserveLink books size bytes on the egress link at or after now and returns
// the departure time (when the last byte has left). ok is false when the link
// is already booked more than maxQueue ahead of now (nothing is booked then).
// Without a bandwidth cap it returns now.
func (h *Host) reserveLink(now time.Duration, size int, maxQueue time.Duration) (depart time.Duration, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bandwidth <= 0 {
		return now, true
	}
	start := max(now, h.linkFree)
	if start-now > maxQueue {
		return 0, false
	}
	h.linkFree = start + time.Duration(int64(size)*int64(time.Second)/h.bandwidth)
	return h.linkFree, true
}

// linkBacklog returns how far ahead of now the egress link is booked.
func (h *Host) linkBacklog(now time.Duration) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bandwidth <= 0 {
		return 0
	}
	return max(0, h.linkFree-now)
}

// chunkSize returns the largest piece a stream write is cut into.
func (h *Host) chunkSize() int {
	h.mu.Lock()
	bw := h.bandwidth
	h.mu.Unlock()
	if bw <= 0 {
		return maxChunk
	}
	return int(min(max(bw/200, minChunk), maxChunk)) // at most ~5 ms of link time
}

package netsim

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// packet is a datagram waiting in a receive queue.
type packet struct {
	from string
	data []byte
}

// packetConn is a host's UDP-like socket. Writes never block: a packet is
// scheduled for delivery or dropped. Reads take packets from a bounded queue.
type packetConn struct {
	h      *Host
	rd, wd *deadline

	mu     sync.Mutex
	queue  []packet // FIFO; head at index 0
	closed bool
	notify notifier
}

var _ net.PacketConn = (*packetConn)(nil)

func newPacketConn(h *Host) *packetConn {
	return &packetConn{h: h, rd: newDeadline(), wd: newDeadline()}
}

func (c *packetConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "netsim", Source: Addr(c.h.addr), Addr: addr, Err: err}
}

// ReadFrom waits for a packet, copies it into b (truncating, like UDP, when b
// is short) and returns the sender's address (an Addr).
func (c *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		rd := c.rd.wait()
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, nil, c.opError("read", nil, net.ErrClosed)
		}
		if isClosed(rd) {
			c.mu.Unlock()
			return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
		}
		if len(c.queue) > 0 {
			p := c.queue[0]
			c.queue[0] = packet{}
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return copy(b, p.data), Addr(p.from), nil
		}
		wake := c.notify.wait()
		c.mu.Unlock()
		select {
		case <-wake:
		case <-rd:
		}
	}
}

// WriteTo sends b to the host at addr.String(). It never blocks and returns
// len(b) whether or not the packet will arrive (loss, partitions, a down or
// silent receiver drop it quietly, as UDP does); it fails only for a closed
// conn, a passed write deadline, or an address no host has.
func (c *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.isClosed() {
		return 0, c.opError("write", addr, net.ErrClosed)
	}
	if isClosed(c.wd.wait()) {
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	}
	n := c.h.n
	to := n.Host(addr.String())
	if to == nil {
		return 0, c.opError("write", addr, fmt.Errorf("%w: %s", ErrUnknownHost, addr))
	}
	from := c.h
	from.packetsSent.Add(1)
	from.packetBytes.Add(int64(len(b)))
	d := n.oneWay(from, to)
	lost, extra := n.packetFate(d)
	if lost || !n.reachable(from, to) || to.packetConn() == nil {
		from.packetsDropped.Add(1)
		return len(b), nil
	}
	now := n.sched.now()
	depart, ok := from.reserveLink(now, len(b), maxPacketLinkQueue)
	if !ok {
		from.packetsDropped.Add(1)
		return len(b), nil
	}
	p := packet{from: from.addr, data: append([]byte(nil), b...)}
	n.sched.at(depart+d+extra, func() { deliverPacket(from, to, p) })
	return len(b), nil
}

// deliverPacket runs on the scheduler when p reaches to.
func deliverPacket(from, to *Host, p packet) {
	pc := to.packetConn()
	if pc == nil || !from.n.reachable(from, to) || !pc.push(p) {
		from.packetsDropped.Add(1)
		return
	}
	to.packetsReceived.Add(1)
}

// push queues p; false if the conn is closed or its queue is full.
func (c *packetConn) push(p packet) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.queue) >= c.h.n.cfg.PacketQueue {
		return false
	}
	c.queue = append(c.queue, p)
	c.notify.broadcast()
	return true
}

// Close closes the conn; blocked reads return net.ErrClosed and queued packets
// are discarded. The host may ListenPacket again.
func (c *packetConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", nil, net.ErrClosed)
	}
	c.closed = true
	c.queue = nil
	c.notify.broadcast()
	c.mu.Unlock()
	c.rd.stop()
	c.wd.stop()
	c.h.mu.Lock()
	if c.h.pc == c {
		c.h.pc = nil
	}
	c.h.mu.Unlock()
	return nil
}

func (c *packetConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// LocalAddr returns the host's address.
func (c *packetConn) LocalAddr() net.Addr { return Addr(c.h.addr) }

// SetDeadline sets the read and write deadlines.
func (c *packetConn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline for ReadFrom, also for a blocked one.
func (c *packetConn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline; WriteTo never blocks, so it only
// fails once the deadline has passed.
func (c *packetConn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", nil, net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

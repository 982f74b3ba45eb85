package netsim

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// stream is one TCP-like connection between a dialer a and an acceptor b: two
// pipes and the two conns that use them.
type stream struct {
	n      *Network
	a, b   *Host
	oneWay time.Duration // base one-way delay a<->b
	ab, ba *pipe
	ca, cb *conn // a's end, b's end

	mu      sync.Mutex
	state   streamState
	dialErr error         // set before dialed is closed
	dialed  chan struct{} // closed when the handshake succeeds or fails
	open    int           // ends not yet closed
}

type streamState uint8

const (
	dialing streamState = iota
	established
	broken
)

func newStream(a, b *Host) *stream {
	n := a.n
	s := &stream{n: n, a: a, b: b, oneWay: n.oneWay(a, b), dialed: make(chan struct{}), open: 2}
	s.ab = &pipe{s: s, size: n.cfg.StreamBuffer}
	s.ba = &pipe{s: s, size: n.cfg.StreamBuffer}
	s.ca = newConn(s, a, b, s.ba, s.ab)
	s.cb = newConn(s, b, a, s.ab, s.ba)
	return s
}

// arrive runs on the scheduler when the dialer's SYN reaches b.
func (s *stream) arrive() {
	n := s.n
	if !n.reachable(s.a, s.b) {
		s.fail(ErrPartitioned)
		return
	}
	ln := s.b.listener()
	if ln == nil {
		s.fail(ErrRefused)
		return
	}
	s.mu.Lock()
	ok := s.state == dialing
	s.mu.Unlock()
	if !ok || !ln.enqueue(s.cb) {
		s.fail(ErrRefused)
		return
	}
	n.sched.at(n.sched.now()+s.oneWay, s.establish)
}

// establish runs on the scheduler when b's SYN-ACK reaches the dialer.
func (s *stream) establish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != dialing {
		return
	}
	s.state = established
	close(s.dialed)
}

// fail breaks the stream: pending and future reads (after what had arrived)
// and writes on both ends return an error wrapping reason; a pending dial
// fails with it.
func (s *stream) fail(reason error) {
	s.mu.Lock()
	if s.state == broken {
		s.mu.Unlock()
		return
	}
	if s.state == dialing {
		s.dialErr = reason
		close(s.dialed)
	}
	s.state = broken
	s.mu.Unlock()
	s.ab.fail(reason)
	s.ba.fail(reason)
	s.n.unregister(s)
}

// endClosed is called once per end on Close; the second unregisters.
func (s *stream) endClosed() {
	s.mu.Lock()
	s.open--
	done := s.open == 0
	s.mu.Unlock()
	if done {
		s.n.unregister(s)
	}
}

// pipe is one direction of a stream. Bytes written at t are delivered by a
// scheduler event at t + one-way delay (+ link serialization, + jitter, never
// earlier than the previous chunk), then wait in ready until read. in-flight,
// ready and not-yet-acknowledged bytes together are bounded by size: that is
// the flow-control window, reopened one one-way delay after the reader reads.
type pipe struct {
	s    *stream
	size int // window, bytes

	mu            sync.Mutex
	ready         [][]byte // delivered, unread chunks; ready[0] may be partly read
	readyBytes    int
	inflight      int           // written, not yet delivered
	unacked       int           // read, window update not yet back at the writer
	updatePending bool          // a window update event is scheduled
	lastAt        time.Duration // delivery time of the last chunk or FIN
	finSent       bool          // writer closed its side
	eof           bool          // FIN delivered
	readerClosed  bool          // reader's conn closed: writes are reset
	err           error         // broken
	notify        notifier
}

// used returns the window in use.
func (p *pipe) used() int { return p.inflight + p.readyBytes + p.unacked }

func (p *pipe) fail(reason error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = reason
	}
	p.notify.broadcast()
	p.mu.Unlock()
}

// deliver runs on the scheduler when chunk reaches the reader.
func (p *pipe) deliver(chunk []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight -= len(chunk)
	if p.err == nil && !p.readerClosed {
		p.ready = append(p.ready, chunk)
		p.readyBytes += len(chunk)
	}
	p.notify.broadcast()
}

// deliverFIN runs on the scheduler when the writer's FIN reaches the reader.
func (p *pipe) deliverFIN() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.eof = true
	}
	p.notify.broadcast()
}

// windowUpdate runs on the scheduler when read bytes are acknowledged.
func (p *pipe) windowUpdate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unacked = 0
	p.updatePending = false
	p.notify.broadcast()
}

// sendFIN schedules the writer's FIN after all data. Caller holds p.mu.
func (p *pipe) sendFIN() {
	if p.finSent {
		return
	}
	p.finSent = true
	n := p.s.n
	at := max(p.lastAt, n.sched.now()+p.s.oneWay)
	p.lastAt = at
	n.sched.at(at, p.deliverFIN)
	p.notify.broadcast()
}

// conn is one end of a stream.
type conn struct {
	s             *stream
	local, remote *Host
	in, out       *pipe
	rd, wd        *deadline
	wlock         chan struct{} // cap 1: one Write at a time, so writes never interleave

	closeOnce sync.Once
	closed    chan struct{}
}

var _ net.Conn = (*conn)(nil)

func newConn(s *stream, local, remote *Host, in, out *pipe) *conn {
	return &conn{
		s: s, local: local, remote: remote, in: in, out: out,
		rd: newDeadline(), wd: newDeadline(),
		wlock:  make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "netsim", Source: Addr(c.local.addr), Addr: Addr(c.remote.addr), Err: err}
}

// Read reads what has arrived; at the peer's FIN, after the data before it,
// it returns io.EOF. It blocks until data, FIN, a break, Close or the read
// deadline.
func (c *conn) Read(b []byte) (int, error) {
	p := c.in
	for {
		rd := c.rd.wait()
		if isClosed(c.closed) {
			return 0, c.opError("read", net.ErrClosed)
		}
		if isClosed(rd) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		p.mu.Lock()
		if p.readyBytes > 0 {
			n := p.read(b)
			p.mu.Unlock()
			return n, nil
		}
		if len(b) == 0 && p.err == nil {
			p.mu.Unlock()
			return 0, nil
		}
		if p.eof {
			p.mu.Unlock()
			return 0, io.EOF
		}
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return 0, c.opError("read", err)
		}
		wake := p.notify.wait()
		p.mu.Unlock()
		select {
		case <-wake:
		case <-rd:
		case <-c.closed:
		}
	}
}

// read copies ready bytes into b and schedules the window update. Caller
// holds p.mu and checked readyBytes > 0.
func (p *pipe) read(b []byte) int {
	n := 0
	for n < len(b) && len(p.ready) > 0 {
		k := copy(b[n:], p.ready[0])
		n += k
		if k == len(p.ready[0]) {
			p.ready[0] = nil
			p.ready = p.ready[1:]
		} else {
			p.ready[0] = p.ready[0][k:]
		}
	}
	p.readyBytes -= n
	p.unacked += n
	if !p.updatePending && p.err == nil {
		p.updatePending = true
		sched := p.s.n.sched
		sched.at(sched.now()+p.s.oneWay, p.windowUpdate)
	}
	return n
}

// Write queues b for delivery. It returns once all of b is queued, blocking
// while the flow-control window is full (the reader is slow) or, with a
// bandwidth cap, while the host's link is booked ahead; it fails on Close,
// CloseWrite, a break, the peer having closed, or the write deadline, with
// the count of bytes queued before.
func (c *conn) Write(b []byte) (int, error) {
	wd := c.wd.wait()
	select {
	case c.wlock <- struct{}{}:
	case <-c.closed:
		return 0, c.opError("write", net.ErrClosed)
	case <-wd:
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	defer func() { <-c.wlock }()

	p, n, h := c.out, c.s.n, c.local
	chunk := h.chunkSize()
	total := 0
	for total < len(b) || len(b) == 0 {
		wd = c.wd.wait()
		if isClosed(c.closed) {
			return total, c.opError("write", net.ErrClosed)
		}
		if isClosed(wd) {
			return total, c.opError("write", os.ErrDeadlineExceeded)
		}
		p.mu.Lock()
		var err error
		switch {
		case p.err != nil:
			err = p.err
		case p.finSent:
			err = ErrShutdown
		case p.readerClosed:
			err = ErrReset
		}
		if err != nil {
			p.mu.Unlock()
			return total, c.opError("write", err)
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return 0, nil
		}
		var timer *time.Timer
		var wait <-chan time.Time
		now := n.sched.now()
		room := p.size - p.used()
		if room <= 0 {
			// Window full: wait for the reader.
		} else if backlog := h.linkBacklog(now); backlog > maxStreamLinkQueue {
			timer = time.NewTimer(backlog - maxStreamLinkQueue)
			wait = timer.C
		} else {
			k := min(len(b)-total, room, chunk)
			depart, _ := h.reserveLink(now, k, time.Duration(1<<62))
			at := max(p.lastAt, depart+p.s.oneWay+n.jitter(p.s.oneWay))
			p.lastAt = at
			p.inflight += k
			data := append([]byte(nil), b[total:total+k]...)
			n.sched.at(at, func() { p.deliver(data) })
			p.mu.Unlock()
			total += k
			h.streamBytesSent.Add(int64(k))
			continue
		}
		wake := p.notify.wait()
		p.mu.Unlock()
		select {
		case <-wake:
		case <-wait:
		case <-wd:
		case <-c.closed:
		}
		if timer != nil {
			timer.Stop()
		}
	}
	return total, nil
}

// Close closes this end: local reads and writes return net.ErrClosed, data
// written before reaches the peer followed by EOF, unread data is discarded
// and the peer's further writes fail with ErrReset.
func (c *conn) Close() error {
	err := c.opError("close", net.ErrClosed)
	c.closeOnce.Do(func() {
		err = nil
		close(c.closed)
		c.out.mu.Lock()
		if c.out.err == nil {
			c.out.sendFIN()
		}
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.readerClosed = true
		c.in.ready, c.in.readyBytes = nil, 0
		c.in.notify.broadcast()
		c.in.mu.Unlock()
		c.rd.stop()
		c.wd.stop()
		c.s.endClosed()
	})
	return err
}

// CloseWrite sends FIN after the data written so far, like
// (*net.TCPConn).CloseWrite: the peer reads io.EOF, this end can still read.
func (c *conn) CloseWrite() error {
	if isClosed(c.closed) {
		return c.opError("close", net.ErrClosed)
	}
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.out.err != nil {
		return c.opError("close", c.out.err)
	}
	c.out.sendFIN()
	return nil
}

// LocalAddr returns this host's address.
func (c *conn) LocalAddr() net.Addr { return Addr(c.local.addr) }

// RemoteAddr returns the peer host's address.
func (c *conn) RemoteAddr() net.Addr { return Addr(c.remote.addr) }

// SetDeadline sets the read and write deadlines, also for blocked calls.
func (c *conn) SetDeadline(t time.Time) error {
	if isClosed(c.closed) {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline, also for a blocked Read.
func (c *conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.closed) {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline, also for a blocked Write.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if isClosed(c.closed) {
		return c.opError("set", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// listener is a host's TCP-like listener.
type listener struct {
	h *Host

	mu     sync.Mutex
	queue  []*conn // accepted by the network, not yet by Accept
	closed bool
	notify notifier
}

var _ net.Listener = (*listener)(nil)

// enqueue hands an arriving conn to Accept; false if closed or the backlog is
// full.
func (l *listener) enqueue(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.queue) >= acceptBacklog {
		return false
	}
	l.queue = append(l.queue, c)
	l.notify.broadcast()
	l.h.streamsAccepted.Add(1)
	return true
}

// Accept waits for the next connection.
func (l *listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "netsim", Addr: Addr(l.h.addr), Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return c, nil
		}
		wake := l.notify.wait()
		l.mu.Unlock()
		<-wake
	}
}

// Close stops listening; blocked Accepts return net.ErrClosed and
// connections not yet accepted are reset. The host may Listen again.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "netsim", Addr: Addr(l.h.addr), Err: net.ErrClosed}
	}
	l.closed = true
	pending := l.queue
	l.queue = nil
	l.notify.broadcast()
	l.mu.Unlock()
	l.h.mu.Lock()
	if l.h.ln == l {
		l.h.ln = nil
	}
	l.h.mu.Unlock()
	for _, c := range pending {
		c.s.fail(ErrReset)
	}
	return nil
}

// Addr returns the host's address.
func (l *listener) Addr() net.Addr { return Addr(l.h.addr) }

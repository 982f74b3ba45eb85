package wan

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// TCPProxy accepts connections on Listen and forwards them to Backend,
// delaying each direction by Delay between the sender's region (Source) and
// Region, the region of the node behind the proxy.
type TCPProxy struct {
	Listen  string     // proxy address, host:port (port 0 picks one)
	Backend string     // real address of the node
	Region  string     // the node's region
	Source  SourceFunc // the sender's region; unknown senders count as Region
	Delay   DelayFunc
	Stats   *Stats // optional

	// NoHandshake skips the emulated three-way handshake (client data
	// held one RTT after accept, backend dialled at 1.5 RTT).
	NoHandshake bool

	ln    net.Listener
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// tcpQueueChunks bounds the chunks in flight per direction (each at most
// tcpReadSize): a full queue stops reading, so TCP flow control pushes back.
const (
	tcpQueueChunks = 1024
	tcpReadSize    = 32 << 10
)

// Open starts listening and serving.
func (p *TCPProxy) Open() error {
	if p.Stats == nil {
		p.Stats = new(Stats)
	}
	ln, err := net.Listen("tcp", p.Listen)
	if err != nil {
		return err
	}
	p.ln, p.done, p.conns = ln, make(chan struct{}), map[net.Conn]struct{}{}
	p.wg.Add(1)
	go p.accept()
	return nil
}

// Addr is the bound proxy address.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Close stops the listener and every connection.
func (p *TCPProxy) Close() error {
	close(p.done)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *TCPProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		select {
		case <-p.done:
			return false
		default:
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.Stats.TCPConns.Add(1)
		p.wg.Add(1)
		go p.serve(c, time.Now())
	}
}

// pconn is one proxied connection.
type pconn struct {
	p       *TCPProxy
	client  net.Conn
	done    chan struct{} // closed by abort
	once    sync.Once
	mu      sync.Mutex
	backend net.Conn
	halves  int // directions that ended with a clean EOF
}

// abort tears the connection down: both sockets close, every goroutine ends.
func (c *pconn) abort() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.mu.Lock()
		if c.backend != nil {
			c.backend.Close()
		}
		c.mu.Unlock()
	})
}

// setBackend records the dialled backend; false if already aborted.
func (c *pconn) setBackend(b net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return false
	default:
	}
	c.backend = b
	return true
}

// serve runs one connection: a reader and a timed writer per direction.
func (p *TCPProxy) serve(client net.Conn, accepted time.Time) {
	defer p.wg.Done()
	defer p.track(client, false)
	c := &pconn{p: p, client: client, done: make(chan struct{})}
	var wg sync.WaitGroup
	defer func() { c.abort(); wg.Wait() }()

	up := newTimedQueue(tcpQueueChunks, p.Stats)   // client → backend
	down := newTimedQueue(tcpQueueChunks, p.Stats) // backend → client
	wg.Add(1)
	go func() { defer wg.Done(); c.pump(client, up) }()

	// The sender's region, then the delays and the handshake schedule.
	src, ok := p.Source("tcp", client.RemoteAddr(), client.LocalAddr())
	if !ok {
		p.Stats.Unresolved.Add(1)
		src = p.Region
	}
	fwd, back := p.Delay(src, p.Region), p.Delay(p.Region, src)
	var dialAt, sendFrom time.Time
	if !p.NoHandshake {
		sendFrom = accepted.Add(fwd + back) // the client can send once the SYN-ACK is back
		dialAt = sendFrom.Add(fwd)          // its ACK reaches the server half a trip later
	}
	up.setDelay(fwd, sendFrom)
	down.setDelay(back, time.Time{})

	// Dial the backend when the emulated handshake reaches it.
	if d := time.Until(dialAt); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return
		}
	}
	backend, err := net.DialTimeout("tcp", p.Backend, 5*time.Second)
	if err != nil {
		return
	}
	if !c.setBackend(backend) {
		backend.Close()
		return
	}
	wg.Add(2)
	go func() { defer wg.Done(); c.pump(backend, down) }()
	go func() { defer wg.Done(); c.drain(down, client) }()
	c.drain(up, backend)
	wg.Wait() // until both directions end (or one fails)
}

// pump reads from r into q until EOF or error; EOF is queued so the other
// side sees the half-close at the right time, an error aborts.
func (c *pconn) pump(r net.Conn, q *timedQueue) {
	buf := make([]byte, tcpReadSize)
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			select {
			case q.ch <- chunk{b: append([]byte(nil), buf[:n]...), at: now}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.abort()
				return
			}
			select {
			case q.ch <- chunk{at: now, eof: true}:
			case <-c.done:
			}
			return
		}
	}
}

// drain writes q's chunks to w at their due times; an EOF chunk half-closes
// w. When both directions have ended cleanly, or on any error, the
// connection is torn down.
func (c *pconn) drain(q *timedQueue, w net.Conn) {
	clean := false
	q.run(c.done, func(ch chunk) error {
		if ch.eof {
			clean = true
			if cw, ok := w.(interface{ CloseWrite() error }); ok {
				return cw.CloseWrite()
			}
			return nil
		}
		if _, err := w.Write(ch.b); err != nil {
			return err
		}
		c.p.Stats.Chunks.Add(1)
		c.p.Stats.Bytes.Add(int64(len(ch.b)))
		return nil
	})
	if !clean {
		c.abort()
		return
	}
	c.mu.Lock()
	c.halves++
	both := c.halves == 2
	c.mu.Unlock()
	if both {
		c.abort()
	}
}

package gossip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/patinadb/patina/wire"
)

// transport runs memberlist over a Network and multiplexes patina's data
// plane on the same address (as Corrosion does with one QUIC port): a stream
// whose first byte is wire.Magic is patina's; anything else is memberlist's.
type transport struct {
	net      Network
	pc       net.PacketConn
	ln       net.Listener
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	data     func(net.Conn) // handles patina data-plane streams
	log      *slog.Logger

	wg       sync.WaitGroup // readPackets, accept and every route
	shutdown chan struct{}
	once     sync.Once

	// conns are the accepted streams not yet handed to memberlist: being
	// routed or served by the data plane. Shutdown closes them, so a peer
	// that keeps a broadcast stream open cannot keep a handler (and a
	// closed node's ChangesetHandler) running.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

func newTransport(n Network, data func(net.Conn), log *slog.Logger) (*transport, error) {
	ln, err := n.Listen()
	if err != nil {
		return nil, err
	}
	pc, err := n.ListenPacket()
	if err != nil {
		ln.Close()
		return nil, err
	}
	t := &transport{net: n, pc: pc, ln: ln, data: data, log: log, conns: map[net.Conn]struct{}{},
		packetCh: make(chan *memberlist.Packet, 1024), streamCh: make(chan net.Conn, 64), shutdown: make(chan struct{})}
	t.wg.Add(2)
	go t.readPackets()
	go t.accept()
	return t, nil
}

func (t *transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, 65536) // the largest datagram; reused
	for {
		n, from, err := t.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-t.shutdown:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		// Copy out: a packet waits in packetCh and memberlist's queues, and
		// must not pin a 64 KiB buffer (gossip packets are ~1.4 KB).
		pkt := &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: strAddr(from.String()), Timestamp: time.Now()}
		select {
		case t.packetCh <- pkt:
		case <-t.shutdown:
			return
		}
	}
}

func (t *transport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.shutdown:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !t.track(c) {
			c.Close()
			return
		}
		t.wg.Add(1)
		go t.route(c)
	}
}

// track records an accepted conn; false once shutting down.
func (t *transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// route peeks at the first byte to tell patina's streams from memberlist's.
func (t *transport) route(c net.Conn) {
	defer t.wg.Done()
	handed := false
	defer func() {
		if !handed {
			c.Close()
		}
		t.untrack(c)
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	if first[0] == wire.Magic {
		t.data(pc)
		return
	}
	handed = true // memberlist owns it now, or it is closed below
	select {
	case t.streamCh <- pc:
	case <-t.shutdown:
		c.Close()
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	host, p, err := net.SplitHostPort(t.net.Addr())
	if err != nil {
		return nil, 0, fmt.Errorf("gossip address %q: %w", t.net.Addr(), err)
	}
	addr := net.ParseIP(host)
	if addr == nil {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return nil, 0, fmt.Errorf("gossip address %q: host is not an IP and does not resolve", t.net.Addr())
		}
		addr = ips[0]
	}
	if addr.IsUnspecified() {
		return nil, 0, fmt.Errorf("gossip address %q: bind to a specific IP (peers must be able to reach the advertised address)", t.net.Addr())
	}
	port, err = strconv.Atoi(p)
	return addr, port, err
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	_, err := t.pc.WriteTo(b, strAddr(addr))
	return time.Now(), err
}

func (t *transport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, addr.Addr)
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.net.Dial(ctx, addr)
}

func (t *transport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(addr.Addr, timeout)
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

func (t *transport) Shutdown() error {
	t.once.Do(func() {
		close(t.shutdown)
		t.ln.Close()
		t.pc.Close()
		t.mu.Lock()
		t.closed = true
		for c := range t.conns {
			c.Close()
		}
		t.mu.Unlock()
	})
	t.wg.Wait()
	return nil
}

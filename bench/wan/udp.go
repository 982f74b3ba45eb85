package wan

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UDPProxy forwards datagrams arriving on Listen to Backend, delayed by
// Delay from the sender's region (Source) to Region. Each source address
// gets a session: a socket connected to Backend whose replies go back to the
// source from Listen, delayed the other way.
type UDPProxy struct {
	Listen  string // proxy address, host:port
	Backend string // real address of the node
	Region  string
	Source  SourceFunc
	Delay   DelayFunc
	Stats   *Stats
	// IdleTimeout closes a session with no traffic for this long; 0 is 2 minutes.
	IdleTimeout time.Duration

	pc      *net.UDPConn
	backend *net.UDPAddr
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	sess    map[string]*udpSession
}

// udpQueueLen bounds the datagrams in flight per session and direction;
// beyond it they are dropped, as a full router queue would.
const udpQueueLen = 4096

type udpSession struct {
	src        *net.UDPAddr
	conn       *net.UDPConn // connected to the backend
	fwd, back  *timedQueue
	lastActive atomic.Int64 // unix nanos
	done       chan struct{}
	once       sync.Once
}

func (s *udpSession) close() {
	s.once.Do(func() { close(s.done); s.conn.Close() })
}

// Open binds the proxy socket and starts serving.
func (p *UDPProxy) Open() error {
	if p.Stats == nil {
		p.Stats = new(Stats)
	}
	if p.IdleTimeout == 0 {
		p.IdleTimeout = 2 * time.Minute
	}
	la, err := net.ResolveUDPAddr("udp", p.Listen)
	if err != nil {
		return err
	}
	if p.backend, err = net.ResolveUDPAddr("udp", p.Backend); err != nil {
		return err
	}
	if p.pc, err = net.ListenUDP("udp", la); err != nil {
		return err
	}
	p.done, p.sess = make(chan struct{}), map[string]*udpSession{}
	p.wg.Add(2)
	go p.read()
	go p.reap()
	return nil
}

// Addr is the bound proxy address.
func (p *UDPProxy) Addr() string { return p.pc.LocalAddr().String() }

// Close stops the proxy and all sessions.
func (p *UDPProxy) Close() error {
	close(p.done)
	err := p.pc.Close()
	p.mu.Lock()
	for _, s := range p.sess {
		s.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *UDPProxy) read() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := p.pc.ReadFromUDP(buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
				continue // e.g. ICMP port unreachable from an earlier send
			}
		}
		now := time.Now()
		s := p.session(src)
		if s == nil {
			continue
		}
		s.lastActive.Store(now.UnixNano())
		select {
		case s.fwd.ch <- chunk{b: append([]byte(nil), buf[:n]...), at: now}:
		default:
			p.Stats.Dropped.Add(1)
		}
	}
}

// session returns src's session, opening it (and resolving the sender's
// region in the background, so a slow lookup stalls only this source).
func (p *UDPProxy) session(src *net.UDPAddr) *udpSession {
	key := src.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.sess[key]; s != nil {
		return s
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, p.backend)
	if err != nil {
		return nil
	}
	s := &udpSession{src: src, conn: conn, done: make(chan struct{}),
		fwd: newTimedQueue(udpQueueLen, p.Stats), back: newTimedQueue(udpQueueLen, p.Stats)}
	s.lastActive.Store(time.Now().UnixNano())
	p.sess[key] = s
	p.Stats.UDPSessions.Add(1)
	p.wg.Add(4)
	go func() {
		defer p.wg.Done()
		region, ok := p.Source("udp", src, p.pc.LocalAddr())
		if !ok {
			p.Stats.Unresolved.Add(1)
			region = p.Region
		}
		s.fwd.setDelay(p.Delay(region, p.Region), time.Time{})
		s.back.setDelay(p.Delay(p.Region, region), time.Time{})
	}()
	go func() {
		defer p.wg.Done()
		s.fwd.run(s.done, func(c chunk) error {
			if _, err := s.conn.Write(c.b); err == nil {
				p.Stats.Datagrams.Add(1)
				p.Stats.Bytes.Add(int64(len(c.b)))
			}
			return nil // a refused datagram is lost, not fatal
		})
	}()
	go func() {
		defer p.wg.Done()
		s.back.run(s.done, func(c chunk) error {
			if _, err := p.pc.WriteToUDP(c.b, s.src); err == nil {
				p.Stats.Datagrams.Add(1)
				p.Stats.Bytes.Add(int64(len(c.b)))
			}
			return nil
		})
	}()
	go func() { // replies from the backend to this session
		defer p.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				select {
				case <-s.done:
					return
				default:
					continue
				}
			}
			now := time.Now()
			s.lastActive.Store(now.UnixNano())
			select {
			case s.back.ch <- chunk{b: append([]byte(nil), buf[:n]...), at: now}:
			default:
				p.Stats.Dropped.Add(1)
			}
		}
	}()
	return s
}

// reap closes sessions idle for IdleTimeout.
func (p *UDPProxy) reap() {
	defer p.wg.Done()
	t := time.NewTicker(p.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			p.mu.Lock()
			for k, s := range p.sess {
				if now.Sub(time.Unix(0, s.lastActive.Load())) > p.IdleTimeout {
					s.close()
					delete(p.sess, k)
				}
			}
			p.mu.Unlock()
		}
	}
}

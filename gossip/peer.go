package gossip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/wire"
)

// peerConn is the outbound broadcast stream to one peer: a bounded queue of
// encoded frames and a writer goroutine that dials on demand.
type peerConn struct {
	n      *Node
	addr   string
	q      chan []byte
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conn   net.Conn
	failed time.Time
}

func (n *Node) peer(addr string) *peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[addr]
	if p == nil {
		p = &peerConn{n: n, addr: addr, q: make(chan []byte, n.PeerQueueLen), done: make(chan struct{})}
		n.peers[addr] = p
		n.wg.Add(1)
		go p.run()
	}
	return p
}

// warm asks the writer to connect now, before the first frame.
func (p *peerConn) warm() { p.send(nil) }

// send queues a frame; a full queue drops it (sync repairs).
func (p *peerConn) send(frame []byte) bool {
	select {
	case p.q <- frame:
		return true
	default:
		p.n.stats.add(func(s *Stats) { s.PeerDropped++ })
		return false
	}
}

func (p *peerConn) close() {
	p.once.Do(func() { close(p.done) })
}

func (p *peerConn) run() {
	defer p.n.wg.Done()
	defer func() {
		p.mu.Lock()
		if p.conn != nil {
			p.conn.Close()
		}
		p.mu.Unlock()
	}()
	var bw *bufio.Writer
	for {
		var frame []byte
		select {
		case <-p.done:
			return
		case <-p.n.ctx.Done():
			return
		case frame = <-p.q:
		}
		if p.conn == nil {
			if time.Since(p.failed) < 500*time.Millisecond && frame != nil {
				continue // recently unreachable: drop, sync repairs
			}
			c, err := p.n.dialData(p.n.ctx, p.addr, wire.PurposeBroadcast)
			if err != nil {
				p.failed = time.Now()
				p.n.Logger.Debug("broadcast dial failed", "peer", p.addr, "err", err)
				continue
			}
			p.mu.Lock()
			p.conn = c
			p.mu.Unlock()
			bw = bufio.NewWriterSize(c, 64<<10)
		}
		if frame == nil { // warm-up only
			continue
		}
		p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		err := wire.WriteFrame(bw, frame)
		// Write whatever else is queued before flushing.
		for err == nil && len(p.q) > 0 {
			if f := <-p.q; f != nil {
				err = wire.WriteFrame(bw, f)
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			p.n.Logger.Debug("broadcast write failed", "peer", p.addr, "err", err)
			p.mu.Lock()
			p.conn.Close()
			p.conn = nil
			p.mu.Unlock()
			p.failed = time.Now()
		}
	}
}

// dialData opens a data-plane stream and performs the hello handshake.
func (n *Node) dialData(ctx context.Context, addr string, purpose uint8) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := n.Network.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	hello := wire.Marshal(nil, &wire.Hello{Protocol: wire.ProtocolVersion, ClusterID: n.ClusterID, Actor: n.Actor, Region: n.Region, Purpose: purpose})
	if err := wire.WriteFrame(c, hello); err != nil {
		c.Close()
		return nil, fmt.Errorf("hello to peer %s: %w", addr, err)
	}
	msg, err := readMsg(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("hello from peer %s: %w", addr, err)
	}
	ack, ok := msg.(*wire.HelloAck)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("hello from peer %s: got %T, want HelloAck", addr, msg)
	}
	if !ack.Accepted {
		c.Close()
		return nil, patina.Errorf(patina.EUNAVAILABLE, "peer %s refused the connection: %s", addr, ack.Reason)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func readMsg(r io.Reader) (wire.Message, error) {
	b, err := wire.ReadFrame(r, wire.MaxFrameSize)
	if err != nil {
		return nil, err
	}
	return wire.Unmarshal(b)
}

func writeMsg(w io.Writer, m wire.Message) error {
	return wire.WriteFrame(w, wire.Marshal(nil, m))
}

// serveData handles an inbound data-plane stream.
func (n *Node) serveData(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := readMsg(c)
	if err != nil {
		var ve *wire.VersionError
		if errors.As(err, &ve) {
			writeMsg(c, &wire.HelloAck{Protocol: wire.ProtocolVersion, Reason: ve.Error()})
		}
		n.Logger.Warn("refused data stream", "remote", c.RemoteAddr(), "err", err)
		return
	}
	hello, ok := msg.(*wire.Hello)
	if !ok {
		n.Logger.Warn("refused data stream: first frame is not a hello", "remote", c.RemoteAddr(), "type", fmt.Sprintf("%T", msg))
		return
	}
	refuse := func(reason string) {
		writeMsg(c, &wire.HelloAck{Protocol: wire.ProtocolVersion, Reason: reason})
	}
	switch {
	case hello.ClusterID != n.ClusterID:
		n.stats.add(func(s *Stats) { s.ClusterRefused++ })
		refuse(fmt.Sprintf("this node is in cluster %d, you are in cluster %d; nodes of different clusters never exchange data", n.ClusterID, hello.ClusterID))
		return
	case hello.Protocol < wire.ProtocolVersion:
		refuse(fmt.Sprintf("you speak wire protocol v%d, this node needs v%d; upgrade the older node", hello.Protocol, wire.ProtocolVersion))
		return
	}
	c.SetReadDeadline(time.Time{})
	switch hello.Purpose {
	case wire.PurposeBroadcast:
		if writeMsg(c, &wire.HelloAck{Protocol: wire.ProtocolVersion, Accepted: true}) != nil {
			return
		}
		n.serveBroadcast(c, hello)
	case wire.PurposeSync:
		select {
		case n.syncSem <- struct{}{}:
			defer func() { <-n.syncSem }()
		default:
			n.stats.add(func(s *Stats) { s.SyncsRefused++ })
			refuse(fmt.Sprintf("already serving %d sync sessions (the limit); try another peer or later", n.MaxSyncSessions))
			return
		}
		if writeMsg(c, &wire.HelloAck{Protocol: wire.ProtocolVersion, Accepted: true}) != nil {
			return
		}
		n.serveSync(c, hello)
	default:
		refuse(fmt.Sprintf("unknown stream purpose %d", hello.Purpose))
	}
}

func (n *Node) serveBroadcast(c net.Conn, hello *wire.Hello) {
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		msg, err := readMsg(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && n.ctx.Err() == nil {
				n.Logger.Debug("broadcast stream ended", "peer", hello.Actor, "err", err)
			}
			return
		}
		cs, ok := msg.(*wire.Changesets)
		if !ok {
			n.Logger.Warn("unexpected frame on broadcast stream", "peer", hello.Actor, "type", fmt.Sprintf("%T", msg))
			return
		}
		n.Handler.HandleChangesets(cs.From, cs.Sets, int(cs.TTL))
	}
}

func (n *Node) serveSync(c net.Conn, hello *wire.Hello) {
	n.stats.add(func(s *Stats) { s.SyncsServed++ })
	br := bufio.NewReader(c)
	bw := bufio.NewWriterSize(c, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		msg, err := readMsg(br)
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Time{})
		switch m := msg.(type) {
		case *wire.SyncStateRequest:
			err = writeMsg(bw, &wire.SyncState{State: n.SyncServer.SyncState()})
		case *wire.SyncNeeds:
			err = n.answerNeeds(bw, m.Needs)
		default:
			err = fmt.Errorf("unexpected %T on sync stream", msg)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			n.Logger.Debug("sync session ended", "peer", hello.Actor, "err", err)
			return
		}
	}
}

func (n *Node) answerNeeds(w io.Writer, needs []patina.Need) error {
	ctx, cancel := context.WithTimeout(n.ctx, 60*time.Second)
	defer cancel()
	send := func(cs patina.Changeset) error { return writeMsg(w, &wire.SyncChangeset{Set: cs}) }
	for _, need := range needs {
		var err error
		if need.IsPartial() {
			err = n.SyncServer.PartialChangesFor(ctx, need.Actor, need.Versions.Start, need.Seqs, DefaultChunkBytes, send)
		} else {
			err = n.SyncServer.ChangesFor(ctx, need.Actor, need.Versions, DefaultChunkBytes, send)
		}
		if err != nil {
			writeMsg(w, &wire.Error{Code: patina.ErrorCode(err), Message: patina.ErrorMessage(err)})
			return err
		}
	}
	return writeMsg(w, &wire.SyncDone{})
}

// SyncState asks peer for its state summary.
func (n *Node) SyncState(ctx context.Context, peer patina.Member) (patina.SyncState, error) {
	c, err := n.dialData(ctx, peer.Addr, wire.PurposeSync)
	if err != nil {
		return patina.SyncState{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := writeMsg(c, &wire.SyncStateRequest{}); err != nil {
		return patina.SyncState{}, fmt.Errorf("sync with %s: %w", peer.Addr, err)
	}
	msg, err := readMsg(c)
	if err != nil {
		return patina.SyncState{}, fmt.Errorf("sync with %s: read state: %w", peer.Addr, err)
	}
	st, ok := msg.(*wire.SyncState)
	if !ok {
		return patina.SyncState{}, fmt.Errorf("sync with %s: got %T, want SyncState", peer.Addr, msg)
	}
	return st.State, nil
}

// Pull asks peer for needs and calls fn with every changeset it streams.
func (n *Node) Pull(ctx context.Context, peer patina.Member, needs []patina.Need, fn func(patina.Changeset) error) error {
	c, err := n.dialData(ctx, peer.Addr, wire.PurposeSync)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := writeMsg(c, &wire.SyncNeeds{Needs: needs}); err != nil {
		return fmt.Errorf("sync with %s: send needs: %w", peer.Addr, err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		msg, err := readMsg(br)
		if err != nil {
			if ctx.Err() != nil {
				return patina.Errorf(patina.ETIMEOUT, "sync with %s timed out while receiving changes (%v)", peer.Addr, context.Cause(ctx))
			}
			return fmt.Errorf("sync with %s: read: %w", peer.Addr, err)
		}
		switch m := msg.(type) {
		case *wire.SyncChangeset:
			if err := fn(m.Set); err != nil {
				return err
			}
		case *wire.SyncDone:
			return nil
		case *wire.Error:
			return fmt.Errorf("sync with %s: peer failed: %s", peer.Addr, m.Message)
		default:
			return fmt.Errorf("sync with %s: unexpected %T", peer.Addr, msg)
		}
	}
}

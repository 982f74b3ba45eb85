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
//
// A peer that restarts (or whose stream a middlebox drops) leaves the old
// stream dead. A watcher goroutine reads the stream (the peer never writes
// on it after its HelloAck), so the writer learns of the end when it
// happens and dials afresh for the next frame; and a write that fails on a
// stream that had worked is retried once on a fresh one, so the first
// broadcast after a peer restarts is not lost.
type peerConn struct {
	n    *Node
	addr string
	q    chan []byte
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	conn net.Conn // nil while not connected

	// Used by the writer goroutine only.
	bw     *bufio.Writer
	broken chan struct{} // closed by the watcher when conn ends
	failed time.Time     // last failed dial or write
}

// redialBackoff is how long after a failed dial or write frames to the
// peer are dropped without dialing (sync repairs them).
const redialBackoff = 500 * time.Millisecond

// peer returns the broadcast stream to addr, starting its writer; nil once
// the node is closing.
func (n *Node) peer(addr string) *peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
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

// send queues a frame; a full queue drops it (sync repairs). A nil
// peerConn (the node is closing) drops everything.
func (p *peerConn) send(frame []byte) bool {
	if p == nil {
		return false
	}
	select {
	case p.q <- frame:
		return true
	default:
		if frame != nil {
			p.n.stats.add(func(s *Stats) { s.PeerDropped++ })
		}
		return false
	}
}

func (p *peerConn) close() {
	p.once.Do(func() { close(p.done) })
}

// idle reports whether the writer holds no stream.
func (p *peerConn) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn == nil
}

func (p *peerConn) run() {
	defer p.n.wg.Done()
	defer p.disconnect()
	var pending [][]byte
	for {
		select {
		case <-p.done:
			return
		case <-p.n.ctx.Done():
			return
		case <-p.broken: // nil, and never ready, while not connected
			p.n.Logger.Debug("broadcast stream ended by the peer; will redial", "peer", p.addr)
			p.disconnect()
			continue
		case f := <-p.q:
			if f != nil {
				pending = append(pending, f)
			}
		}
		// Write whatever else is queued before flushing.
		for len(p.q) > 0 {
			if f := <-p.q; f != nil {
				pending = append(pending, f)
			}
		}
		p.deliver(pending)
		clear(pending)
		pending = pending[:0]
	}
}

// deliver writes frames (none: just connect), dialing when needed and
// retrying once on a fresh stream when a stream that had worked fails.
func (p *peerConn) deliver(frames [][]byte) {
	for attempt := 0; ; attempt++ {
		fresh := false
		if p.bw == nil {
			if len(frames) > 0 && time.Since(p.failed) < redialBackoff {
				p.drop(len(frames)) // recently unreachable: sync repairs
				return
			}
			if err := p.connect(); err != nil {
				p.failed = time.Now()
				p.n.Logger.Debug("broadcast dial failed", "peer", p.addr, "err", err)
				p.drop(len(frames))
				return
			}
			fresh = true
		}
		if len(frames) == 0 {
			return
		}
		err := p.write(frames)
		if err == nil {
			return
		}
		p.n.Logger.Debug("broadcast write failed", "peer", p.addr, "err", err, "fresh_stream", fresh)
		p.disconnect()
		if fresh || attempt > 0 {
			p.failed = time.Now()
			p.drop(len(frames))
			return
		}
		// The stream was stale (the peer restarted): redial and resend.
		// A frame the peer got whole before the break arrives twice, which
		// the receiver's duplicate check absorbs.
	}
}

func (p *peerConn) write(frames [][]byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for _, f := range frames {
		if err := wire.WriteFrame(p.bw, f); err != nil {
			return err
		}
	}
	return p.bw.Flush()
}

func (p *peerConn) connect() error {
	c, err := p.n.dialData(p.n.ctx, p.addr, wire.PurposeBroadcast)
	if err != nil {
		return err
	}
	broken := make(chan struct{})
	p.n.wg.Add(1) // run holds the count above zero: no race with Wait
	go func() {
		defer p.n.wg.Done()
		defer close(broken)
		io.Copy(io.Discard, c) // returns when the stream ends
	}()
	p.mu.Lock()
	p.conn = c
	p.mu.Unlock()
	p.bw, p.broken = bufio.NewWriterSize(c, 64<<10), broken
	return nil
}

func (p *peerConn) disconnect() {
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close() // ends the watcher
		p.conn = nil
	}
	p.mu.Unlock()
	p.bw, p.broken = nil, nil
}

func (p *peerConn) drop(frames int) {
	if frames > 0 {
		p.n.stats.add(func(s *Stats) { s.PeerDropped += uint64(frames) })
	}
}

// Frame limits by purpose. A peer is untrusted until its hello is accepted,
// so a hello (and a hello answer) is read with a limit that fits any real
// one; the requests of a sync session are small; changesets travel in
// frames the senders keep near DefaultChunkBytes, though a single large
// change can make one bigger, up to wire.MaxFrameSize.
const (
	maxHelloFrame       = 4 << 10
	maxSyncRequestFrame = 1 << 20
	maxChangesetFrame   = wire.MaxFrameSize
)

// helloTimeout bounds dialing a peer and its answer to the hello.
const helloTimeout = 5 * time.Second

// dialData opens a data-plane stream and performs the hello handshake.
func (n *Node) dialData(ctx context.Context, addr string, purpose uint8) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	c, err := n.Network.Dial(ctx, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, patina.Errorf(patina.ETIMEOUT, "dial peer %s: no connection within %v (%v); is it up, and is its gossip address reachable from here?", addr, helloTimeout, err)
		}
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
	msg, err := readMsg(c, maxHelloFrame)
	if err != nil {
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, patina.Errorf(patina.ETIMEOUT, "peer %s did not answer the hello within %v; is it overloaded, or not a patina node?", addr, helloTimeout)
		}
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

// readMsg reads one frame of at most max bytes and decodes it.
func readMsg(r io.Reader, max int) (wire.Message, error) {
	b, err := wire.ReadFrame(r, max)
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
	select {
	case <-n.ready: // Open has set up what serving uses
	case <-n.ctx.Done():
		return
	}
	refuse := func(reason string) {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeMsg(c, &wire.HelloAck{Protocol: wire.ProtocolVersion, Reason: reason})
	}
	self := n.Network.Addr()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := readMsg(c, maxHelloFrame)
	if err != nil {
		var ve *wire.VersionError
		if errors.As(err, &ve) {
			refuse(fmt.Sprintf("wire protocol mismatch: the connecting node sent a v%d frame and this node (%s) speaks v%d; upgrade the node running the older patina",
				ve.Got, self, ve.Want))
		} else if !errors.Is(err, io.EOF) {
			refuse(fmt.Sprintf("this node (%s) could not read a hello (%v); is the connecting node a patina node of a compatible version?", self, err))
		}
		n.Logger.Warn("refused data stream", "remote", c.RemoteAddr(), "err", err)
		return
	}
	hello, ok := msg.(*wire.Hello)
	if !ok {
		n.Logger.Warn("refused data stream: first frame is not a hello", "remote", c.RemoteAddr(), "type", fmt.Sprintf("%T", msg))
		return
	}
	switch {
	case hello.ClusterID != n.ClusterID:
		n.stats.add(func(s *Stats) { s.ClusterRefused++ })
		refuse(fmt.Sprintf("cluster id mismatch: this node (%s) is in cluster %d and the connecting node (actor %s) is in cluster %d; "+
			"nodes of different clusters never exchange data: set the same cluster_id on both, or take the node out of the other cluster's bootstrap list",
			self, n.ClusterID, hello.Actor, hello.ClusterID))
		return
	case hello.Protocol < wire.ProtocolVersion:
		refuse(fmt.Sprintf("wire protocol mismatch: the connecting node (actor %s) speaks v%d and this node (%s) needs v%d; upgrade patina on the connecting node",
			hello.Actor, hello.Protocol, self, wire.ProtocolVersion))
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
			refuse(fmt.Sprintf("this node (%s) is already serving %d sync sessions (its MaxSyncSessions limit); try another peer, or this one later", self, n.MaxSyncSessions))
			return
		}
		if writeMsg(c, &wire.HelloAck{Protocol: wire.ProtocolVersion, Accepted: true}) != nil {
			return
		}
		n.serveSync(c, hello)
	default:
		refuse(fmt.Sprintf("unknown stream purpose %d (this node knows %d for broadcast and %d for sync); is the connecting node running a newer patina?",
			hello.Purpose, wire.PurposeBroadcast, wire.PurposeSync))
	}
}

func (n *Node) serveBroadcast(c net.Conn, hello *wire.Hello) {
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		msg, err := readMsg(br, maxChangesetFrame)
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
		msg, err := readMsg(br, maxSyncRequestFrame)
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Time{})
		switch m := msg.(type) {
		case *wire.SyncStateRequest:
			err = writeMsg(bw, &wire.SyncState{State: n.servedState()})
		case *wire.SyncNeeds:
			err = n.answerNeeds(bw, m.Needs)
		default:
			err = fmt.Errorf("unexpected %T on sync stream", msg)
		}
		// Flush even after an error: the peer must get the Error frame
		// answerNeeds wrote, not a bare end of stream.
		if ferr := bw.Flush(); err == nil {
			err = ferr
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
	msg, err := readMsg(bufio.NewReaderSize(c, 64<<10), maxChangesetFrame)
	if err != nil {
		if ctx.Err() != nil {
			return patina.SyncState{}, patina.Errorf(patina.ETIMEOUT, "sync with %s timed out waiting for its state summary (%v)", peer.Addr, context.Cause(ctx))
		}
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
		msg, err := readMsg(br, maxChangesetFrame)
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
			code := m.Code
			if code == "" {
				code = patina.EINTERNAL
			}
			return patina.Errorf(code, "sync with %s: the peer failed to answer: %s", peer.Addr, m.Message)
		default:
			return fmt.Errorf("sync with %s: unexpected %T", peer.Addr, msg)
		}
	}
}

// servedState is the store's sync state with this node's head lowered below
// its oldest commit still held in the broadcast queue (see sendLoop).
func (n *Node) servedState() patina.SyncState {
	st := n.SyncServer.SyncState()
	if v, held := n.bq.oldestVersion(n.Actor); held && st.Heads[n.Actor] >= v {
		if v <= 1 {
			delete(st.Heads, n.Actor)
		} else {
			st.Heads[n.Actor] = v - 1
		}
	}
	return st
}

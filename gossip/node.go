// Package gossip is patina's network adapter: hashicorp/memberlist (SWIM +
// Lifeguard) for membership and failure detection, and patina's own data
// plane multiplexed on the same address: region-aware immediate broadcast
// and anti-entropy sync streams speaking package wire.
package gossip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/wire"
)

// Defaults for Node's exported fields.
const (
	DefaultSameRegionFanout = 3
	DefaultRelaysPerRegion  = 2
	DefaultMaxTTL           = 4
	DefaultQueueLen         = 20000
	DefaultRateBytesPerSec  = 10 << 20
	DefaultCoalesceWindow   = 2 * time.Millisecond
	DefaultMaxSyncSessions  = 8
	DefaultPeerQueueLen     = 1024
	DefaultChunkBytes       = 64 << 10
)

var (
	_ patina.Membership  = (*Node)(nil)
	_ patina.Broadcaster = (*Node)(nil)
	_ patina.PeerClient  = (*Node)(nil)
)

// Node is one member of the cluster.
type Node struct {
	Actor     patina.ActorID
	Region    string
	ClusterID uint16
	APIAddr   string
	// Network carries gossip and data plane. Required.
	Network Network
	// Bootstrap lists gossip addresses to join.
	Bootstrap []string
	// Handler receives changesets from peers (must not block). Required.
	Handler patina.ChangesetHandler
	// SyncServer answers peers' sync requests. Required.
	SyncServer patina.SyncServer
	Logger     *slog.Logger

	// SameRegionFanout is how many same-region peers a local commit goes
	// to, and how many a relay forwards to inside its region. Default 3.
	SameRegionFanout int
	// RelaysPerRegion is how many peers of each other region a local commit
	// goes to. Default 2.
	RelaysPerRegion int
	// MaxTTL is the hop budget of a local commit: one hop to the other
	// regions' relays, then an epidemic inside each region. Default 4.
	MaxTTL int
	// QueueLen bounds the broadcast queue (changesets); overflow drops the
	// oldest, which sync repairs. Default 20000.
	QueueLen int
	// PeerQueueLen bounds each peer's outbound frames. Default 1024.
	PeerQueueLen int
	// RateBytesPerSec caps outbound broadcast bytes. Default 10 MiB/s.
	RateBytesPerSec int
	// CoalesceWindow is how long the sender waits for more changesets
	// before sending, so superseded cells collapse. Default 2 ms.
	CoalesceWindow time.Duration
	// MaxSyncSessions bounds concurrent sync sessions served. Default 8.
	MaxSyncSessions int
	// Memberlist, if set, is the base memberlist config (timings); the node
	// sets Name, Transport, delegates and Label on it.
	Memberlist *memberlist.Config

	ml      *memberlist.Memberlist
	tr      *transport
	mu      sync.RWMutex
	members map[string]patina.Member // by memberlist name
	peers   map[string]*peerConn     // outbound broadcast streams by addr
	bq      *broadcastQueue          // this node's commits
	fq      *broadcastQueue          // changesets forwarded for other origins
	wake    chan struct{}
	syncSem chan struct{}
	stats   Stats
	// mlConfig is the memberlist config the node runs with: a copy of
	// Memberlist (or the default) with the node's hooks set.
	mlConfig *memberlist.Config
	// ready is closed once Open has set up everything the data plane and
	// the member events use; data streams accepted earlier wait for it.
	ready chan struct{}
	// warmCh (capacity 1) asks warmLoop to open the streams a broadcast
	// would use; member events signal it instead of starting goroutines.
	warmCh chan struct{}
	// closed (under mu) is set when Close begins: no new peer streams.
	closed    bool
	closeOnce sync.Once
	closeErr  error
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// Stats counts data-plane traffic.
type Stats struct {
	mu             sync.Mutex
	MsgsSent       uint64
	BytesSent      uint64
	CellsSent      uint64 // changes carried by broadcast frames, per target
	Dropped        uint64 // changesets dropped by queue overflow
	PeerDropped    uint64 // frames dropped: a peer's queue was full, or the peer unreachable
	SyncsServed    uint64
	SyncsRefused   uint64
	ClusterRefused uint64
}

// Snapshot returns a copy of the counters.
func (s *Stats) Snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{MsgsSent: s.MsgsSent, BytesSent: s.BytesSent, CellsSent: s.CellsSent, Dropped: s.Dropped,
		PeerDropped: s.PeerDropped, SyncsServed: s.SyncsServed, SyncsRefused: s.SyncsRefused, ClusterRefused: s.ClusterRefused}
}

func (s *Stats) add(f func(*Stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// Stats returns the node's traffic counters.
func (n *Node) Stats() Stats { return n.stats.Snapshot() }

// Open starts memberlist and the data plane and joins Bootstrap (failing
// to join is not fatal: the node keeps trying).
func (n *Node) Open(ctx context.Context) error {
	if n.Network == nil || n.Handler == nil || n.SyncServer == nil {
		return fmt.Errorf("open gossip: Network, Handler and SyncServer are required")
	}
	if n.Logger == nil {
		n.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	setDefault(&n.SameRegionFanout, DefaultSameRegionFanout)
	setDefault(&n.RelaysPerRegion, DefaultRelaysPerRegion)
	setDefault(&n.MaxTTL, DefaultMaxTTL)
	setDefault(&n.QueueLen, DefaultQueueLen)
	setDefault(&n.PeerQueueLen, DefaultPeerQueueLen)
	setDefault(&n.RateBytesPerSec, DefaultRateBytesPerSec)
	setDefault(&n.MaxSyncSessions, DefaultMaxSyncSessions)
	if n.CoalesceWindow <= 0 {
		n.CoalesceWindow = DefaultCoalesceWindow
	}
	n.members = map[string]patina.Member{}
	n.peers = map[string]*peerConn{}
	n.syncSem = make(chan struct{}, n.MaxSyncSessions)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.ready = make(chan struct{})
	n.warmCh = make(chan struct{}, 1)
	tr, err := newTransport(n.Network, n.serveData, n.Logger)
	if err != nil {
		n.cancel()
		return err
	}
	n.tr = tr
	cfg := DefaultMemberlistConfig()
	if n.Memberlist != nil {
		c := *n.Memberlist // a copy: the caller's config may be shared by nodes
		cfg = &c
	}
	if floor := 2 * cfg.ProbeTimeout; cfg.ProbeInterval < floor {
		// memberlist gives up on a probe, direct and indirect, at the end
		// of ProbeInterval: with ProbeTimeout at or above it no indirect
		// probe ever runs, and every peer slower than ProbeInterval to
		// answer (across an ocean) is suspected, and flaps.
		n.Logger.Warn("memberlist ProbeInterval leaves no time for indirect probes; raising it",
			"probe_interval", cfg.ProbeInterval, "probe_timeout", cfg.ProbeTimeout, "new_probe_interval", floor)
		cfg.ProbeInterval = floor
	}
	n.mlConfig = cfg
	cfg.Name = n.Actor.String()
	cfg.Transport = tr
	cfg.Delegate = &delegate{n: n}
	cfg.Events = &events{n: n}
	cfg.Merge = &mergeCheck{n: n}
	cfg.Alive = &aliveCheck{n: n}
	cfg.Label = fmt.Sprintf("patina/%d", n.ClusterID)
	cfg.LogOutput = io.Discard
	cfg.Logger = nil
	ml, err := memberlist.Create(cfg)
	if err != nil {
		n.cancel()
		tr.Shutdown()
		return fmt.Errorf("start memberlist on %s: %w", n.Network.Addr(), err)
	}
	n.ml = ml
	n.wake = make(chan struct{}, 1)
	n.bq = newBroadcastQueue(n.QueueLen, n.wake)
	n.bq.recent = map[cellKey]time.Time{}
	n.fq = newBroadcastQueue(n.QueueLen, n.wake)
	n.wg.Add(1)
	go n.sendLoop()
	if len(n.Bootstrap) > 0 {
		n.wg.Add(1)
		go n.joinLoop()
	}
	n.wg.Add(1)
	go n.warmLoop()
	close(n.ready)
	return nil
}

// DefaultMemberlistConfig is memberlist's LAN profile with a probe timeout
// that tolerates intercontinental round trips and faster gossip. The
// longest round trip between regions is about 280 ms (gru-nrt): a direct
// probe gets ProbeTimeout (over three of them), and an indirect probe
// through a third node (two round trips) the rest of ProbeInterval. Open
// raises ProbeInterval to twice ProbeTimeout when a config leaves less.
func DefaultMemberlistConfig() *memberlist.Config {
	cfg := memberlist.DefaultLANConfig()
	cfg.ProbeTimeout = 1 * time.Second
	cfg.ProbeInterval = 2 * time.Second
	cfg.GossipInterval = 100 * time.Millisecond
	cfg.PushPullInterval = 15 * time.Second
	cfg.TCPTimeout = 5 * time.Second
	return cfg
}

func setDefault(p *int, d int) {
	if *p <= 0 {
		*p = d
	}
}

func (n *Node) joinLoop() {
	defer n.wg.Done()
	backoff := 200 * time.Millisecond
	for {
		var addrs []string
		for _, b := range n.Bootstrap {
			if b != n.Network.Addr() {
				addrs = append(addrs, b)
			}
		}
		if len(addrs) == 0 {
			return
		}
		if _, err := n.ml.Join(addrs); err == nil {
			return
		} else {
			n.Logger.Warn("join cluster failed; retrying", "bootstrap", addrs, "err", err, "retry_in", backoff)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// Close leaves the cluster and stops everything.
func (n *Node) Close() error {
	if n.ml == nil {
		return nil
	}
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.ml.Leave(time.Second)
	n.cancel()
	n.bq.close()
	n.fq.close()
	err := n.ml.Shutdown()
	n.mu.Lock()
	for _, p := range n.peers {
		p.close()
	}
	n.mu.Unlock()
	n.wg.Wait()
	return err
}

// Local returns this node as a member.
func (n *Node) Local() patina.Member {
	return patina.Member{Actor: n.Actor, Name: n.Actor.String(), Addr: n.Network.Addr(), APIAddr: n.APIAddr,
		Region: n.Region, ClusterID: n.ClusterID, Protocol: wire.ProtocolVersion, State: patina.MemberAlive}
}

// Members returns the other members, sorted by region then name.
func (n *Node) Members() []patina.Member {
	n.mu.RLock()
	out := make([]patina.Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	n.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// alive returns live peers of the same cluster.
func (n *Node) alive() []patina.Member {
	var out []patina.Member
	for _, m := range n.Members() {
		if m.State == patina.MemberAlive && m.ClusterID == n.ClusterID {
			out = append(out, m)
		}
	}
	return out
}

type delegate struct{ n *Node }

func (d *delegate) NodeMeta(limit int) []byte {
	return meta{Actor: d.n.Actor.String(), Region: d.n.Region, ClusterID: d.n.ClusterID, Protocol: wire.ProtocolVersion, APIAddr: d.n.APIAddr}.encode()
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// mergeCheck refuses to merge with nodes of another cluster id.
type mergeCheck struct{ n *Node }

func (m *mergeCheck) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := m.n.checkPeer(p); err != nil {
			return err
		}
	}
	return nil
}

type aliveCheck struct{ n *Node }

func (a *aliveCheck) NotifyAlive(p *memberlist.Node) error { return a.n.checkPeer(p) }

func (n *Node) checkPeer(p *memberlist.Node) error {
	if p.Name == n.Actor.String() {
		return nil
	}
	md, _, err := decodeMeta(p.Meta)
	if err != nil {
		return err
	}
	if md.ClusterID != n.ClusterID {
		n.stats.add(func(s *Stats) { s.ClusterRefused++ })
		return fmt.Errorf("node %s at %s is in cluster %d and this node is in cluster %d; refusing it as a member: "+
			"set the same cluster_id on both, or take it out of the other cluster's bootstrap list", p.Name, p.Address(), md.ClusterID, n.ClusterID)
	}
	return nil
}

type events struct{ n *Node }

func (e *events) NotifyJoin(p *memberlist.Node)   { e.n.updateMember(p, patina.MemberAlive) }
func (e *events) NotifyUpdate(p *memberlist.Node) { e.n.updateMember(p, patina.MemberAlive) }
func (e *events) NotifyLeave(p *memberlist.Node) {
	st := patina.MemberDead
	if p.State == memberlist.StateLeft {
		st = patina.MemberLeft
	}
	e.n.updateMember(p, st)
}

func (n *Node) updateMember(p *memberlist.Node, st patina.MemberState) {
	if p.Name == n.Actor.String() {
		return
	}
	md, actor, err := decodeMeta(p.Meta)
	if err != nil {
		n.Logger.Warn("ignoring member with bad metadata", "name", p.Name, "addr", p.Address(), "err", err)
		return
	}
	m := patina.Member{Actor: actor, Name: p.Name, Addr: net.JoinHostPort(p.Addr.String(), fmt.Sprint(p.Port)),
		APIAddr: md.APIAddr, Region: md.Region, ClusterID: md.ClusterID, Protocol: md.Protocol, State: st}
	n.mu.Lock()
	n.members[p.Name] = m
	var stale *peerConn
	if st != patina.MemberAlive {
		stale = n.peers[m.Addr]
		delete(n.peers, m.Addr)
	}
	n.mu.Unlock()
	if stale != nil {
		stale.close()
	}
	if st == patina.MemberAlive {
		select {
		case n.warmCh <- struct{}{}:
		default:
		}
	}
}

// warmLoop opens the broadcast streams a local commit would use whenever
// membership changes, so the first broadcast does not pay for the dial.
// One goroutine, signalled through warmCh: member events come in bursts
// and run under memberlist's lock.
func (n *Node) warmLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.warmCh:
			n.warmTargets()
		}
	}
}

// memberlistConfig returns the config memberlist runs with.
func (n *Node) memberlistConfig() *memberlist.Config { return n.mlConfig }

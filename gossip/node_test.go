package gossip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/patinadb/patina"
)

// nodeOf is n as memberlist describes it to its peers.
func nodeOf(n *Node) *memberlist.Node {
	host, port, _ := net.SplitHostPort(n.Network.Addr())
	p, _ := strconv.Atoi(port)
	return &memberlist.Node{Name: n.Actor.String(), Addr: net.ParseIP(host), Port: uint16(p),
		Meta: (&delegate{n: n}).NodeMeta(512), State: memberlist.StateAlive}
}

// targetsNode is an unopened node in iad with members in three regions:
// actors 0x10.. in iad (6 of them), 0x20.. in fra, 0x30.. in syd.
func targetsNode() (*Node, []patina.Member) { return targetsNodeSized(6) }

// targetsNodeSized is targetsNode with iadPeers peers in iad (actor ids
// {0x10, i}).
func targetsNodeSized(iadPeers int) (*Node, []patina.Member) {
	n := &Node{Actor: patina.ActorID{1}, Region: "iad", SameRegionFanout: 3, RelaysPerRegion: 2, MaxTTL: 2,
		members: map[string]patina.Member{}}
	var peers []patina.Member
	for region, count := range map[string]int{"iad": iadPeers, "fra": 4, "syd": 3} {
		base := map[string]byte{"iad": 0x10, "fra": 0x20, "syd": 0x30}[region]
		for i := range count {
			a := patina.ActorID{base + byte(i)}
			if region == "iad" && i > 0 {
				a = patina.ActorID{base, byte(i)}
			}
			m := patina.Member{Actor: a, Name: a.String(), Addr: fmt.Sprintf("10.0.%d.%d:7946", base, i), Region: region, State: patina.MemberAlive}
			n.members[m.Name] = m
			peers = append(peers, m)
		}
	}
	return n, peers
}

func byRegion(ms []patina.Member) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		out[m.Region]++
	}
	return out
}

func actorsOf(ms []patina.Member) []patina.ActorID {
	var out []patina.ActorID
	for _, m := range ms {
		out = append(out, m.Actor)
	}
	slices.SortFunc(out, func(a, b patina.ActorID) int { return slices.Compare(a[:], b[:]) })
	return out
}

func TestNode_Targets(t *testing.T) {
	n, peers := targetsNode()
	rng := rand.New(rand.NewPCG(1, 2))
	cs := patina.Changeset{Actor: n.Actor, Version: 1}

	t.Run("local commit", func(t *testing.T) {
		got := n.targets(peers, &queued{cs: cs, from: n.Actor, ttl: n.MaxTTL}, rng)
		if r := byRegion(got); r["iad"] != 6 || r["fra"] != 2 || r["syd"] != 2 || len(r) != 3 {
			t.Fatalf("local commit went to %v, want every iad peer (a small region) and 2 relays in each other region", r)
		}
		for range 20 {
			again := n.targets(peers, &queued{cs: cs, from: n.Actor, ttl: n.MaxTTL}, rng)
			if !slices.Equal(actorsOf(again), actorsOf(got)) {
				t.Fatalf("targets changed between calls: %v then %v", actorsOf(got), actorsOf(again))
			}
		}
	})
	t.Run("small regions get every member", func(t *testing.T) {
		got := n.targets(peers[:0:0], &queued{cs: cs, from: n.Actor, ttl: 2}, rng)
		if len(got) != 0 {
			t.Fatalf("no peers, got %v", got)
		}
		one := []patina.Member{n.members[patina.ActorID{0x20}.String()]}
		if got := n.targets(one, &queued{cs: cs, from: n.Actor, ttl: 2}, rng); len(got) != 1 {
			t.Fatalf("one peer, got %v", got)
		}
	})
	origin := patina.ActorID{0x21} // a fra node
	remote := patina.Changeset{Actor: origin, Version: 5}
	t.Run("relay from another region spreads in this region", func(t *testing.T) {
		got := n.targets(peers, &queued{cs: remote, from: origin, ttl: 2}, rng)
		if r := byRegion(got); r["iad"] != 6 || len(r) != 1 {
			t.Fatalf("relay went to %v, want every peer of iad (a small region) only", r)
		}
		if got := n.targets(peers, &queued{cs: remote, from: patina.ActorID{0x10}, ttl: 2}, rng); len(got) != 0 {
			t.Fatalf("in a small region the relay covered everyone, yet a member forwarded to %v", actorsOf(got))
		}
	})
	t.Run("large region spreads as an epidemic", func(t *testing.T) {
		big, bigPeers := targetsNodeSized(DirectRegionMax + 10)
		local := big.targets(bigPeers, &queued{cs: patina.Changeset{Actor: big.Actor, Version: 1}, from: big.Actor, ttl: 4}, rng)
		if r := byRegion(local); r["iad"] != 2*big.SameRegionFanout {
			t.Fatalf("local commit in a large region went to %v iad peers, want %d to seed the epidemic", r["iad"], 2*big.SameRegionFanout)
		}
		sender := patina.ActorID{0x10}
		got := big.targets(bigPeers, &queued{cs: remote, from: sender, ttl: 2}, rng)
		if r := byRegion(got); r["iad"] == 0 || r["iad"] > big.SameRegionFanout || len(r) != 1 {
			t.Fatalf("same-region forward with ttl 2 went to %v, want 1..%d iad peers", r, big.SameRegionFanout)
		}
		if got := big.targets(bigPeers, &queued{cs: remote, from: sender, ttl: 1}, rng); len(got) != 0 {
			t.Fatalf("same-region forward with ttl 1 went to %v, want nowhere", actorsOf(got))
		}
	})
	t.Run("ttl exhausted stops forwarding", func(t *testing.T) {
		for _, from := range []patina.ActorID{origin, {0x10}} {
			for _, ttl := range []int{0, -1} {
				if got := n.targets(peers, &queued{cs: remote, from: from, ttl: ttl}, rng); len(got) != 0 {
					t.Errorf("from %x ttl %d: forwarded to %v, want nowhere", from[0], ttl, actorsOf(got))
				}
			}
		}
	})
	t.Run("never back to the sender or the origin", func(t *testing.T) {
		iadOrigin := patina.ActorID{0x12}
		for seed := range uint64(200) {
			rng := rand.New(rand.NewPCG(seed, 0))
			for _, it := range []*queued{
				{cs: patina.Changeset{Actor: iadOrigin, Version: 1}, from: patina.ActorID{0x13}, ttl: 2},
				{cs: patina.Changeset{Actor: iadOrigin, Version: 1}, from: iadOrigin, ttl: 2},
				{cs: patina.Changeset{Actor: origin, Version: 1}, from: patina.ActorID{0x22}, ttl: 2},
			} {
				for _, m := range n.targets(peers, it, rng) {
					if m.Actor == it.from || m.Actor == it.cs.Actor || m.Actor == n.Actor {
						t.Fatalf("seed %d: %x from %x sent to %x", seed, it.cs.Actor[0], it.from[0], m.Actor[0])
					}
				}
			}
		}
	})
}

func TestDefaultMemberlistConfig_WAN(t *testing.T) {
	cfg := DefaultMemberlistConfig()
	// The longest round trip of the region matrix is about 330 ms; a
	// probe, and an indirect probe through a third region, must fit.
	if cfg.ProbeTimeout < 900*time.Millisecond {
		t.Errorf("ProbeTimeout %v is shorter than three intercontinental round trips", cfg.ProbeTimeout)
	}
	if cfg.ProbeInterval < 2*cfg.ProbeTimeout {
		t.Errorf("ProbeInterval %v leaves no time for indirect probes after ProbeTimeout %v", cfg.ProbeInterval, cfg.ProbeTimeout)
	}
}

func TestNode_OpenFixesProbeTimings(t *testing.T) {
	nw := MustNetwork(t)
	h := MustHost(t, nw, "10.0.0.1:7946", "iad")
	base := DefaultMemberlistConfig()
	base.ProbeTimeout = time.Second
	base.ProbeInterval = 500 * time.Millisecond // memberlist would suspect after 500 ms, with no indirect probe
	name := base.Name
	n := MustOpen(t, testNode(h, 1, 0, func(n *Node) { n.Memberlist = base }))
	if base.Transport != nil || base.Name != name || base.ProbeInterval != 500*time.Millisecond {
		t.Error("Open changed the caller's memberlist config; it must work on a copy")
	}
	cfg := n.memberlistConfig()
	if cfg.ProbeInterval < 2*cfg.ProbeTimeout {
		t.Fatalf("running with ProbeInterval %v and ProbeTimeout %v", cfg.ProbeInterval, cfg.ProbeTimeout)
	}
}

func TestNode_CloseLeavesNoGoroutines(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	a := MustOpen(t, testNode(ha, 1, 0, nil))
	b := testNode(hb, 2, 0, func(n *Node) { n.Bootstrap = []string{ha.Addr()} })
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	RetryUntil(t, 10*time.Second, "membership", func() bool { return sees(a, b.Actor) && sees(b, a.Actor) })
	// a keeps a broadcast stream open to b.
	a.Broadcast(patina.Changeset{Actor: a.Actor, Version: 1, Changes: []patina.Change{{Table: "t", PK: []byte{1}, Column: "c"}}})
	RetryUntil(t, 10*time.Second, "broadcast", func() bool { return b.Handler.(*recorder).has(a.Actor, 1) })
	if goroutines("gossip.(*Node).serveBroadcast") == 0 {
		t.Fatal("want b to serve a broadcast stream")
	}
	b.Close()
	// b's handler of a's stream ends with b, and a's of b's stream when b's
	// close reaches it.
	RetryUntil(t, 5*time.Second, "no broadcast stream served", func() bool {
		return goroutines("gossip.(*Node).serveBroadcast") == 0
	})
	t.Run("member events after close start nothing", func(t *testing.T) {
		b.updateMember(nodeOf(a), patina.MemberAlive)
		if p := b.peer(ha.Addr()); p != nil {
			t.Fatal("a closed node made a new peer stream")
		}
		b.Broadcast(patina.Changeset{Actor: b.Actor, Version: 1})
		b.Forward(patina.Changeset{Actor: a.Actor, Version: 2}, a.Actor, 1)
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// TestNode_RedialAfterPeerRestart: a node restarted at the same address gets
// the first broadcast sent after it is back, not only after a backoff.
func TestNode_RedialAfterPeerRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "graceful", true: "crash"}[crash], func(t *testing.T) {
			nw := MustNetwork(t)
			ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
			hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
			a := MustOpen(t, testNode(ha, 1, 0, nil))
			b := testNode(hb, 2, 0, func(n *Node) { n.Bootstrap = []string{ha.Addr()} })
			if err := b.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			RetryUntil(t, 10*time.Second, "membership", func() bool { return sees(a, b.Actor) && sees(b, a.Actor) })
			cs := func(v patina.Version) patina.Changeset {
				return patina.Changeset{Actor: a.Actor, Version: v, Changes: []patina.Change{{Table: "t", PK: []byte{byte(v)}, Column: "c"}}}
			}
			a.Broadcast(cs(1))
			RetryUntil(t, 10*time.Second, "first broadcast", func() bool { return b.Handler.(*recorder).has(a.Actor, 1) })

			if crash {
				hb.Down()
			}
			b.Close()
			hb.Up()
			p := a.peer(hb.Addr())
			RetryUntil(t, 5*time.Second, "a to notice the old stream is gone", func() bool { return p.idle() })
			b2 := MustOpen(t, testNode(hb, 2, 0, func(n *Node) { n.Bootstrap = []string{ha.Addr()} }))
			RetryUntil(t, 10*time.Second, "membership after restart", func() bool { return sees(a, b2.Actor) && sees(b2, a.Actor) })
			a.Broadcast(cs(2))
			RetryUntil(t, 5*time.Second, "broadcast after restart", func() bool { return b2.Handler.(*recorder).has(a.Actor, 2) })
		})
	}
}

func TestNode_CheckPeerRefusesOtherCluster(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	a := testNode(ha, 1, 4, nil)
	foreign := nodeOf(testNode(hb, 2, 9, nil))
	err := a.checkPeer(foreign)
	if err == nil {
		t.Fatal("member of another cluster accepted")
	}
	containsAll(t, "refusal", err.Error(), "cluster 9", "cluster 4", hb.Addr(), "cluster_id")
	if a.Stats().ClusterRefused != 1 {
		t.Fatal("refusal not counted")
	}
	if err := a.checkPeer(nodeOf(testNode(hb, 2, 4, nil))); err != nil {
		t.Fatalf("member of the same cluster refused: %v", err)
	}
}

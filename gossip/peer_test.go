package gossip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/mock"
	"github.com/patinadb/patina/netsim"
	"github.com/patinadb/patina/wire"
)

// rawHello dials node's address from h, sends hello (or raw bytes) and
// returns the answer.
func rawHello(t *testing.T, h *netsim.Host, addr string, frame []byte) *wire.HelloAck {
	t.Helper()
	c, err := h.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	msg, err := readMsg(bufio.NewReader(c), 0)
	if err != nil {
		t.Fatalf("read hello answer: %v", err)
	}
	ack, ok := msg.(*wire.HelloAck)
	if !ok {
		t.Fatalf("answer is %T, want HelloAck", msg)
	}
	return ack
}

func containsAll(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not mention %q", what, s, sub)
		}
	}
}

func TestNode_HelloRefusals(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	a := MustOpen(t, testNode(ha, 1, 4, nil))

	t.Run("other cluster id", func(t *testing.T) {
		b := MustOpen(t, testNode(hb, 2, 9, nil))
		_, err := b.SyncState(context.Background(), a.Local())
		if err == nil {
			t.Fatal("sync across clusters accepted")
		}
		containsAll(t, "refusal", err.Error(), ha.Addr(), "cluster 4", "cluster 9", "cluster_id")
		if got := a.Stats().ClusterRefused; got != 1 {
			t.Errorf("ClusterRefused = %d, want 1", got)
		}
		err = b.Pull(context.Background(), a.Local(), []patina.Need{{Actor: a.Actor, Versions: patina.Range{Start: 1, End: 1}}}, func(patina.Changeset) error {
			t.Error("got a changeset across clusters")
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "cluster") {
			t.Fatalf("pull across clusters: %v", err)
		}
	})
	t.Run("older protocol in hello", func(t *testing.T) {
		ack := rawHello(t, hb, ha.Addr(), wire.Marshal(nil, &wire.Hello{Protocol: wire.ProtocolVersion - 1, ClusterID: 4, Actor: patina.ActorID{2}, Region: "iad", Purpose: wire.PurposeSync}))
		if ack.Accepted {
			t.Fatal("older protocol accepted")
		}
		containsAll(t, "reason", ack.Reason, fmt.Sprintf("v%d", wire.ProtocolVersion-1), fmt.Sprintf("v%d", wire.ProtocolVersion), "upgrade")
	})
	t.Run("other protocol in frame header", func(t *testing.T) {
		frame := wire.Marshal(nil, &wire.Hello{Protocol: wire.ProtocolVersion + 1, ClusterID: 4, Actor: patina.ActorID{2}, Region: "iad", Purpose: wire.PurposeSync})
		frame[1], frame[2] = byte((wire.ProtocolVersion+1)>>8), byte(wire.ProtocolVersion+1)
		ack := rawHello(t, hb, ha.Addr(), frame)
		if ack.Accepted {
			t.Fatal("frame of another protocol accepted")
		}
		containsAll(t, "reason", ack.Reason, fmt.Sprintf("v%d", wire.ProtocolVersion+1), fmt.Sprintf("v%d", wire.ProtocolVersion), "upgrade")
	})
	t.Run("unknown purpose", func(t *testing.T) {
		ack := rawHello(t, hb, ha.Addr(), wire.Marshal(nil, &wire.Hello{Protocol: wire.ProtocolVersion, ClusterID: 4, Actor: patina.ActorID{2}, Region: "iad", Purpose: 99}))
		if ack.Accepted || !strings.Contains(ack.Reason, "99") {
			t.Fatalf("unknown purpose: %+v", ack)
		}
	})
	t.Run("oversized hello refused before reading it", func(t *testing.T) {
		c, err := hb.Dial(context.Background(), ha.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		big := wire.Marshal(nil, &wire.Hello{Protocol: wire.ProtocolVersion, ClusterID: 4, Region: strings.Repeat("x", 64<<10), Purpose: wire.PurposeSync})
		go c.Write(big) // may block: the node stops reading
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		msg, err := readMsg(bufio.NewReader(c), 0)
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("node kept reading a 64 KiB hello; want it refused at once")
		}
		if err == nil {
			ack, ok := msg.(*wire.HelloAck)
			if !ok || ack.Accepted {
				t.Fatalf("a 64 KiB hello was answered with %+v; want a refusal", msg)
			}
			containsAll(t, "reason", ack.Reason, "limit")
		}
	})
}

func TestNode_SyncConcurrencyLimit(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	entered, hold := make(chan struct{}, 1), make(chan struct{})
	srv := emptySyncServer()
	srv.ChangesForFunc = func(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
		entered <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return nil
	}
	a := MustOpen(t, testNode(ha, 1, 0, func(n *Node) { n.SyncServer = srv; n.MaxSyncSessions = 1 }))
	b := MustOpen(t, testNode(hb, 2, 0, nil))
	pulled := make(chan error, 1)
	go func() {
		pulled <- b.Pull(context.Background(), a.Local(), []patina.Need{{Actor: patina.ActorID{7}, Versions: patina.Range{Start: 1, End: 5}}}, func(patina.Changeset) error { return nil })
	}()
	<-entered
	_, err := b.SyncState(context.Background(), a.Local())
	if err == nil {
		t.Fatal("second concurrent sync session accepted with MaxSyncSessions = 1")
	}
	containsAll(t, "refusal", err.Error(), ha.Addr(), "1 sync sessions", "another peer")
	if patina.ErrorCode(err) != patina.EUNAVAILABLE {
		t.Errorf("code = %q, want %q", patina.ErrorCode(err), patina.EUNAVAILABLE)
	}
	if st := a.Stats(); st.SyncsRefused != 1 || st.SyncsServed != 1 {
		t.Errorf("stats served %d refused %d, want 1 and 1", st.SyncsServed, st.SyncsRefused)
	}
	close(hold)
	if err := <-pulled; err != nil {
		t.Fatalf("first session: %v", err)
	}
	// The slot is free again.
	RetryUntil(t, 5*time.Second, "slot released", func() bool {
		_, err := b.SyncState(context.Background(), a.Local())
		return err == nil
	})
}

func TestNode_PullAndSyncState(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	origin := patina.ActorID{7}
	state := patina.SyncState{
		Actor:    patina.ActorID{1},
		Heads:    map[patina.ActorID]patina.Version{origin: 9, {1}: 3},
		Gaps:     map[patina.ActorID][]patina.Range{origin: {{Start: 2, End: 4}}},
		Partials: map[patina.ActorID]map[patina.Version]patina.Partial{origin: {9: {Have: []patina.Range{{Start: 0, End: 3}}, LastSeq: 10}}},
	}
	change := func(v patina.Version, seq patina.Seq) patina.Change {
		return patina.Change{Table: "machines", PK: []byte{1, 2}, Column: "state", Value: patina.Text("up"), ColVersion: 1, DBVersion: v, CL: 1, Seq: seq}
	}
	var mu sync.Mutex
	var calls []string
	srv := &mock.SyncServer{
		SyncStateFunc: func() patina.SyncState { return state },
		ChangesForFunc: func(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
			mu.Lock()
			calls = append(calls, fmt.Sprintf("full %02x %v max %d", actor[0], r, maxBytes))
			mu.Unlock()
			if r.Start == 100 {
				return patina.Errorf(patina.ENOTFOUND, "versions 100..=101 of %s were compacted; resync from a snapshot", actor)
			}
			for v := r.Start; v <= r.End; v++ {
				if err := fn(patina.Changeset{Actor: actor, Version: v, Changes: []patina.Change{change(v, 0)}, Seqs: patina.Range{}, TS: 42}); err != nil {
					return err
				}
			}
			return nil
		},
		PartialChangesForFunc: func(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
			mu.Lock()
			calls = append(calls, fmt.Sprintf("partial %02x v%d %v", actor[0], v, seqs))
			mu.Unlock()
			return fn(patina.Changeset{Actor: actor, Version: v, Changes: []patina.Change{change(v, 4)}, Seqs: patina.Range{Start: 4, End: 10}, LastSeq: 10})
		},
	}
	a := MustOpen(t, testNode(ha, 1, 0, func(n *Node) { n.SyncServer = srv }))
	b := MustOpen(t, testNode(hb, 2, 0, nil))

	got, err := b.SyncState(context.Background(), a.Local())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, state) {
		t.Fatalf("SyncState round trip:\n got %+v\nwant %+v", got, state)
	}

	var sets []patina.Changeset
	err = b.Pull(context.Background(), a.Local(), []patina.Need{
		{Actor: origin, Versions: patina.Range{Start: 2, End: 4}},
		{Actor: origin, Versions: patina.Range{Start: 9, End: 9}, Seqs: []patina.Range{{Start: 4, End: 10}}},
	}, func(cs patina.Changeset) error { sets = append(sets, cs); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, cs := range sets {
		vs = append(vs, fmt.Sprintf("v%d %v", cs.Version, cs.Seqs))
	}
	if want := []string{"v2 0..=0", "v3 0..=0", "v4 0..=0", "v9 4..=10"}; !reflect.DeepEqual(vs, want) {
		t.Fatalf("pulled %v, want %v", vs, want)
	}
	if !reflect.DeepEqual(sets[0].Changes[0], change(2, 0)) || sets[0].TS != 42 {
		t.Fatalf("changeset not carried intact: %+v", sets[0])
	}
	mu.Lock()
	if want := []string{fmt.Sprintf("full 07 2..=4 max %d", DefaultChunkBytes), "partial 07 v9 [4..=10]"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("server calls %v, want %v", calls, want)
	}
	mu.Unlock()

	t.Run("server error reaches the client", func(t *testing.T) {
		err := b.Pull(context.Background(), a.Local(), []patina.Need{{Actor: origin, Versions: patina.Range{Start: 100, End: 101}}}, func(patina.Changeset) error { return nil })
		if err == nil {
			t.Fatal("no error")
		}
		containsAll(t, "error", err.Error(), ha.Addr(), "compacted; resync")
		if patina.ErrorCode(err) != patina.ENOTFOUND {
			t.Errorf("code = %q, want the server's %q", patina.ErrorCode(err), patina.ENOTFOUND)
		}
	})
	t.Run("fn error stops the pull", func(t *testing.T) {
		stop := errors.New("enough")
		err := b.Pull(context.Background(), a.Local(), []patina.Need{{Actor: origin, Versions: patina.Range{Start: 1, End: 50}}}, func(patina.Changeset) error { return stop })
		if !errors.Is(err, stop) {
			t.Fatalf("err = %v, want fn's error", err)
		}
	})
	t.Run("deadline names the peer and the step", func(t *testing.T) {
		hold := make(chan struct{})
		defer close(hold)
		srv.ChangesForFunc = func(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
			select {
			case <-hold:
			case <-ctx.Done():
			}
			return ctx.Err()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := b.Pull(ctx, a.Local(), []patina.Need{{Actor: origin, Versions: patina.Range{Start: 1, End: 1}}}, func(patina.Changeset) error { return nil })
		if patina.ErrorCode(err) != patina.ETIMEOUT {
			t.Fatalf("err = %v (code %q), want a timeout", err, patina.ErrorCode(err))
		}
		containsAll(t, "timeout", err.Error(), ha.Addr(), "timed out")
	})
}

func TestPeerConn_QueueFullDrops(t *testing.T) {
	n := &Node{PeerQueueLen: 2}
	p := &peerConn{n: n, addr: "10.0.0.9:7946", q: make(chan []byte, n.PeerQueueLen)}
	for i := range 2 {
		if !p.send([]byte{byte(i)}) {
			t.Fatalf("frame %d refused with room in the queue", i)
		}
	}
	if p.send([]byte{2}) {
		t.Fatal("frame accepted by a full queue")
	}
	if got := n.Stats().PeerDropped; got != 1 {
		t.Fatalf("PeerDropped = %d, want 1", got)
	}
}

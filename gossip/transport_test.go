package gossip

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/wire"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestTransport_Multiplexing(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	data := make(chan []byte, 1)
	tr, err := newTransport(ha, func(c net.Conn) {
		defer c.Close()
		b, err := wire.ReadFrame(c, 0)
		if err != nil {
			t.Errorf("data plane: %v", err)
		}
		data <- b
	}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown() })

	t.Run("magic first byte goes to the data plane", func(t *testing.T) {
		c, err := hb.Dial(context.Background(), ha.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame := wire.Marshal(nil, &wire.SyncStateRequest{})
		if err := wire.WriteFrame(c, frame); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-data:
			if string(got) != string(frame) {
				t.Fatalf("data plane got % x, want % x (first byte kept)", got, frame)
			}
		case s := <-tr.StreamCh():
			s.Close()
			t.Fatal("patina stream handed to memberlist")
		case <-time.After(5 * time.Second):
			t.Fatal("data stream not routed")
		}
	})
	t.Run("any other first byte goes to memberlist", func(t *testing.T) {
		c, err := hb.Dial(context.Background(), ha.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := []byte{0x06, 'p', 'u', 's', 'h'} // a memberlist message type byte
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-tr.StreamCh():
			defer s.Close()
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(s, got); err != nil || string(got) != string(msg) {
				t.Fatalf("memberlist stream read %q, %v; want %q (first byte kept)", got, err, msg)
			}
		case <-data:
			t.Fatal("memberlist stream handed to the data plane")
		case <-time.After(5 * time.Second):
			t.Fatal("memberlist stream not routed")
		}
	})
	t.Run("packets go to memberlist", func(t *testing.T) {
		pc, err := hb.ListenPacket()
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		if _, err := pc.WriteTo([]byte("ping"), strAddr(ha.Addr())); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-tr.PacketCh():
			if string(p.Buf) != "ping" || p.From.String() != hb.Addr() {
				t.Fatalf("packet %q from %s", p.Buf, p.From)
			}
			// memberlist keeps packets queued: each must hold its own
			// bytes, not a 64 KiB read buffer.
			if cap(p.Buf) > 64 {
				t.Fatalf("a 4-byte packet holds a %d-byte buffer", cap(p.Buf))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("packet not delivered")
		}
	})
}

// A node runs memberlist and the data plane on one address.
func TestNode_MembershipAndDataPlaneShareAddress(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	a := MustOpen(t, testNode(ha, 1, 0, nil))
	b := MustOpen(t, testNode(hb, 2, 0, func(n *Node) { n.Bootstrap = []string{ha.Addr()} }))
	RetryUntil(t, 10*time.Second, "membership", func() bool { return sees(a, b.Actor) && sees(b, a.Actor) })
	a.Broadcast(patina.Changeset{Actor: a.Actor, Version: 1, Seqs: patina.Range{}, Changes: []patina.Change{{Table: "t", PK: []byte{1}, Column: "c", Value: patina.Int(1)}}})
	rb := b.Handler.(*recorder)
	RetryUntil(t, 10*time.Second, "broadcast on the shared address", func() bool { return rb.has(a.Actor, 1) })
	if _, err := b.SyncState(context.Background(), a.Local()); err != nil {
		t.Fatalf("sync on the shared address: %v", err)
	}
}

func TestTransport_ShutdownEndsDataStreams(t *testing.T) {
	nw := MustNetwork(t)
	ha := MustHost(t, nw, "10.0.0.1:7946", "iad")
	hb := MustHost(t, nw, "10.0.0.2:7946", "iad")
	entered, exited := make(chan struct{}), make(chan struct{})
	tr, err := newTransport(ha, func(c net.Conn) {
		defer close(exited)
		close(entered)
		io.Copy(io.Discard, c) // a long-lived stream, like a broadcast stream
	}, discard())
	if err != nil {
		t.Fatal(err)
	}
	c, err := hb.Dial(context.Background(), ha.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{wire.Magic}); err != nil {
		t.Fatal(err)
	}
	idle, err := hb.Dial(context.Background(), ha.Addr()) // never sends a byte
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	<-entered
	tr.Shutdown()
	select {
	case <-exited:
	default:
		t.Fatal("Shutdown returned while a data-plane stream handler still runs")
	}
	if n := goroutines("gossip.(*transport).route"); n != 0 {
		t.Fatalf("%d route goroutines outlive Shutdown", n)
	}
}

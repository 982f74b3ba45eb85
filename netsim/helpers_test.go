package netsim_test

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/patinadb/patina/internal/testutil"
	"github.com/patinadb/patina/netsim"
)

// RetryUntil waits on a condition (see testutil.RetryUntil).
var RetryUntil = testutil.RetryUntil

// MustNetwork returns a network closed at the end of the test.
func MustNetwork(tb testing.TB, cfg netsim.Config) *netsim.Network {
	tb.Helper()
	n := netsim.New(cfg)
	tb.Cleanup(func() { n.Close() })
	return n
}

func MustHost(tb testing.TB, n *netsim.Network, addr, region string) *netsim.Host {
	tb.Helper()
	h, err := n.AddHost(addr, region)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func MustListenPacket(tb testing.TB, h *netsim.Host) net.PacketConn {
	tb.Helper()
	pc, err := h.ListenPacket()
	if err != nil {
		tb.Fatal(err)
	}
	return pc
}

func MustListen(tb testing.TB, h *netsim.Host) net.Listener {
	tb.Helper()
	ln, err := h.Listen()
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// MustPair dials from a to b (which must be listening on ln) and returns both
// ends.
func MustPair(tb testing.TB, a *netsim.Host, ln net.Listener) (client, server net.Conn) {
	tb.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err := a.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		tb.Fatal("accept failed")
	}
	return client, server
}

// MustRTT is the matrix RTT between two regions.
func MustRTT(tb testing.TB, a, b string) time.Duration {
	tb.Helper()
	d, ok := netsim.RTT(a, b)
	if !ok {
		tb.Fatalf("no rtt %s-%s", a, b)
	}
	return d
}

// checkNoLeak fails tb if goroutines started during the test outlive it.
func checkNoLeak(tb testing.TB) {
	before := runtime.NumGoroutine()
	tb.Cleanup(func() {
		RetryUntil(tb, 5*time.Second, "goroutines to exit", func() bool {
			return runtime.NumGoroutine() <= before
		})
	})
}

// slack is how late a delivery may be: scheduler and timer latency under
// -race on a shared, loaded machine (seen: +90 ms at load average 10).
// The lower bounds are what prove the delay is simulated; the upper bounds
// only catch a delivery that is absurdly late.
const slack = time.Second

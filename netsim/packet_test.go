package netsim_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patinadb/patina/netsim"
)

func TestRegions(t *testing.T) {
	rs := netsim.Regions()
	if len(rs) != 17 || !slices.IsSorted(rs) {
		t.Fatalf("Regions() = %v, want 17 sorted codes", rs)
	}
	for _, a := range rs {
		for _, b := range rs {
			ab, ok1 := netsim.RTT(a, b)
			ba, ok2 := netsim.RTT(b, a)
			if !ok1 || !ok2 || ab != ba || ab <= 0 {
				t.Fatalf("RTT(%s,%s)=%v,%v RTT(%s,%s)=%v,%v", a, b, ab, ok1, b, a, ba, ok2)
			}
		}
	}
	if d, _ := netsim.RTT("iad", "ord"); d != 16100*time.Microsecond {
		t.Errorf("RTT(iad, ord) = %v, want 16.1ms", d)
	}
	if d, _ := netsim.RTT("fra", "fra"); d != time.Millisecond {
		t.Errorf("RTT(fra, fra) = %v, want 1ms", d)
	}
	if _, ok := netsim.RTT("iad", "xxx"); ok {
		t.Error("RTT(iad, xxx) ok, want unknown")
	}
}

func TestNetwork_AddHost(t *testing.T) {
	n := MustNetwork(t, netsim.Config{})
	MustHost(t, n, "10.0.0.1:7946", "iad")
	for _, tc := range []struct{ name, addr, region, want string }{
		{"duplicate", "10.0.0.1:7946", "iad", "already in use"},
		{"unknown region", "10.0.0.2:7946", "mars", `unknown region "mars"`},
		{"no port", "10.0.0.3", "iad", "want host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.AddHost(tc.addr, tc.region)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddHost(%q, %q) = %v, want error containing %q", tc.addr, tc.region, err, tc.want)
			}
		})
	}
	if h := n.Host("10.0.0.1:7946"); h == nil || h.Region() != "iad" || h.Addr() != "10.0.0.1:7946" {
		t.Fatalf("Host() = %v", h)
	}
	if n.Host("10.0.0.9:1") != nil {
		t.Fatal("Host(unknown) != nil")
	}
	n.Close()
	if _, err := n.AddHost("10.0.0.4:1", "iad"); !errors.Is(err, netsim.ErrNetworkClosed) {
		t.Fatalf("AddHost after Close = %v, want ErrNetworkClosed", err)
	}
}

func TestPacketConn_Latency(t *testing.T) {
	checkNoLeak(t)
	n := MustNetwork(t, netsim.Config{})
	for _, tc := range []struct{ from, to string }{{"iad", "iad"}, {"iad", "ord"}, {"lhr", "syd"}} {
		t.Run(tc.from+"-"+tc.to, func(t *testing.T) {
			a := MustHost(t, n, "a-"+tc.from+tc.to+":1", tc.from)
			b := MustHost(t, n, "b-"+tc.from+tc.to+":1", tc.to)
			pa, pb := MustListenPacket(t, a), MustListenPacket(t, b)
			oneWay := MustRTT(t, tc.from, tc.to) / 2
			start := time.Now()
			if _, err := pa.WriteTo([]byte("ping"), pb.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			k, from, err := pb.ReadFrom(buf)
			took := time.Since(start)
			if err != nil || string(buf[:k]) != "ping" || from.String() != a.Addr() {
				t.Fatalf("ReadFrom = %q, %v, %v; want ping from %s", buf[:k], from, err, a.Addr())
			}
			if took < oneWay || took > oneWay+slack {
				t.Fatalf("packet took %v, want %v (+%v slack)", took, oneWay, slack)
			}
			t.Logf("one-way %v, measured %v", oneWay, took)
		})
	}
}

func TestPacketConn_Truncate(t *testing.T) {
	n := MustNetwork(t, netsim.Config{})
	pa := MustListenPacket(t, MustHost(t, n, "a:1", "iad"))
	pb := MustListenPacket(t, MustHost(t, n, "b:1", "iad"))
	pa.WriteTo([]byte("0123456789"), pb.LocalAddr())
	buf := make([]byte, 4)
	if k, _, err := pb.ReadFrom(buf); k != 4 || err != nil || string(buf) != "0123" {
		t.Fatalf("ReadFrom = %d, %v, %q", k, err, buf)
	}
	if _, err := pa.WriteTo([]byte("x"), netsim.Addr("nobody:1")); !errors.Is(err, netsim.ErrUnknownHost) {
		t.Fatalf("WriteTo(unknown) = %v, want ErrUnknownHost", err)
	}
	if _, err := MustHost(t, n, "a:1-dup", "iad").ListenPacket(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Host("a:1").ListenPacket(); err == nil {
		t.Fatal("second ListenPacket succeeded")
	}
}

func TestPacketConn_QueueOverflow(t *testing.T) {
	n := MustNetwork(t, netsim.Config{PacketQueue: 10})
	a, b := MustHost(t, n, "a:1", "iad"), MustHost(t, n, "b:1", "iad")
	pa, pb := MustListenPacket(t, a), MustListenPacket(t, b)
	for range 25 {
		pa.WriteTo([]byte("x"), pb.LocalAddr())
	}
	RetryUntil(t, time.Second, "queue to fill and overflow", func() bool {
		return a.Stats().PacketsDropped == 15 && b.Stats().PacketsReceived == 10
	})
	for range 10 {
		if _, _, err := pb.ReadFrom(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPacketConn_Deadline(t *testing.T) {
	n := MustNetwork(t, netsim.Config{})
	pc := MustListenPacket(t, MustHost(t, n, "a:1", "iad"))

	t.Run("expires", func(t *testing.T) {
		pc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		start := time.Now()
		_, _, err := pc.ReadFrom(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("ReadFrom = %v, want timeout", err)
		}
		if took := time.Since(start); took < 20*time.Millisecond {
			t.Fatalf("returned after %v, before the deadline", took)
		}
	})
	t.Run("wakes blocked read", func(t *testing.T) {
		pc.SetReadDeadline(time.Time{})
		done := make(chan error)
		go func() { _, _, err := pc.ReadFrom(make([]byte, 1)); done <- err }()
		pc.SetReadDeadline(time.Now())
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadFrom = %v, want timeout", err)
		}
	})
	t.Run("write", func(t *testing.T) {
		pc.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteTo = %v, want timeout", err)
		}
		pc.SetDeadline(time.Time{})
		if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := pc.ReadFrom(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("close wakes read", func(t *testing.T) {
		done := make(chan error)
		go func() { _, _, err := pc.ReadFrom(make([]byte, 1)); done <- err }()
		pc.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom = %v, want net.ErrClosed", err)
		}
		if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteTo after Close = %v, want net.ErrClosed", err)
		}
	})
}

// sendCounted sends count numbered packets from a to b and returns the
// numbers b received once every packet is delivered or dropped.
func sendCounted(t *testing.T, n *netsim.Network, a, b *netsim.Host, count int) []uint32 {
	t.Helper()
	pa, pb := MustListenPacket(t, a), MustListenPacket(t, b)
	var mu sync.Mutex
	var got []uint32
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8)
		for {
			k, _, err := pb.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, binary.BigEndian.Uint32(buf[:k]))
			mu.Unlock()
		}
	}()
	msg := make([]byte, 4)
	for i := range count {
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := pa.WriteTo(msg, pb.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	RetryUntil(t, 5*time.Second, "every packet delivered or dropped", func() bool {
		s := a.Stats()
		mu.Lock()
		defer mu.Unlock()
		return s.PacketsSent == int64(count) && int64(len(got))+s.PacketsDropped == s.PacketsSent
	})
	pb.Close()
	<-done
	slices.Sort(got)
	return got
}

func TestNetwork_Loss(t *testing.T) {
	const count, loss = 10000, 0.1
	n := MustNetwork(t, netsim.Config{Seed: 1, Loss: loss, PacketQueue: 2 * count})
	got := sendCounted(t, n, MustHost(t, n, "a:1", "iad"), MustHost(t, n, "b:1", "ord"), count)
	lost := count - len(got)
	// Binomial(10000, 0.1): sigma = 30; 5 sigma can't flake.
	if sigma := math.Sqrt(count * loss * (1 - loss)); math.Abs(float64(lost)-count*loss) > 5*sigma {
		t.Fatalf("lost %d of %d packets, want %v ± %.0f", lost, count, count*loss, 5*sigma)
	}
	st := n.Stats()
	if st["a:1"].PacketsDropped != int64(lost) || st["b:1"].PacketsReceived != int64(len(got)) || st["a:1"].PacketBytes != 4*count {
		t.Fatalf("stats %+v, lost %d", st, lost)
	}
	t.Logf("lost %d of %d (%.2f%%)", lost, count, 100*float64(lost)/count)

	n.SetLoss(0)
	if got := sendCountedAgain(t, n, count/10); got != count/10 {
		t.Fatalf("after SetLoss(0) got %d of %d", got, count/10)
	}
}

// sendCountedAgain sends from a fresh pair of hosts on n.
func sendCountedAgain(t *testing.T, n *netsim.Network, count int) int {
	return len(sendCounted(t, n, MustHost(t, n, "c:1", "iad"), MustHost(t, n, "d:1", "iad"), count))
}

func TestNetwork_Determinism(t *testing.T) {
	run := func(seed int64) []uint32 {
		n := MustNetwork(t, netsim.Config{Seed: seed, Loss: 0.3, Jitter: 1})
		return sendCounted(t, n, MustHost(t, n, "a:1", "iad"), MustHost(t, n, "b:1", "iad"), 2000)
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different deliveries: %d vs %d packets", len(a), len(b))
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same deliveries")
	}
}

func TestNetwork_Storm(t *testing.T) {
	checkNoLeak(t)
	const hosts, perPeer = 50, 40
	n := MustNetwork(t, netsim.Config{Seed: 7})
	regions := netsim.Regions()
	pcs := make([]net.PacketConn, hosts)
	for i := range pcs {
		pcs[i] = MustListenPacket(t, MustHost(t, n, fmt.Sprintf("10.0.%d.%d:7946", i/250, i%250+1), regions[i%len(regions)]))
	}
	var received atomic.Int64
	var wg sync.WaitGroup
	for _, pc := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	total := int64(hosts * (hosts - 1) * perPeer)
	msg := make([]byte, 200)
	start := time.Now()
	for i, pc := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perPeer {
				for j, to := range pcs {
					if j != i {
						if _, err := pc.WriteTo(msg, to.LocalAddr()); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}
		}()
	}
	RetryUntil(t, 10*time.Second, "all packets delivered", func() bool { return received.Load() == total })
	took := time.Since(start)
	t.Logf("%d packets among %d hosts in %v (%.0f packets/s, includes up to %v of propagation)",
		total, hosts, took, float64(total)/took.Seconds(), MustRTT(t, "gru", "nrt")/2)
	n.Close()
	wg.Wait()
}

// BenchmarkPacket measures the scheduler's sustained packet throughput: 50
// hosts sending to each other in parallel, intra-region.
func BenchmarkPacket(b *testing.B) {
	const hosts = 50
	n := netsim.New(netsim.Config{PacketQueue: 1 << 20})
	defer n.Close()
	pcs := make([]net.PacketConn, hosts)
	for i := range pcs {
		h, _ := n.AddHost(fmt.Sprintf("h%d:1", i), "iad")
		pcs[i], _ = h.ListenPacket()
	}
	var received atomic.Int64
	for _, pc := range pcs {
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	var next atomic.Int64
	msg := make([]byte, 200)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1)
		from := pcs[i%hosts]
		for pb.Next() {
			i++
			to := pcs[i%hosts]
			from.WriteTo(msg, to.LocalAddr())
		}
	})
	for received.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

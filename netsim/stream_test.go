package netsim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina/netsim"
)

func TestConn_RoundTrip(t *testing.T) {
	checkNoLeak(t)
	n := MustNetwork(t, netsim.Config{})
	a := MustHost(t, n, "10.0.0.1:7946", "iad")
	b := MustHost(t, n, "10.0.0.2:7946", "fra")
	ln := MustListen(t, b)
	rtt := MustRTT(t, "iad", "fra")

	go func() { // echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	start := time.Now()
	c, err := a.Dial(context.Background(), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if took := time.Since(start); took < rtt || took > rtt+slack {
		t.Fatalf("dial took %v, want %v", took, rtt)
	}
	if c.LocalAddr().String() != a.Addr() || c.RemoteAddr().String() != b.Addr() {
		t.Fatalf("addrs %v -> %v", c.LocalAddr(), c.RemoteAddr())
	}
	buf := make([]byte, 4)
	for range 3 {
		start = time.Now()
		c.Write([]byte("ping"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo = %q, %v", buf, err)
		}
		if took := time.Since(start); took < rtt || took > rtt+slack {
			t.Fatalf("round trip took %v, want %v", took, rtt)
		}
	}
	if st := n.Stats(); st[a.Addr()].StreamsOpened != 1 || st[b.Addr()].StreamsAccepted != 1 || st[a.Addr()].StreamBytesSent != 12 {
		t.Fatalf("stats %+v", st)
	}
	ln.Close()
}

func TestConn_Order(t *testing.T) {
	n := MustNetwork(t, netsim.Config{Seed: 3, Jitter: 1, StreamBuffer: 64 << 10})
	a := MustHost(t, n, "a:1", "iad")
	b := MustHost(t, n, "b:1", "ord")
	c, s := MustPair(t, a, MustListen(t, b))
	const count = 200000 // uint32s, 800 kB, written in random-sized pieces
	errc := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewSource(1))
		buf := make([]byte, 0, 4096)
		for i := 0; i < count; {
			buf = buf[:0]
			for k := rng.Intn(1000) + 1; k > 0 && i < count; k-- {
				buf = binary.BigEndian.AppendUint32(buf, uint32(i))
				i++
			}
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.Close()
	}()
	rng := rand.New(rand.NewSource(2))
	var all []byte
	buf := make([]byte, 10000)
	for {
		k, err := s.Read(buf[:rng.Intn(len(buf))+1])
		all = append(all, buf[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(all) != 4*count {
		t.Fatalf("read %d bytes, want %d", len(all), 4*count)
	}
	for i := range count {
		if v := binary.BigEndian.Uint32(all[4*i:]); v != uint32(i) {
			t.Fatalf("value %d is %d", i, v)
		}
	}
}

// Concurrent Writes must not interleave: memberlist and the data plane write
// whole frames from several goroutines.
func TestConn_ConcurrentWrites(t *testing.T) {
	n := MustNetwork(t, netsim.Config{StreamBuffer: 16 << 10})
	c, s := MustPair(t, MustHost(t, n, "a:1", "iad"), MustListen(t, MustHost(t, n, "b:1", "iad")))
	const writers, frames, size = 8, 200, 1000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			frame := bytes.Repeat([]byte{byte(w)}, size)
			for range frames {
				if _, err := c.Write(frame); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); c.Close() }()
	all, err := io.ReadAll(s)
	if err != nil || len(all) != writers*frames*size {
		t.Fatalf("ReadAll = %d bytes, %v", len(all), err)
	}
	for i := 0; i < len(all); i += size {
		if f := all[i : i+size]; !bytes.Equal(f, bytes.Repeat(f[:1], size)) {
			t.Fatalf("frame at %d interleaved", i)
		}
	}
}

func TestConn_Close(t *testing.T) {
	n := MustNetwork(t, netsim.Config{})
	a := MustHost(t, n, "a:1", "iad")
	ln := MustListen(t, MustHost(t, n, "b:1", "ord"))

	t.Run("peer drains then EOF", func(t *testing.T) {
		c, s := MustPair(t, a, ln)
		c.Write([]byte("hello"))
		c.Close()
		if all, err := io.ReadAll(s); err != nil || string(all) != "hello" {
			t.Fatalf("ReadAll = %q, %v", all, err)
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, netsim.ErrReset) {
			t.Fatalf("write to closed peer = %v, want ErrReset", err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close = %v, want net.ErrClosed", err)
		}
		if err := c.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close = %v", err)
		}
		s.Close()
	})
	t.Run("close wakes blocked read and write", func(t *testing.T) {
		c, s := MustPair(t, a, ln)
		defer s.Close()
		done := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
		c.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read = %v, want net.ErrClosed", err)
		}
	})
	t.Run("half close", func(t *testing.T) {
		c, s := MustPair(t, a, ln)
		c.Write([]byte("request"))
		c.(interface{ CloseWrite() error }).CloseWrite()
		if _, err := c.Write([]byte("x")); !errors.Is(err, netsim.ErrShutdown) {
			t.Fatalf("write after CloseWrite = %v", err)
		}
		if req, err := io.ReadAll(s); err != nil || string(req) != "request" {
			t.Fatalf("server read %q, %v", req, err)
		}
		s.Write([]byte("response"))
		s.Close()
		if resp, err := io.ReadAll(c); err != nil || string(resp) != "response" {
			t.Fatalf("client read %q, %v", resp, err)
		}
		c.Close()
	})
}

func TestHost_Dial(t *testing.T) {
	n := MustNetwork(t, netsim.Config{})
	a := MustHost(t, n, "10.0.0.1:7946", "iad")
	b := MustHost(t, n, "10.0.0.2:7946", "syd")
	ctx := context.Background()
	for _, tc := range []struct {
		name, addr string
		want       error
	}{
		{"unknown", "10.0.0.9:7946", netsim.ErrUnknownHost},
		{"not listening", b.Addr(), netsim.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Dial(ctx, tc.addr)
			if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "netsim: dial "+tc.addr+" from 10.0.0.1:7946: ") {
				t.Fatalf("Dial = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("context ends before handshake", func(t *testing.T) {
		ln := MustListen(t, b)
		defer ln.Close()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond) // RTT is ~230 ms
		defer cancel()
		if _, err := a.Dial(ctx, b.Addr()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial = %v, want context.DeadlineExceeded", err)
		}
		// The aborted handshake never reaches Accept: the next conn it
		// returns is a later, working one.
		c, s := MustPair(t, a, ln)
		c.Write([]byte("x"))
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			t.Fatalf("first accepted conn: %v", err)
		}
		c.Close()
		s.Close()
	})
	t.Run("listener closed", func(t *testing.T) {
		ln := MustListen(t, b)
		done := make(chan error)
		go func() { _, err := ln.Accept(); done <- err }()
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept = %v, want net.ErrClosed", err)
		}
		if _, err := a.Dial(ctx, b.Addr()); !errors.Is(err, netsim.ErrRefused) {
			t.Fatalf("Dial = %v, want ErrRefused", err)
		}
		ln = MustListen(t, b) // listen again
		c, s := MustPair(t, a, ln)
		c.Close()
		s.Close()
		ln.Close()
	})
}

func TestConn_Deadline(t *testing.T) {
	n := MustNetwork(t, netsim.Config{StreamBuffer: 1024})
	c, s := MustPair(t, MustHost(t, n, "a:1", "iad"), MustListen(t, MustHost(t, n, "b:1", "iad")))
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
	}

	t.Run("read expires", func(t *testing.T) {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read = %v, want timeout", err)
		}
		if took := time.Since(start); took < 20*time.Millisecond {
			t.Fatalf("Read returned after %v", took)
		}
	})
	t.Run("past deadline fails at once, cleared works", func(t *testing.T) {
		c.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read = %v, want timeout", err)
		}
		c.SetReadDeadline(time.Time{})
		s.Write([]byte("x"))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("moved while blocked", func(t *testing.T) {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		done := make(chan error)
		go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
		c.SetDeadline(time.Now().Add(10 * time.Millisecond))
		if err := <-done; !isTimeout(err) {
			t.Fatalf("Read = %v, want timeout", err)
		}
		c.SetDeadline(time.Time{})
	})
	t.Run("write blocks on full window", func(t *testing.T) {
		c.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
		k, err := c.Write(make([]byte, 1<<20))
		if !isTimeout(err) || k != 1024 {
			t.Fatalf("Write = %d, %v; want 1024 (the window), timeout", k, err)
		}
		c.SetWriteDeadline(time.Time{})
		// Reading reopens the window.
		go io.Copy(io.Discard, s)
		if k, err := c.Write(make([]byte, 100<<10)); k != 100<<10 || err != nil {
			t.Fatalf("Write = %d, %v", k, err)
		}
	})
	c.Close()
	if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetDeadline after Close = %v", err)
	}
}

func TestNetwork_Partition(t *testing.T) {
	checkNoLeak(t)
	n := MustNetwork(t, netsim.Config{})
	a := MustHost(t, n, "10.0.0.1:7946", "iad")
	b := MustHost(t, n, "10.0.0.2:7946", "iad")
	c := MustHost(t, n, "10.0.0.3:7946", "fra")
	pa, pb, pc := MustListenPacket(t, a), MustListenPacket(t, b), MustListenPacket(t, c)
	lnb, lnc := MustListen(t, b), MustListen(t, c)
	ac, ca := MustPair(t, a, lnc)
	ab, ba := MustPair(t, a, lnb)
	ac.Write([]byte("before"))

	// A packet in flight when the partition starts is lost too.
	pa.WriteTo([]byte("in flight"), pc.LocalAddr())
	n.Partition([]string{a.Addr(), b.Addr()}, []string{c.Addr()})

	t.Run("streams break", func(t *testing.T) {
		if _, err := ac.Read(make([]byte, 1)); !errors.Is(err, netsim.ErrPartitioned) {
			t.Fatalf("Read = %v, want ErrPartitioned", err)
		}
		if _, err := ac.Write([]byte("x")); !errors.Is(err, netsim.ErrPartitioned) {
			t.Fatalf("Write = %v, want ErrPartitioned", err)
		}
		if _, err := io.ReadAll(ca); !errors.Is(err, netsim.ErrPartitioned) {
			t.Fatalf("peer Read = %v, want ErrPartitioned", err)
		}
		ab.Write([]byte("same side"))
		if _, err := io.ReadFull(ba, make([]byte, 9)); err != nil {
			t.Fatalf("stream inside a group: %v", err)
		}
	})
	t.Run("dial fails", func(t *testing.T) {
		_, err := a.Dial(context.Background(), c.Addr())
		if want := "netsim: dial 10.0.0.3:7946 from 10.0.0.1:7946: partitioned"; err == nil || err.Error() != want {
			t.Fatalf("Dial = %v, want %q", err, want)
		}
	})
	t.Run("packets dropped", func(t *testing.T) {
		for range 10 {
			pa.WriteTo([]byte("x"), pc.LocalAddr())
		}
		RetryUntil(t, time.Second, "11 packets dropped", func() bool { return a.Stats().PacketsDropped == 11 })
		pa.WriteTo([]byte("y"), pb.LocalAddr())
		if _, _, err := pb.ReadFrom(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if c.Stats().PacketsReceived != 0 {
			t.Fatalf("c received %d packets", c.Stats().PacketsReceived)
		}
	})

	n.Heal()
	t.Run("heal", func(t *testing.T) {
		x, y := MustPair(t, c, MustListen(t, a))
		x.Write([]byte("z"))
		if _, err := io.ReadFull(y, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		x.Close()
		y.Close()
		pc.WriteTo([]byte("p"), pa.LocalAddr())
		if _, from, err := pa.ReadFrom(make([]byte, 1)); err != nil || from.String() != c.Addr() {
			t.Fatalf("ReadFrom = %v, %v", from, err)
		}
	})
	for _, x := range []net.Conn{ac, ca, ab, ba} {
		x.Close()
	}
	n.Close()
}

func TestHost_DownUp(t *testing.T) {
	checkNoLeak(t)
	n := MustNetwork(t, netsim.Config{})
	a := MustHost(t, n, "10.0.0.1:7946", "iad")
	b := MustHost(t, n, "10.0.0.2:7946", "ord")
	pa, pb := MustListenPacket(t, a), MustListenPacket(t, b)
	lnb := MustListen(t, b)
	ab, ba := MustPair(t, a, lnb)

	readErr := make(chan error, 1)
	go func() { _, _, err := pb.ReadFrom(make([]byte, 1)); readErr <- err }()
	acceptErr := make(chan error, 1)
	go func() { _, err := lnb.Accept(); acceptErr <- err }()

	b.Down()
	if !b.IsDown() {
		t.Fatal("IsDown false")
	}
	if _, err := ab.Read(make([]byte, 1)); !errors.Is(err, netsim.ErrHostDown) {
		t.Fatalf("peer Read = %v, want ErrHostDown", err)
	}
	if _, err := ba.Write([]byte("x")); err == nil {
		t.Fatal("Write on the down host succeeded")
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom on down host = %v, want net.ErrClosed", err)
	}
	if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on down host = %v, want net.ErrClosed", err)
	}
	if _, err := a.Dial(context.Background(), b.Addr()); !errors.Is(err, netsim.ErrHostDown) {
		t.Fatalf("Dial = %v, want ErrHostDown", err)
	}
	if _, err := b.Listen(); !errors.Is(err, netsim.ErrHostDown) {
		t.Fatalf("Listen on down host = %v", err)
	}
	if _, err := b.Dial(context.Background(), a.Addr()); !errors.Is(err, netsim.ErrHostDown) {
		t.Fatalf("Dial from down host = %v", err)
	}
	pa.WriteTo([]byte("x"), pb.LocalAddr())
	if a.Stats().PacketsDropped != 1 {
		t.Fatalf("packet to down host not dropped: %+v", a.Stats())
	}

	b.Up()
	pb = MustListenPacket(t, b)
	lnb = MustListen(t, b)
	ab, ba = MustPair(t, a, lnb)
	ab.Write([]byte("back"))
	if _, err := io.ReadFull(ba, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	pa.WriteTo([]byte("x"), pb.LocalAddr())
	if _, _, err := pb.ReadFrom(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if _, err := ab.Read(make([]byte, 1)); !errors.Is(err, netsim.ErrNetworkClosed) {
		t.Fatalf("Read after network Close = %v", err)
	}
}

func TestNetwork_Bandwidth(t *testing.T) {
	const bw, size = 4_000_000, 1_000_000 // 1 MB at 4 MB/s: 250 ms
	want := time.Duration(size) * time.Second / bw
	n := MustNetwork(t, netsim.Config{Bandwidth: bw})
	a := MustHost(t, n, "a:1", "iad")
	b := MustHost(t, n, "b:1", "iad")
	c, s := MustPair(t, a, MustListen(t, b))
	start := time.Now()
	go func() { c.Write(make([]byte, size)); c.Close() }()
	got, err := io.Copy(io.Discard, s)
	took := time.Since(start)
	if err != nil || got != size {
		t.Fatalf("Copy = %d, %v", got, err)
	}
	if took < want || took > want+want/5+slack {
		t.Fatalf("1 MB took %v, want about %v", took, want)
	}
	t.Logf("1 MB at %d B/s: %v (%.2f MB/s)", bw, took, size/took.Seconds()/1e6)

	t.Run("packets share the link", func(t *testing.T) {
		pa, pb := MustListenPacket(t, a), MustListenPacket(t, b)
		a.SetBandwidth(1_000_000)
		start := time.Now()
		for range 100 {
			pa.WriteTo(make([]byte, 1000), pb.LocalAddr()) // 100 kB at 1 MB/s: 100 ms
		}
		for range 100 {
			if _, _, err := pb.ReadFrom(make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took < 100*time.Millisecond || took > 100*time.Millisecond+slack {
			t.Fatalf("100 kB of packets took %v, want ~100ms", took)
		}
	})
}

func TestNetwork_CloseLeavesNoGoroutines(t *testing.T) {
	checkNoLeak(t)
	n := netsim.New(netsim.Config{Bandwidth: 100_000})
	a := MustHost(t, n, "a:1", "iad")
	b := MustHost(t, n, "b:1", "syd")
	pb := MustListenPacket(t, b)
	c, s := MustPair(t, a, MustListen(t, b))
	errs := make(chan error, 4)
	go func() { _, _, err := pb.ReadFrom(make([]byte, 1)); errs <- err }()
	go func() { _, err := s.Read(make([]byte, 1)); errs <- err }()
	go func() { _, err := c.Write(make([]byte, 1<<20)); errs <- err }() // blocked on the link
	go func() { _, err := a.Dial(context.Background(), b.Addr()); errs <- err }()
	n.Close()
	for range 4 {
		if err := <-errs; err == nil {
			t.Fatal("blocked call returned nil after Close")
		}
	}
	n.Close() // idempotent
}

// BenchmarkConn measures bulk stream throughput inside one region (RTT 1 ms,
// default 4 MiB window, no bandwidth cap).
func BenchmarkConn(b *testing.B) {
	n := netsim.New(netsim.Config{})
	defer n.Close()
	x, _ := n.AddHost("a:1", "iad")
	y, _ := n.AddHost("b:1", "iad")
	c, s := MustPair(b, x, MustListen(b, y))
	done := make(chan int64)
	go func() { k, _ := io.Copy(io.Discard, s); done <- k }()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	<-done
}

package pubsub_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patinadb/patina"
)

// BenchmarkSubscriptions measures, with many subscriptions on one node, the
// time from a committed change (the agent's OnApplied) to the event at the
// subscribed client, and the CPU each change costs, writes included.
//
//	go test ./pubsub -run '^$' -bench Subscriptions -benchtime 2000x
//
// Shapes: "eq" is the service-discovery case, every subscription watching
// one service name (`WHERE name = ?`, found through the equality index);
// "range" filters on `port >= ? AND port < ?` (comparisons checked in Go
// against the changed row); "like" filters with `name LIKE ?`, which
// nothing but SQLite can evaluate, so every change re-runs every
// subscription restricted to the changed key (the worst case of the
// primary-key strategy). Each change is an UPDATE of one random row
// that exactly one subscription holds; the loop waits for its event before
// the next write (latency, not throughput). cpu-us/change is the process's
// user+system CPU divided by the changes.
func BenchmarkSubscriptions(b *testing.B) {
	for _, bc := range []struct {
		shape string
		subs  int
	}{
		{"eq", 0}, {"eq", 1000}, {"eq", 10000}, {"range", 1000}, {"range", 10000}, {"like", 1000}, {"like", 10000},
	} {
		b.Run(fmt.Sprintf("shape=%s/subs=%d", bc.shape, bc.subs), func(b *testing.B) {
			benchSubscriptions(b, bc.shape, bc.subs)
		})
	}
}

func benchSubscriptions(b *testing.B, shape string, nsubs int) {
	const rows = 10000
	e := MustEnv(b, "", nil)
	var sb strings.Builder
	sb.WriteString(`INSERT INTO services (id, name, address, port) VALUES `)
	for i := 0; i < rows; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "('s%d', 'svc-%d', '10.0.%d.%d', %d)", i, i, i/256, i%256, 10*i)
	}
	e.exec(sb.String())

	type rec struct {
		i  int
		at time.Time
	}
	got := make(chan rec, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	for i := 0; i < nsubs; i++ {
		st := patina.Statement{SQL: `SELECT id, address, port FROM services WHERE name = ?`, Params: []patina.Value{patina.Text(fmt.Sprintf("svc-%d", i))}}
		if shape == "like" {
			st = patina.Statement{SQL: `SELECT id, address, port FROM services WHERE name LIKE ?`, Params: []patina.Value{patina.Text(fmt.Sprintf("svc-%d", i))}}
		}
		if shape == "range" {
			st = patina.Statement{SQL: `SELECT id, address, port FROM services WHERE port >= ? AND port < ?`, Params: []patina.Value{patina.Int(int64(10 * i)), patina.Int(int64(10*i + 10))}}
		}
		sub, err := e.svc.Subscribe(ctx, st, patina.SubscribeOptions{SkipRows: true})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer sub.Close()
			for {
				ev, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if ev.Kind == patina.EventChange {
					got <- rec{i, time.Now()}
				}
			}
		}()
	}
	if nsubs > 0 {
		b.Logf("%d subscriptions set up in %v", nsubs, time.Since(start).Round(time.Millisecond))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	offset := make([]int, rows)
	change := func() time.Duration {
		i := rng.IntN(max(nsubs, 1))
		// A new port inside the row's own range keeps it in its
		// subscription.
		offset[i] = (offset[i] + 1) % 10
		newPort := 10*i + offset[i]
		res, err := e.db.Transact(ctx, []patina.Statement{{SQL: fmt.Sprintf(`UPDATE services SET port = %d WHERE id = 's%d'`, newPort, i)}})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		e.svc.Notify([]patina.Changeset{*res.Changeset})
		if nsubs == 0 {
			return 0
		}
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case r := <-got:
				if r.i == i {
					return r.at.Sub(t0)
				}
			case <-timeout.C:
				b.Fatalf("no event for subscription %d within 30s", i)
			}
		}
	}
	for i := 0; i < 20; i++ { // warm up: the first passes re-run new subscriptions
		change()
	}
	lat := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		lat = append(lat, change())
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	slices.Sort(lat)
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/change")
	if nsubs > 0 {
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[(len(lat)-1)*99/100]), "p99-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

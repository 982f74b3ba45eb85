package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestWatchdog_PingsWhileProgressingExitsWhenStuck(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	progress := now
	var pings []string
	stalled := make(chan time.Duration, 1)
	w := &watchdog{
		progress:   func() time.Time { mu.Lock(); defer mu.Unlock(); return progress },
		now:        func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		stallAfter: time.Minute,
		notify:     func(s string) { mu.Lock(); pings = append(pings, s); mu.Unlock() },
		onStall:    func(d time.Duration) { stalled <- d },
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if ok, _ := w.healthy(); !ok {
		t.Fatal("fresh progress reported unhealthy")
	}
	mu.Lock()
	now = now.Add(59 * time.Second)
	mu.Unlock()
	if ok, _ := w.healthy(); !ok {
		t.Fatal("59 s without progress is under the 1 min limit")
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx, time.Millisecond)
	select {
	case d := <-stalled:
		if d < time.Minute {
			t.Fatalf("stalled after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stuck apply loop never detected")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pings) == 0 || pings[0] != "READY=1" {
		t.Fatalf("notifications %v, want READY=1 first", pings)
	}
	for _, p := range pings {
		if p == "WATCHDOG=1" {
			t.Fatalf("pinged the watchdog while stuck: %v", pings)
		}
	}
}

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// DefaultStallTimeout is how long the apply loop may make no progress
// before the agent declares itself stuck and exits (INCIDENTS.md #13: a
// deadlocked consumer was only noticed by humans).
const DefaultStallTimeout = 2 * time.Minute

// watchdog tells systemd the agent is ready, pings its watchdog only while
// the apply loop makes progress, and exits the process through onStall when
// the loop has been stuck for stallAfter, so a supervisor restarts it and
// it resumes from its files.
type watchdog struct {
	progress   func() time.Time // last progress of the apply loop
	now        func() time.Time
	stallAfter time.Duration
	notify     func(state string) // sd_notify; no-op without NOTIFY_SOCKET
	onStall    func(stuckFor time.Duration)
	log        *slog.Logger
}

// healthy reports whether the apply loop progressed recently.
func (w *watchdog) healthy() (bool, time.Duration) {
	stuck := w.now().Sub(w.progress())
	return stuck < w.stallAfter, stuck
}

// run pings every interval until ctx ends or a stall is detected.
func (w *watchdog) run(ctx context.Context, interval time.Duration) {
	w.notify(daemon.SdNotifyReady)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.notify(daemon.SdNotifyStopping)
			return
		case <-t.C:
		}
		ok, stuck := w.healthy()
		if !ok {
			w.log.Error("apply loop made no progress; exiting so the supervisor restarts the agent (it resumes from its files)", "stuck_for", stuck.Round(time.Second), "limit", w.stallAfter)
			w.onStall(stuck)
			return
		}
		w.notify(daemon.SdNotifyWatchdog)
	}
}

// watchdogInterval is half systemd's WatchdogSec, or 5 s without systemd.
func watchdogInterval() time.Duration {
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		return d / 2
	}
	return 5 * time.Second
}

func sdNotify(state string) { daemon.SdNotify(false, state) }

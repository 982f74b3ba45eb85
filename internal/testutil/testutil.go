// Package testutil holds helpers shared by patina's tests.
package testutil

import (
	"testing"
	"time"
)

// RetryUntil polls cond every millisecond until it holds, failing tb with
// what after timeout. Tests wait on conditions, never sleep.
func RetryUntil(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

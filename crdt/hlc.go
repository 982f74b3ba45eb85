package crdt

import (
	"fmt"
	"sync"
	"time"

	"github.com/patinadb/patina"
)

// DefaultMaxDrift is how far ahead of the local wall clock a remote timestamp
// may be before Update refuses it. It matches Corrosion's uhlc max_delta.
const DefaultMaxDrift = 300 * time.Millisecond

// maxMillis is the largest Unix millisecond count a Timestamp holds (48 bits).
const maxMillis = 1<<48 - 1

// Clock is a hybrid logical clock. A patina.Timestamp holds Unix milliseconds
// in its high 48 bits and a logical counter in its low 16 bits. Readings
// follow the wall clock when it moves forward and the counter when it does
// not (the wall clock stalled, went backwards, or a remote clock is ahead);
// when the counter overflows it carries into the milliseconds, so the clock
// runs ahead of the wall clock until the wall clock catches up.
//
// A Clock is safe for concurrent use.
type Clock struct {
	// Now returns the wall-clock time. Required; it is called on every Next
	// and Update. NewClock sets it.
	Now func() time.Time
	// MaxDrift is how far ahead of Now a remote timestamp may be before
	// Update refuses it. Zero or negative means DefaultMaxDrift.
	MaxDrift time.Duration

	mu   sync.Mutex
	last patina.Timestamp
}

// NewClock returns a clock reading the wall clock from now, with
// MaxDrift set to DefaultMaxDrift.
func NewClock(now func() time.Time) *Clock {
	return &Clock{Now: now, MaxDrift: DefaultMaxDrift}
}

// Next returns a new timestamp, strictly greater than every timestamp Next
// returned before and than every remote timestamp Update accepted.
//
// Strictness would fail only past the year 10889 (2^48 ms), which Update's
// drift check keeps remote peers from pushing the clock towards.
func (c *Clock) Next() patina.Timestamp {
	now := FromTime(c.Now())
	c.mu.Lock()
	defer c.mu.Unlock()
	if now > c.last {
		c.last = now
	} else {
		c.last++ // counter; 0xffff carries into the milliseconds
	}
	return c.last
}

// Update observes a remote timestamp, so that every later Next is greater
// than it. It refuses, with a *DriftError and the clock unchanged, a remote
// timestamp more than MaxDrift ahead of Now: one peer with a broken clock
// must not drag every node's clock into the future.
func (c *Clock) Update(remote patina.Timestamp) error {
	now := c.Now()
	maxDrift := c.MaxDrift
	if maxDrift <= 0 {
		maxDrift = DefaultMaxDrift
	}
	remoteTime := ToTime(remote)
	if drift := remoteTime.Sub(now); drift > maxDrift {
		return &DriftError{Remote: remoteTime, Local: now, Drift: drift, MaxDrift: maxDrift}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote > c.last {
		c.last = remote
	}
	return nil
}

// Last returns the latest timestamp Next returned or Update accepted, or 0.
func (c *Clock) Last() patina.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// DriftError is Update's refusal of a remote timestamp too far ahead of the
// local wall clock.
type DriftError struct {
	Remote   time.Time     // the remote timestamp's physical time
	Local    time.Time     // the local wall clock when it was refused
	Drift    time.Duration // Remote - Local
	MaxDrift time.Duration // the limit in force
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("update clock: remote timestamp %s is %s ahead of local time %s, more than the max drift %s; check the remote node's clock (NTP)",
		e.Remote.UTC().Format(time.RFC3339Nano), e.Drift, e.Local.UTC().Format(time.RFC3339Nano), e.MaxDrift)
}

// FromTime returns the timestamp of t's Unix millisecond with a zero logical
// counter. Times before 1970 give 0; times past the 48-bit range saturate.
func FromTime(t time.Time) patina.Timestamp {
	ms := t.UnixMilli()
	switch {
	case ms < 0:
		ms = 0
	case ms > maxMillis:
		ms = maxMillis
	}
	return patina.Timestamp(uint64(ms) << 16)
}

// ToTime returns the physical part of ts as a UTC time (millisecond
// precision); the logical counter is dropped.
func ToTime(ts patina.Timestamp) time.Time {
	return time.UnixMilli(ts.Millis()).UTC()
}

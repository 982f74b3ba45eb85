package antientropy

import (
	"time"

	"github.com/patinadb/patina"
)

// Rand is the randomness the package needs; *rand.Rand of math/rand/v2
// implements it. Tests pass a seeded one, so every choice is reproducible.
type Rand interface {
	// Int64N returns a uniform value in [0, n); n > 0.
	Int64N(n int64) int64
}

// Sync backoff bounds. Corrosion waits 1 s..15 s and never resets; patina
// targets sub-second repair, so it starts at 200 ms and returns there as soon
// as the node is behind.
const (
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// jitterPercent is the spread of every delay around the backoff's current
// step: ±30%, as Corrosion's backoff crate.
const jitterPercent = 30

// Backoff decides when the next sync round starts: randomized exponential
// backoff between Min and Max, reset to Min while the node is behind. The
// zero value is ready to use with the defaults. A Backoff is not safe for
// concurrent use.
type Backoff struct {
	// Min is the first and smallest delay. Zero means DefaultMinBackoff.
	Min time.Duration
	// Max caps the delay. Zero means DefaultMaxBackoff; a Max below Min is
	// raised to Min.
	Max time.Duration

	step time.Duration // current step before jitter; 0 before the first Next
}

// NewBackoff returns a Backoff with the default bounds.
func NewBackoff() *Backoff {
	return &Backoff{Min: DefaultMinBackoff, Max: DefaultMaxBackoff}
}

func (b *Backoff) bounds() (lo, hi time.Duration) {
	lo, hi = b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	return lo, max(lo, hi)
}

// Next returns how long to wait before the next round. behind reports that
// the node lacks something: gaps or partials present, or a peer's head above
// ours (after a restart or a detected gap). When behind, the step resets to
// Min; otherwise it doubles, up to Max. The delay is the step scaled by a
// uniform factor in [0.7, 1.3], clamped to [Min, Max].
func (b *Backoff) Next(behind bool, r Rand) time.Duration {
	lo, hi := b.bounds()
	switch {
	case behind || b.step == 0:
		b.step = lo
	case b.step >= hi/2:
		b.step = hi
	default:
		b.step *= 2
	}
	b.step = min(max(b.step, lo), hi)
	spread := int64(b.step) * jitterPercent / 100
	d := b.step
	if spread > 0 {
		d += time.Duration(r.Int64N(2*spread+1) - spread)
	}
	return min(max(d, lo), hi)
}

// Reset makes the next delay start from Min again.
func (b *Backoff) Reset() { b.step = 0 }

// Behind reports whether local lacks versions sync could bring: gaps or
// partials of another actor, or a version of another actor above local's head
// in one of the remote states (peers' summaries seen lately). A node's own
// actor is ignored, as in Needs. Pass the result to Backoff.Next.
func Behind(local patina.SyncState, remotes ...patina.SyncState) bool {
	for a, gs := range local.Gaps {
		if a == local.Actor {
			continue
		}
		for _, g := range gs {
			if g.Len() > 0 {
				return true
			}
		}
	}
	for a, ps := range local.Partials {
		if a != local.Actor && len(ps) > 0 {
			return true
		}
	}
	for _, r := range remotes {
		for a, h := range r.Heads {
			if a != local.Actor && h > local.Heads[a] {
				return true
			}
		}
	}
	return false
}

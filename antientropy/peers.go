package antientropy

import (
	"slices"
	"time"

	"github.com/patinadb/patina"
)

// Candidate is a possible sync partner.
type Candidate struct {
	Actor  patina.ActorID
	Region string
	// LastSync is when this node last completed a sync with the candidate;
	// zero means never.
	LastSync time.Time
	// Score ranks how much the candidate is known to hold that we lack, for
	// example the versions originating from it that we need (Corrosion). The
	// caller computes it; higher is better, zero means nothing known.
	Score int
}

// ChoosePeers picks up to n sync partners from cands, best first: the
// highest Score, then the least recently synced (never synced first), then
// those in localRegion (cheaper round trips), then at random. The result is
// deterministic given r; cands is not modified.
func ChoosePeers(cands []Candidate, n int, localRegion string, r Rand) []Candidate {
	if n <= 0 || len(cands) == 0 {
		return nil
	}
	cs := slices.Clone(cands)
	for i := len(cs) - 1; i > 0; i-- {
		j := int(r.Int64N(int64(i + 1)))
		cs[i], cs[j] = cs[j], cs[i]
	}
	slices.SortStableFunc(cs, func(a, b Candidate) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		if c := a.LastSync.Compare(b.LastSync); c != 0 {
			return c
		}
		al, bl := a.Region == localRegion, b.Region == localRegion
		switch {
		case al && !bl:
			return -1
		case bl && !al:
			return 1
		}
		return 0
	})
	return cs[:min(n, len(cs))]
}

package patina

import (
	"context"
	"strconv"
	"strings"
)

// WaitTarget says which nodes a write must reach before a transaction with
// ?wait= returns (read-your-writes across nodes).
type WaitTarget struct {
	// All: every live member (alive or suspect when the wait starts).
	All bool
	// Region: every live member of the writer's region.
	Region bool
	// N: at least N members, the writer included.
	N int
}

func (t WaitTarget) String() string {
	switch {
	case t.All:
		return "all"
	case t.Region:
		return "region"
	}
	return strconv.Itoa(t.N)
}

// ParseWaitTarget parses "all", "region" or a positive count.
func ParseWaitTarget(s string) (WaitTarget, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all":
		return WaitTarget{All: true}, nil
	case "region":
		return WaitTarget{Region: true}, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return WaitTarget{}, Errorf(EINVALID, "?wait=%s is not all, region or a positive number of nodes", s)
	}
	return WaitTarget{N: n}, nil
}

// ApplyWaiter waits until a version is applied on enough nodes.
type ApplyWaiter interface {
	// WaitApplied returns once actor's version v is applied on the target
	// nodes, or an error (code ETIMEOUT when ctx ends first) naming the
	// nodes that have not applied it.
	WaitApplied(ctx context.Context, actor ActorID, v Version, target WaitTarget) error
	// HasApplied reports whether this node has applied actor's version v:
	// v is at or below the actor's head and in none of its gaps or
	// partially received versions.
	HasApplied(actor ActorID, v Version) bool
}

// AppliedChecker asks another node whether it holds a version.
type AppliedChecker interface {
	HasApplied(ctx context.Context, m Member, actor ActorID, v Version) (bool, error)
}

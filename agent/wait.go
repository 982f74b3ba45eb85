package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/patinadb/patina"
)

// Defaults for Waiter's polling.
const (
	DefaultWaitMinPoll = 10 * time.Millisecond
	DefaultWaitMaxPoll = 200 * time.Millisecond
)

var _ patina.ApplyWaiter = (*Waiter)(nil)

// Waiter gives transactions read-your-writes across nodes (?wait=): it
// asks the target members, through Checker, whether they have applied a
// version, until enough have or the context ends. No gossip change is
// needed: a member has applied a version when it is at or below that
// origin's head and in none of its gaps or partials.
type Waiter struct {
	// Agent is the local node (its store and membership). Required.
	Agent *Agent
	// Checker asks other members. Required.
	Checker patina.AppliedChecker
	// MinPoll and MaxPoll bound the delay between rounds of questions; it
	// doubles from MinPoll. Defaults DefaultWaitMinPoll, DefaultWaitMaxPoll.
	MinPoll, MaxPoll time.Duration
}

// HasApplied reports whether this node has applied actor's version v.
func (w *Waiter) HasApplied(actor patina.ActorID, v patina.Version) bool {
	return hasApplied(w.Agent.Store.SyncState(), actor, v)
}

func hasApplied(st patina.SyncState, actor patina.ActorID, v patina.Version) bool {
	if v == 0 || st.Heads[actor] < v {
		return false
	}
	for _, r := range st.Gaps[actor] {
		if r.Contains(v) {
			return false
		}
	}
	_, partial := st.Partials[actor][v]
	return !partial
}

// WaitApplied implements patina.ApplyWaiter. The target set is fixed when
// the wait starts: the members alive or suspect then (of the writer's
// region for WaitTarget.Region), so a node that fails during the wait is
// reported missing rather than silently dropped.
func (w *Waiter) WaitApplied(ctx context.Context, actor patina.ActorID, v patina.Version, t patina.WaitTarget) error {
	a := w.Agent
	local := a.Membership.Local()
	var targets []patina.Member
	for _, m := range a.Membership.Members() {
		if m.State != patina.MemberAlive && m.State != patina.MemberSuspect || m.ClusterID != local.ClusterID || m.Actor == local.Actor {
			continue
		}
		if t.Region && m.Region != local.Region {
			continue
		}
		targets = append(targets, m)
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Name < targets[j].Name })
	need := len(targets) + 1
	if t.N > 0 {
		if t.N > need {
			return patina.Errorf(patina.EUNAVAILABLE, "version %d is committed here, but ?wait=%d asks for more nodes than the %d live members (this one included) this node knows; the write stays committed and will propagate; wait for fewer nodes", v, t.N, need)
		}
		need = t.N
	}
	have := 0
	if w.HasApplied(actor, v) {
		have = 1
	}
	done := make([]bool, len(targets))
	lastErr := make([]error, len(targets))
	minPoll, maxPoll := w.MinPoll, w.MaxPoll
	if minPoll <= 0 {
		minPoll = DefaultWaitMinPoll
	}
	if maxPoll <= 0 {
		maxPoll = DefaultWaitMaxPoll
	}
	start := time.Now()
	delay := minPoll
	for {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, m := range targets {
			if done[i] {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := w.Checker.HasApplied(ctx, m, actor, v)
				mu.Lock()
				done[i], lastErr[i] = ok, err
				mu.Unlock()
			}()
		}
		wg.Wait()
		if have == 0 && w.HasApplied(actor, v) {
			have = 1
		}
		n := have
		for _, d := range done {
			if d {
				n++
			}
		}
		if n >= need {
			return nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return w.missing(actor, v, t, targets, done, lastErr, n, need, time.Since(start))
		case <-timer.C:
		}
		delay = min(2*delay, maxPoll)
	}
}

// missing builds the timeout error naming the members without the version.
func (w *Waiter) missing(actor patina.ActorID, v patina.Version, t patina.WaitTarget, targets []patina.Member, done []bool, lastErr []error, n, need int, waited time.Duration) error {
	var names []string
	for i, m := range targets {
		if done[i] {
			continue
		}
		s := fmt.Sprintf("%s (actor %s, region %s, api %s)", m.Name, m.Actor, m.Region, m.APIAddr)
		if lastErr[i] != nil {
			s += fmt.Sprintf(" [unreachable: %v]", lastErr[i])
		}
		names = append(names, s)
	}
	return patina.Errorf(patina.ETIMEOUT, "?wait=%s timed out after %s: version %d of %s is committed on this node but only %d of the %d nodes needed have applied it; not applied yet on: %s. The write itself stays committed and keeps propagating; read from a node that has it, or retry with a longer ?timeout",
		t, waited.Round(time.Millisecond), v, actor, n, need, strings.Join(names, "; "))
}

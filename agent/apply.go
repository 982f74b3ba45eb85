package agent

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/crdt"
)

// applyLoop takes batches from the apply queue (round-robin across origins),
// applies them in one store transaction, forwards what was new while its TTL
// lasts, and logs poison changesets with origin, version and reason.
func (a *Agent) applyLoop() {
	defer a.wg.Done()
	for {
		a.progress.set(a.Now())
		select {
		case <-a.ctx.Done():
			return
		case <-a.q.wake:
		case <-time.After(time.Second):
			continue
		}
		for {
			items := a.q.take(a.ApplyBatch)
			if len(items) == 0 {
				break
			}
			a.applyBatch(items)
			a.progress.set(a.Now())
		}
	}
}

func (a *Agent) applyBatch(items []inbound) {
	css := make([]patina.Changeset, len(items))
	for i := range items {
		css[i] = items[i].cs
	}
	a.inflight.Store(int64(len(css)))
	res, err := a.Store.Apply(a.ctx, css)
	a.inflight.Store(0)
	if err != nil {
		if a.ctx.Err() == nil {
			a.Logger.Error("apply batch failed; the changes will be fetched again by sync", "changesets", len(css), "err", err)
		}
		for _, it := range items {
			a.q.forget(it)
		}
		return
	}
	if len(res.Outcomes) != len(items) {
		// A store that breaks its contract must not take the apply loop
		// down with it (INCIDENTS.md #5): treat the batch as not applied.
		a.Logger.Error("store returned a wrong number of apply outcomes; the batch will be fetched again by sync",
			"changesets", len(items), "outcomes", len(res.Outcomes))
		for _, it := range items {
			a.q.forget(it)
		}
		return
	}
	now := a.Now()
	var fresh []patina.Changeset
	behind := false
	for i, out := range res.Outcomes {
		it := items[i]
		switch out {
		case patina.ApplyNew, patina.ApplyBuffered:
			// Forwarding happened on receipt (HandleChangesets).
			if out == patina.ApplyNew {
				fresh = append(fresh, it.cs)
				if it.cs.TS != 0 {
					a.lag.add(now, now.Sub(crdt.ToTime(it.cs.TS)))
				}
			}
		case patina.ApplyRejected:
			a.q.forget(it)
			a.quarantined.Add(1)
			a.Logger.Error("rejected changeset (quarantined; this node keeps serving)", "origin", it.cs.Actor,
				"version", it.cs.Version, "table", changesetTable(&it.cs), "reason", applyError(res, i))
		}
	}
	st := a.Store.SyncState()
	if len(st.Gaps) > 0 || len(st.Partials) > 0 {
		behind = true
	}
	if behind {
		select {
		case a.syncNow <- struct{}{}:
		default:
		}
	}
	if a.OnApplied != nil && len(fresh) > 0 {
		a.OnApplied(fresh)
	}
}

// changesetTable names the table of a changeset for log lines ("" when it
// carries no change, "a,b" when it spans tables).
func changesetTable(cs *patina.Changeset) string {
	var tables []string
	for i := range cs.Changes {
		if t := cs.Changes[i].Table; !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
	}
	return strings.Join(tables, ",")
}

// applyError is the reason the store gave for rejecting css[i].
func applyError(res patina.ApplyResult, i int) error {
	if i < len(res.Errors) && res.Errors[i] != nil {
		return res.Errors[i]
	}
	return errors.New("the store gave no reason")
}

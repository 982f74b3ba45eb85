package agent

import (
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
	res, err := a.Store.Apply(a.ctx, css)
	if err != nil {
		if a.ctx.Err() == nil {
			a.Logger.Error("apply batch failed; the changes will be fetched again by sync", "changesets", len(css), "err", err)
		}
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
		case patina.ApplyNew, patina.ApplyBuffered, patina.ApplyDeferred:
			if !it.sync && it.ttl > 0 {
				a.Broadcaster.Forward(it.cs, it.from, it.ttl)
			}
			if out == patina.ApplyNew {
				fresh = append(fresh, it.cs)
				if it.cs.TS != 0 {
					a.lag.add(now, now.Sub(crdt.ToTime(it.cs.TS)))
				}
			}
		case patina.ApplyRejected:
			a.q.forget(it)
			table := ""
			if len(it.cs.Changes) > 0 {
				table = it.cs.Changes[0].Table
			}
			a.Logger.Error("rejected changeset (quarantined; this node keeps serving)", "origin", it.cs.Actor, "version", it.cs.Version, "table", table, "reason", res.Errors[i])
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

package pubsub

import (
	"context"
	"sort"
	"time"

	"github.com/patinadb/patina"
)

// Queues reports the service's bounded queues for the node's status and
// metrics: "subscription_changes" (changed keys waiting for a pass, bound
// MaxDirtyKeys per table, beyond which a table is re-run in full) and
// "subscription_clients" (client streams, bound MaxListeners; Dropped
// counts clients cut off for falling ListenerBuffer events behind).
func (s *Service) Queues() map[string]patina.QueueStatus {
	s.dmu.Lock()
	dirty := 0
	for _, dt := range s.dirty {
		dirty += len(dt.keys)
	}
	ntables := len(s.dirty)
	s.dmu.Unlock()
	s.mu.Lock()
	clients := s.nlisteners
	s.mu.Unlock()
	return map[string]patina.QueueStatus{
		"subscription_changes": {Len: dirty, Cap: s.MaxDirtyKeys * max(ntables, 1)},
		"subscription_clients": {Len: clients, Cap: s.MaxListeners, Dropped: s.cutoffs.Load()},
	}
}

// Subscriptions implements patina.SubscriptionService.
func (s *Service) Subscriptions(ctx context.Context) []patina.SubscriptionInfo {
	s.mu.Lock()
	subs := make([]*sub, 0, len(s.byID))
	for _, sb := range s.byID {
		subs = append(subs, sb)
	}
	s.mu.Unlock()
	out := make([]patina.SubscriptionInfo, 0, len(subs))
	for _, sb := range subs {
		out = append(out, sb.info())
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID
	})
	return out
}

// SubscriptionInfo implements patina.SubscriptionService.
func (s *Service) SubscriptionInfo(ctx context.Context, id string) (patina.SubscriptionInfo, error) {
	s.mu.Lock()
	sb := s.byID[id]
	s.mu.Unlock()
	if sb == nil {
		return patina.SubscriptionInfo{}, patina.Errorf(patina.ENOTFOUND, "no subscription %s on this agent; list them with GET /v1/subscriptions", id)
	}
	return sb.info(), nil
}

func (sb *sub) info() patina.SubscriptionInfo {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return patina.SubscriptionInfo{
		ID: sb.id, Hash: sb.hash, SQL: sb.stmt.SQL, Columns: sb.plan.columns, Tables: sb.plan.tables,
		Strategy: sb.plan.strategy.String(), Subscribers: len(sb.listeners), Rows: sb.nrows,
		LastChangeID: sb.lastChange, OldestChangeID: sb.oldest, CreatedAt: sb.created,
		Evaluations: sb.evals.Load(), EvalSeconds: time.Duration(sb.evalNanos.Load()).Seconds(),
	}
}

// restore re-creates the subscriptions kept in the change log; each is
// re-run in full by the first pass.
func (s *Service) restore() error {
	stored, err := s.log.load()
	if err != nil {
		return err
	}
	for _, ss := range stored {
		if ss.decodeErr != nil {
			s.Logger.Error("dropping a subscription whose stored parameters do not decode", logKeySub, ss.id, logKeyErr, ss.decodeErr)
			s.log.deleteSub(ss.n)
			continue
		}
		p, err := s.an.analyze(ss.stmt)
		if err != nil {
			s.Logger.Warn("dropping a stored subscription the current schema refuses", logKeySub, ss.id, logKeySQL, ss.stmt.SQL, logKeyErr, err)
			s.log.deleteSub(ss.n)
			continue
		}
		key := statementKey(ss.stmt)
		sb := &sub{svc: s, n: ss.n, id: ss.id, hash: ss.hash, key: key, stmt: ss.stmt, plan: p, created: ss.created,
			ready: make(chan struct{}), rows: map[string][]*row{}, listeners: map[*listener]struct{}{},
			lastRowID: ss.lastRowID, lastChange: ss.lastChange, oldest: ss.oldest, idleSince: s.Now()}
		close(sb.ready)
		for _, r := range ss.rows {
			sb.rows[r.key] = append(sb.rows[r.key], r)
		}
		sb.nrows = len(ss.rows)
		if p.nhidden == 0 {
			// Content keys are the cells; a plan that changed strategy
			// since (schema change) is re-keyed by the first pass's diff.
			sb.rekey()
		}
		s.register(sb)
		s.markSub(sb)
	}
	return nil
}

// rekey keys rows by content (for plans without identity columns).
func (sb *sub) rekey() {
	rows := sb.rows
	sb.rows = map[string][]*row{}
	for _, rs := range rows {
		for _, r := range rs {
			r.key = r.cells
			sb.rows[r.key] = append(sb.rows[r.key], r)
		}
	}
}

package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/patinadb/patina"
)

// errEvalTimeout is the cause the watchdog cancels a pass with.
var errEvalTimeout = errors.New("evaluation timed out")

// watchdog interrupts a pass whose current evaluation has run longer than
// EvalTimeout; one goroutine for the service instead of a timer per
// evaluation (which cost as much as a small query).
func (s *Service) watchdog() {
	t := time.NewTicker(min(s.EvalTimeout/10, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if start := s.evalStart.Load(); start != 0 && now.UnixNano()-start > int64(s.EvalTimeout) {
				if c := s.passCancel.Load(); c != nil {
					(*c)(errEvalTimeout)
				}
			}
		}
	}
}

// loop runs passes whenever something changed, and housekeeping.
func (s *Service) loop() {
	every := min(s.IdleTimeout/4, s.MaxAge/4, 30*time.Second)
	tick := time.NewTicker(max(every, time.Second))
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-retry:
			retry = nil
		case <-tick.C:
			s.housekeep()
			continue
		}
		if err := s.pass(); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.Logger.Error("subscriptions pass failed; retrying in 1s", logKeyErr, err)
			retry = time.After(time.Second)
		}
	}
}

// work is one subscription's evaluation in a pass.
type work struct {
	sb   *sub
	keys map[string]bool // stratPK: the changed keys to re-run; nil = in full
}

// pass re-evaluates what changed: it decides which subscriptions a change
// can affect, re-runs them (restricted to the changed keys when the
// strategy allows), diffs against their materialized rows, writes every
// change to the log in one transaction, then updates the rows and streams
// the changes.
func (s *Service) pass() error {
	d := s.takeDirty()
	if len(d.tables) == 0 && len(d.subs) == 0 && !d.all {
		return nil
	}
	s.mu.Lock()
	var temps []*tableIndex
	var names []string
	for t := range d.tables {
		if ti := s.idx[t]; ti != nil && ti.keys > 0 {
			temps, names = append(temps, ti), append(names, t)
		}
	}
	ncols := make([]int, len(temps))
	for i, ti := range temps {
		ncols[i] = ti.keys
	}
	s.mu.Unlock()
	for i, t := range names {
		if err := s.ev.ensureTemp(s.tempName(t), ncols[i]); err != nil {
			s.requeue(d)
			return fmt.Errorf("create temp key table for %s: %w", t, err)
		}
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	s.passCancel.Store(&cancel)
	defer s.passCancel.Store(nil)
	old := s.ev.conn.SetInterrupt(ctx)
	defer s.ev.conn.SetInterrupt(old)
	if err := s.ev.begin(); err != nil {
		s.requeue(d)
		return fmt.Errorf("begin read transaction: %w", err)
	}
	commits, err := s.evaluate(ctx, d)
	s.ev.end()
	if err != nil {
		s.requeue(d)
		return err
	}
	if len(commits) == 0 {
		return nil
	}
	if err := s.log.persist(commits, s.Now()); err != nil {
		for _, c := range commits {
			s.markSub(c.sb)
		}
		return fmt.Errorf("write the subscriptions change log: %w", err)
	}
	s.applyCommits(commits)
	return nil
}

// evaluate runs a pass's queries inside the read transaction.
func (s *Service) evaluate(ctx context.Context, d dirtySet) ([]*commit, error) {
	works := map[*sub]*work{}
	full := func(sb *sub) { works[sb] = &work{sb: sb} }
	s.mu.Lock()
	if d.all {
		for _, sb := range s.byID {
			full(sb)
		}
	}
	for sb := range d.subs {
		if s.byID[sb.id] == sb {
			full(sb)
		}
	}
	type keyedTable struct {
		name string
		ti   *tableIndex
		dt   *dirtyTable
	}
	var keyed []keyedTable
	for t, dt := range d.tables {
		ti := s.idx[t]
		if ti == nil {
			continue
		}
		for sb := range ti.full {
			if dt.all || interested(sb.plan.reads[t], dt) {
				full(sb)
			}
		}
		if dt.all {
			for sb := range ti.unindexed {
				full(sb)
			}
			for sb := range ti.filtered {
				full(sb)
			}
			for _, byVal := range ti.eq {
				for _, subs := range byVal {
					for sb := range subs {
						full(sb)
					}
				}
			}
			continue
		}
		if len(ti.unindexed) > 0 || len(ti.filtered) > 0 || len(ti.eq) > 0 || len(ti.rev) > 0 {
			keyed = append(keyed, keyedTable{t, ti, dt})
		}
	}
	s.mu.Unlock()

	for _, kt := range keyed {
		if err := s.candidates(kt.name, kt.ti, kt.dt, works); err != nil {
			return nil, err
		}
	}

	var commits []*commit
	order := make([]*work, 0, len(works))
	for _, w := range works {
		order = append(order, w)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].sb.n < order[j].sb.n })
	for _, w := range order {
		c, err := s.evalSub(ctx, w)
		if err != nil {
			if s.ctx.Err() != nil {
				return nil, err
			}
			s.fail(w.sb, err)
			if ctx.Err() != nil {
				// The watchdog interrupted the connection: give the rest
				// of the work back to the next pass.
				return nil, fmt.Errorf("pass interrupted: %w", err)
			}
			if s.ev.conn.GetAutocommit() {
				// The interrupt rolled the read transaction back (and the
				// temp keys with it): give the work back, start over.
				return nil, fmt.Errorf("read transaction ended early: %w", err)
			}
			continue
		}
		if c != nil {
			commits = append(commits, c)
		}
	}
	return commits, nil
}

// evalSub re-runs one subscription and diffs the result; nil when nothing
// changed.
func (s *Service) evalSub(passCtx context.Context, w *work) (*commit, error) {
	sb := w.sb
	p := sb.plan
	start := time.Now()
	s.evalStart.Store(start.UnixNano())
	next := &commit{sb: sb, lastChange: sb.lastChange, lastRowID: sb.lastRowID}
	var err error
	if w.keys != nil {
		res := map[string]string{}
		err = s.ev.query(nil, p.restrictSQL, sb.stmt, p.nhidden, func(key, cells string) { res[key] = cells })
		if err == nil {
			diffKeys(sb, w.keys, res, next)
		}
	} else {
		var got []keyCells
		err = s.ev.query(nil, p.fullSQL, sb.stmt, p.nhidden, func(key, cells string) { got = append(got, keyCells{key, cells}) })
		if err == nil {
			diffFull(sb, got, next)
		}
	}
	s.evalStart.Store(0)
	sb.evals.Add(1)
	sb.evalNanos.Add(int64(time.Since(start)))
	if err != nil {
		if errors.Is(context.Cause(passCtx), errEvalTimeout) {
			return nil, patina.Errorf(patina.ETIMEOUT, "subscription %s: re-evaluating its query took longer than %s (the limit for every evaluation); the subscription was removed: subscribe again with a narrower query (a WHERE clause, an index)", sb.id, s.EvalTimeout)
		}
		return nil, patina.Errorf(patina.EINTERNAL, "subscription %s: re-evaluating its query failed (%v); the subscription was removed: subscribe again", sb.id, err)
	}
	if len(next.changes) == 0 {
		return nil, nil
	}
	if next.lastChange > uint64(s.MaxChanges) {
		next.trimBelow = next.lastChange - uint64(s.MaxChanges)
	}
	return next, nil
}

type keyCells struct{ key, cells string }

func (c *commit) add(kind patina.ChangeKind, rowid int64, key, cells string, old *row) {
	c.lastChange++
	c.changes = append(c.changes, change{id: c.lastChange, kind: kind, rowid: rowid, key: key, cells: cells, old: old})
}

// diffKeys compares the restricted result for the changed keys with the
// rows held: deletes first (in row id order), then inserts and updates.
func diffKeys(sb *sub, keys map[string]bool, res map[string]string, c *commit) {
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var dels []*row
	for _, k := range sorted {
		if rs := sb.rows[k]; len(rs) > 0 {
			if _, ok := res[k]; !ok {
				dels = append(dels, rs...)
			}
		}
	}
	sort.Slice(dels, func(i, j int) bool { return dels[i].id < dels[j].id })
	for _, r := range dels {
		c.add(patina.ChangeDelete, r.id, r.key, r.cells, r)
	}
	for _, k := range sorted {
		cells, ok := res[k]
		if !ok {
			continue
		}
		if rs := sb.rows[k]; len(rs) > 0 {
			if rs[0].cells != cells {
				c.add(patina.ChangeUpdate, rs[0].id, k, cells, rs[0])
			}
			continue
		}
		c.lastRowID++
		c.add(patina.ChangeInsert, c.lastRowID, k, cells, nil)
	}
}

// diffFull compares a full result with the rows held, by identity key with
// multiplicity: rows whose key is gone (or fewer) are deleted first, then
// in result order rows are updated or inserted.
func diffFull(sb *sub, got []keyCells, c *commit) {
	newCount := make(map[string]int, len(got))
	for _, kc := range got {
		newCount[kc.key]++
	}
	var dels []*row
	for k, rs := range sb.rows {
		if extra := len(rs) - newCount[k]; extra > 0 {
			dels = append(dels, rs[len(rs)-extra:]...)
		}
	}
	sort.Slice(dels, func(i, j int) bool { return dels[i].id < dels[j].id })
	for _, r := range dels {
		c.add(patina.ChangeDelete, r.id, r.key, r.cells, r)
	}
	used := make(map[string]int, len(got))
	for _, kc := range got {
		i := used[kc.key]
		used[kc.key]++
		if rs := sb.rows[kc.key]; i < len(rs) {
			if rs[i].cells != kc.cells {
				c.add(patina.ChangeUpdate, rs[i].id, kc.key, kc.cells, rs[i])
			}
			continue
		}
		c.lastRowID++
		c.add(patina.ChangeInsert, c.lastRowID, kc.key, kc.cells, nil)
	}
}

// applyCommits updates the materialized rows of the subscriptions a pass
// changed (their changes are in the log) and streams the changes.
func (s *Service) applyCommits(commits []*commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range commits {
		sb := c.sb
		var ti *tableIndex
		if sb.plan.strategy == stratPK {
			ti = s.idx[sb.plan.tables[0]]
		}
		sb.mu.Lock()
		for i := range c.changes {
			ch := &c.changes[i]
			switch ch.kind {
			case patina.ChangeInsert:
				r := &row{id: ch.rowid, key: ch.key, cells: ch.cells}
				sb.rows[ch.key] = append(sb.rows[ch.key], r)
				sb.nrows++
				if ti != nil {
					ti.addRev(ch.key, sb)
				}
			case patina.ChangeUpdate:
				ch.old.cells = ch.cells
			case patina.ChangeDelete:
				rs := sb.rows[ch.key]
				for j, r := range rs {
					if r == ch.old {
						rs = append(rs[:j], rs[j+1:]...)
						break
					}
				}
				if len(rs) == 0 {
					delete(sb.rows, ch.key)
					if ti != nil {
						ti.delRev(ch.key, sb)
					}
				} else {
					sb.rows[ch.key] = rs
				}
				sb.nrows--
			}
			if len(sb.listeners) > 0 {
				ev := patina.Event{Kind: patina.EventChange, Change: ch.kind, RowID: ch.rowid, Cells: mustDecode(ch.cells), ChangeID: ch.id}
				for l := range sb.listeners {
					l.push(ev)
				}
			}
		}
		sb.lastChange, sb.lastRowID = c.lastChange, c.lastRowID
		if sb.oldest == 0 {
			sb.oldest = 1
		}
		if c.trimBelow+1 > sb.oldest {
			sb.oldest = c.trimBelow + 1
		}
		sb.mu.Unlock()
	}
}

// fail removes a subscription whose evaluation failed.
func (s *Service) fail(sb *sub, err error) {
	s.Logger.Error("subscription failed and was removed", logKeySub, sb.id, logKeySQL, sb.stmt.SQL, logKeyErr, err)
	s.unregister(sb, err)
}

// housekeep expires idle subscriptions and old changes.
func (s *Service) housekeep() {
	now := s.Now()
	var idle []*sub
	s.mu.Lock()
	for _, sb := range s.byID {
		sb.mu.Lock()
		if len(sb.listeners) == 0 && !sb.idleSince.IsZero() && now.Sub(sb.idleSince) >= s.IdleTimeout {
			idle = append(idle, sb)
		}
		sb.mu.Unlock()
	}
	s.mu.Unlock()
	for _, sb := range idle {
		s.unregister(sb, patina.Errorf(patina.ENOTFOUND, "subscription %s expired after %s without clients; subscribe again", sb.id, s.IdleTimeout))
	}
	oldest, err := s.log.trimAge(now.Add(-s.MaxAge))
	if err != nil {
		s.Logger.Error("trim old subscription changes", logKeyErr, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sb := range s.byID {
		sb.mu.Lock()
		o, ok := oldest[sb.n]
		if !ok {
			o = sb.lastChange + 1
		}
		if o > sb.oldest {
			sb.oldest = o
		}
		sb.mu.Unlock()
	}
}

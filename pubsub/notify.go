package pubsub

import (
	"github.com/patinadb/patina"
)

// Notify is the agent's OnApplied hook: it records which rows of which
// tables the changesets touched and wakes the evaluation loop. It never
// blocks on evaluation or on clients (the apply path calls it).
func (s *Service) Notify(css []patina.Changeset) {
	if s.closed.Load() || s.wake == nil {
		return
	}
	watched := *s.watched.Load()
	woke := false
	var notes *noteBatch
	if s.upd.active.Load() > 0 {
		notes = &noteBatch{}
		defer s.upd.note(notes)
	}
	s.dmu.Lock()
	for i := range css {
		cs := &css[i]
		if cs.Cleared {
			continue
		}
		if !(cs.Seqs.Start == 0 && cs.Seqs.End == cs.LastSeq) {
			// The last chunk of a version assembled from chunks: the
			// earlier chunks' changes are not listed here, so re-run
			// everything (large transactions only).
			s.dirtyAll, woke = true, true
		}
		for j := range cs.Changes {
			c := &cs.Changes[j]
			t := lowerTable(c.Table)
			if notes != nil {
				notes.add(t, c.PK, c.CL)
			}
			if !watched[t] {
				continue
			}
			woke = true
			dt := s.dirty[t]
			if dt == nil {
				dt = &dirtyTable{keys: map[string]*dirtyKey{}}
				s.dirty[t] = dt
			}
			if dt.all {
				continue
			}
			dk := dt.keys[string(c.PK)]
			if dk == nil {
				if len(dt.keys) >= s.MaxDirtyKeys {
					dt.all, dt.keys = true, nil
					continue
				}
				dk = &dirtyKey{}
				dt.keys[string(c.PK)] = dk
			}
			if c.Column == patina.SentinelColumn {
				dk.sentinel = true
			} else if len(dk.cols) < 64 {
				dk.cols = append(dk.cols, c.Column)
			} else {
				dk.sentinel = true // too many to list: treat as any column
			}
		}
	}
	s.dmu.Unlock()
	if woke {
		s.signal()
	}
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// markSub asks the loop to re-run one subscription in full.
func (s *Service) markSub(sb *sub) {
	s.dmu.Lock()
	s.dirtySubs[sb] = true
	s.dmu.Unlock()
	s.signal()
}

// dirtySet is one pass's work.
type dirtySet struct {
	tables map[string]*dirtyTable
	subs   map[*sub]bool
	all    bool
}

func (s *Service) takeDirty() dirtySet {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	d := dirtySet{tables: s.dirty, subs: s.dirtySubs, all: s.dirtyAll}
	s.dirty, s.dirtySubs, s.dirtyAll = map[string]*dirtyTable{}, map[*sub]bool{}, false
	return d
}

// requeue gives a pass's work back (the pass could not finish).
func (s *Service) requeue(d dirtySet) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if d.all {
		s.dirtyAll = true
	}
	for sb := range d.subs {
		s.dirtySubs[sb] = true
	}
	for t, dt := range d.tables {
		cur := s.dirty[t]
		if cur == nil {
			s.dirty[t] = dt
			continue
		}
		if dt.all || cur.all {
			cur.all, cur.keys = true, nil
			continue
		}
		for k, dk := range dt.keys {
			if c := cur.keys[k]; c != nil {
				c.sentinel = c.sentinel || dk.sentinel
				c.cols = append(c.cols, dk.cols...)
			} else {
				cur.keys[k] = dk
			}
		}
	}
}

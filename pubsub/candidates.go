package pubsub

import (
	"fmt"
	"sort"
	"strings"

	"github.com/patinadb/patina"
)

// interested reports whether changes to dt touch a column the
// subscription reads (cols nil: any column).
func interested(cols map[string]bool, dt *dirtyTable) bool {
	if cols == nil {
		return true
	}
	for _, dk := range dt.keys {
		if keyTouches(cols, dk) {
			return true
		}
	}
	return false
}

func keyTouches(cols map[string]bool, dk *dirtyKey) bool {
	if cols == nil || dk.sentinel {
		return true
	}
	for _, c := range dk.cols {
		if cols[strings.ToLower(c)] {
			return true
		}
	}
	return false
}

// candidates finds the primary-key subscriptions a table's changed keys
// may affect, mostly without SQL: those holding one of the rows; those
// whose `column = constant` condition the row's new value meets (an index
// on the value); those whose comparisons the new value passes (checked in
// Go); and those with no condition to check. It fills the table's temp key
// table for their restricted runs.
func (s *Service) candidates(t string, ti *tableIndex, dt *dirtyTable, works map[*sub]*work) error {
	keys := make([][]patina.Value, 0, len(dt.keys))
	byEnc := make(map[string]*dirtyKey, len(dt.keys))
	for k, dk := range dt.keys {
		vals, err := patina.UnpackPK([]byte(k))
		if err != nil {
			continue // the store rejects such keys; nothing to evaluate
		}
		keys = append(keys, vals)
		byEnc[encodeValues(vals)] = dk
	}
	if len(keys) == 0 {
		return nil
	}
	s.mu.Lock()
	ncols := ti.keys
	cols := make([]string, 0, len(ti.cols))
	for c := range ti.cols {
		cols = append(cols, c)
	}
	s.mu.Unlock()
	sort.Strings(cols)
	temp := s.tempName(t)
	if err := s.ev.fillKeys(temp, keys, ncols); err != nil {
		return fmt.Errorf("fill changed keys of %s: %w", t, err)
	}
	// The new values of the columns the index reads, of the changed rows
	// that exist.
	type newRow struct {
		key  string
		vals map[string]patina.Value
	}
	var fetched []newRow
	blind := false // the columns could not be read: every subscription is a candidate
	if len(cols) > 0 {
		s.initMu.Lock()
		tinfo := s.an.tables[t]
		s.initMu.Unlock()
		if tinfo == nil || len(tinfo.pk) != ncols {
			blind = true
		} else {
			var kc, pkc, sel []string
			for i, k := range tinfo.pk {
				kc = append(kc, keysAlias+"."+keyColumn(i))
				pkc = append(pkc, `"__pubsub_t".`+quoteIdent(k))
			}
			sel = append(sel, pkc...)
			for _, c := range cols {
				sel = append(sel, `"__pubsub_t".`+quoteIdent(c))
			}
			sql := fmt.Sprintf(`SELECT %s FROM temp.%s AS %s CROSS JOIN main.%s AS "__pubsub_t" WHERE (%s) = (%s)`,
				strings.Join(sel, ", "), quoteIdent(temp), keysAlias, quoteIdent(tinfo.name), strings.Join(pkc, ", "), strings.Join(kc, ", "))
			stmt, err := s.ev.prepare(sql)
			if err != nil {
				blind = true // a column went away: be safe
			} else {
				npk := len(tinfo.pk)
				for stmt.Step() {
					r := newRow{key: string(appendColumns(nil, stmt, 0, npk)), vals: make(map[string]patina.Value, len(cols))}
					for i, c := range cols {
						r.vals[c] = columnValue(stmt, npk+i)
					}
					fetched = append(fetched, r)
				}
				err = stmt.Err()
				stmt.Reset()
				if err != nil {
					s.ev.forget(sql)
					return fmt.Errorf("read changed rows of %s: %w", t, err)
				}
			}
		}
	}
	add := func(sb *sub, k string, dk *dirtyKey) {
		if !keyTouches(sb.plan.reads[t], dk) {
			return
		}
		w := works[sb]
		if w == nil {
			w = &work{sb: sb, keys: map[string]bool{}}
			works[sb] = w
		}
		if w.keys != nil {
			w.keys[k] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, dk := range byEnc {
		for sb := range ti.unindexed {
			add(sb, k, dk)
		}
		for sb := range ti.rev[k] {
			add(sb, k, dk)
		}
		if blind {
			for sb := range ti.filtered {
				add(sb, k, dk)
			}
			for _, byVal := range ti.eq {
				for _, subs := range byVal {
					for sb := range subs {
						add(sb, k, dk)
					}
				}
			}
		}
	}
	for _, r := range fetched {
		dk := byEnc[r.key]
		if dk == nil {
			continue
		}
		for c, byVal := range ti.eq {
			if v, ok := r.vals[c]; ok {
				for sb := range byVal[normKey(v)] {
					add(sb, r.key, dk)
				}
			}
		}
		for sb := range ti.filtered {
			if condsHold(sb.plan.conds, r.vals) {
				add(sb, r.key, dk)
			}
		}
	}
	return nil
}

// condsHold reports whether a row's values pass every condition.
func condsHold(conds []cmpCond, vals map[string]patina.Value) bool {
	for _, c := range conds {
		v, ok := vals[c.col]
		if !ok {
			return true // not read: cannot rule the row out
		}
		if !c.holds(v) {
			return false
		}
	}
	return true
}

func qualify(q string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = q + "." + c
	}
	return out
}

package antientropy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// actor returns the test actor named by one lowercase letter.
func actor(name byte) patina.ActorID { return patina.ActorID{name} }

// actorName prints a test actor as its letter.
func actorName(a patina.ActorID) string {
	if a[0] >= 'a' && a[0] <= 'z' && a == (patina.ActorID{a[0]}) {
		return string(a[0])
	}
	return a.String()
}

// parseRanges parses "2-3+5+7-9" into ranges.
func parseRanges(s string) ([]patina.Range, error) {
	var rs []patina.Range
	for _, part := range strings.Split(s, "+") {
		lo, hi, found := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse range %q: %w", part, err)
		}
		b := a
		if found {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil {
				return nil, fmt.Errorf("parse range %q: %w", part, err)
			}
		}
		rs = append(rs, patina.Range{Start: a, End: b})
	}
	return rs, nil
}

// parseState parses a state written as space-separated fields:
//
//	actor=a heads=b:5,c:3 gaps=b:2-3+5,c:1 partials=b:4@0-1+3/5
//
// where a partial is actor:version@have/lastSeq.
func parseState(s string) (patina.SyncState, error) {
	st := patina.SyncState{
		Heads:    map[patina.ActorID]patina.Version{},
		Gaps:     map[patina.ActorID][]patina.Range{},
		Partials: map[patina.ActorID]map[patina.Version]patina.Partial{},
	}
	for _, f := range strings.Fields(s) {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return st, fmt.Errorf("parse state field %q: want key=value", f)
		}
		if key == "actor" {
			st.Actor = actor(val[0])
			continue
		}
		for _, item := range strings.Split(val, ",") {
			name, rest, ok := strings.Cut(item, ":")
			if !ok || len(name) != 1 {
				return st, fmt.Errorf("parse %s item %q: want letter:value", key, item)
			}
			a := actor(name[0])
			switch key {
			case "heads":
				h, err := strconv.ParseUint(rest, 10, 64)
				if err != nil {
					return st, err
				}
				st.Heads[a] = h
			case "gaps":
				rs, err := parseRanges(rest)
				if err != nil {
					return st, err
				}
				st.Gaps[a] = append(st.Gaps[a], rs...)
			case "partials":
				vs, rest, ok1 := strings.Cut(rest, "@")
				have, last, ok2 := strings.Cut(rest, "/")
				if !ok1 || !ok2 {
					return st, fmt.Errorf("parse partial %q: want letter:version@have/lastseq", item)
				}
				v, err := strconv.ParseUint(vs, 10, 64)
				if err != nil {
					return st, err
				}
				l, err := strconv.ParseUint(last, 10, 64)
				if err != nil {
					return st, err
				}
				rs, err := parseRanges(have)
				if err != nil {
					return st, err
				}
				if st.Partials[a] == nil {
					st.Partials[a] = map[patina.Version]patina.Partial{}
				}
				st.Partials[a][v] = patina.Partial{Have: rs, LastSeq: l}
			default:
				return st, fmt.Errorf("parse state: unknown field %q", key)
			}
		}
	}
	return st, nil
}

// MustState parses a state for a test.
func MustState(tb testing.TB, s string) patina.SyncState {
	tb.Helper()
	st, err := parseState(s)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func fmtRanges(rs []patina.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// fmtNeed prints "b:6..=10" for a full need and "b:4[2..=3,5..=5]" for a
// partial one.
func fmtNeed(n patina.Need) string {
	if n.IsPartial() {
		return fmt.Sprintf("%s:%d[%s]", actorName(n.Actor), n.Versions.Start, fmtRanges(n.Seqs))
	}
	return fmt.Sprintf("%s:%s", actorName(n.Actor), n.Versions)
}

func fmtNeeds(ns []patina.Need) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmtNeed(n)
	}
	return strings.Join(parts, " ")
}

// fmtOutstanding prints an Outstanding map as "b:3 c:1", sorted by actor.
func fmtOutstanding(m map[patina.ActorID]uint64) string {
	as := make([]patina.ActorID, 0, len(m))
	for a := range m {
		as = append(as, a)
	}
	sortActors(as)
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%s:%d", actorName(a), m[a])
	}
	return strings.Join(parts, " ")
}

// seqRand is a Rand returning scripted values in turn (modulo n), then 0.
type seqRand struct{ vals []int64 }

func (r *seqRand) Int64N(n int64) int64 {
	if len(r.vals) == 0 {
		return 0
	}
	v := r.vals[0]
	r.vals = r.vals[1:]
	return v % n
}

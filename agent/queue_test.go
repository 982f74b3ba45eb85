package agent

import (
	"fmt"
	"testing"

	"github.com/patinadb/patina"
)

func actor(b byte) patina.ActorID { return patina.ActorID{b} }

func item(origin byte, v patina.Version) inbound {
	return inbound{cs: patina.Changeset{Actor: actor(origin), Version: v}, from: actor(origin), ttl: 1}
}

func TestApplyQueue_Fairness(t *testing.T) {
	t.Run("noisy origin does not delay another beyond one turn", func(t *testing.T) {
		q := newApplyQueue(20000)
		for v := 1; v <= 10000; v++ {
			if !q.push(item(1, patina.Version(v))) {
				t.Fatalf("push noisy v%d refused", v)
			}
		}
		// The quiet origin's single item arrives behind 10,000 others.
		if !q.push(item(2, 1)) {
			t.Fatal("push quiet refused")
		}
		var got []inbound
		for range 2 { // one round-robin turn: at most one noisy item first
			got = append(got, q.take(1)...)
		}
		found := false
		for _, it := range got {
			if it.cs.Actor == actor(2) {
				found = true
			}
		}
		if !found {
			t.Fatalf("quiet origin not served within one round-robin turn; got %v", versions(got))
		}
	})
	t.Run("batch interleaves origins", func(t *testing.T) {
		q := newApplyQueue(100)
		for v := 1; v <= 10; v++ {
			q.push(item(1, patina.Version(v)))
		}
		q.push(item(2, 1))
		q.push(item(3, 1))
		got := q.take(3)
		seen := map[patina.ActorID]bool{}
		for _, it := range got {
			seen[it.cs.Actor] = true
		}
		if len(seen) != 3 {
			t.Fatalf("take(3) with three origins queued served %d origins: %v", len(seen), versions(got))
		}
	})
	t.Run("per origin order is kept", func(t *testing.T) {
		q := newApplyQueue(100)
		for v := 1; v <= 5; v++ {
			q.push(item(1, patina.Version(v)))
			q.push(item(2, patina.Version(v)))
		}
		last := map[patina.ActorID]patina.Version{}
		for it := q.take(100); len(it) > 0; it = q.take(100) {
			for _, x := range it {
				if x.cs.Version <= last[x.cs.Actor] {
					t.Fatalf("origin %x: v%d after v%d", x.cs.Actor[0], x.cs.Version, last[x.cs.Actor])
				}
				last[x.cs.Actor] = x.cs.Version
			}
		}
		if last[actor(1)] != 5 || last[actor(2)] != 5 {
			t.Fatalf("drained %v, want v5 of both", last)
		}
	})
}

func TestApplyQueue_Bound(t *testing.T) {
	q := newApplyQueue(10)
	for v := 1; v <= 8; v++ {
		q.push(item(1, patina.Version(v)))
	}
	q.push(item(2, 1))
	q.push(item(2, 2))
	if st := q.status(); st.Len != 10 || st.Cap != 10 || st.Dropped != 0 {
		t.Fatalf("full queue status = %+v, want Len 10 Cap 10 Dropped 0", st)
	}
	q.push(item(3, 1)) // over the bound: the oldest item of the longest FIFO goes
	if st := q.status(); st.Len != 10 || st.Dropped != 1 {
		t.Fatalf("after overflow status = %+v, want Len 10 Dropped 1", st)
	}
	got := map[patina.ActorID][]patina.Version{}
	for _, it := range q.take(100) {
		got[it.cs.Actor] = append(got[it.cs.Actor], it.cs.Version)
	}
	if a := got[actor(1)]; len(a) != 7 || a[0] != 2 {
		t.Fatalf("noisy origin kept %v, want v2..v8 (v1, its oldest, dropped)", a)
	}
	if b := got[actor(2)]; len(b) != 2 {
		t.Fatalf("quiet origin kept %v, want both", b)
	}
	if c := got[actor(3)]; len(c) != 1 {
		t.Fatalf("newcomer kept %v, want its item", c)
	}
	// The dropped item was forgotten: sync or a later broadcast may bring it.
	if !q.push(item(1, 1)) {
		t.Fatal("dropped item refused as a duplicate; it must be accepted again")
	}
}

func TestApplyQueue_Duplicates(t *testing.T) {
	q := newApplyQueue(10)
	it := item(1, 7)
	if !q.push(it) {
		t.Fatal("first push refused")
	}
	if q.push(it) {
		t.Fatal("duplicate accepted while queued")
	}
	q.take(10)
	if q.push(it) {
		t.Fatal("duplicate accepted after it was taken (applied)")
	}
	t.Run("other chunk or cleared is not a duplicate", func(t *testing.T) {
		chunk := it
		chunk.cs.Seqs = patina.Range{Start: 10, End: 19}
		if !q.push(chunk) {
			t.Fatal("second chunk of the same version refused")
		}
		cl := it
		cl.cs.Cleared, cl.cs.ClearedTo = true, 7
		if !q.push(cl) {
			t.Fatal("cleared marker of the same version refused")
		}
	})
	t.Run("forget", func(t *testing.T) {
		q.forget(it)
		if !q.push(it) {
			t.Fatal("forgotten item refused")
		}
	})
	t.Run("seen set is bounded", func(t *testing.T) {
		q := newApplyQueue(2)
		for v := 1; v <= 1000; v++ {
			q.push(item(1, patina.Version(v)))
			q.take(2)
		}
		if len(q.seen) > len(q.seenRing) {
			t.Fatalf("seen holds %d keys, ring is %d", len(q.seen), len(q.seenRing))
		}
	})
}

func versions(its []inbound) []string {
	var out []string
	for _, it := range its {
		out = append(out, fmt.Sprintf("%x/v%d", it.cs.Actor[0], it.cs.Version))
	}
	return out
}

package gossip

import (
	"fmt"
	"testing"

	"github.com/patinadb/patina"
)

// set is a complete changeset of origin writing the given cells ("row/col").
func set(origin byte, v patina.Version, cells ...string) patina.Changeset {
	cs := patina.Changeset{Actor: patina.ActorID{origin}, Version: v, LastSeq: patina.Seq(max(len(cells)-1, 0))}
	cs.Seqs = patina.Range{Start: 0, End: cs.LastSeq}
	for i, c := range cells {
		var row, col string
		fmt.Sscanf(c, "%1s/%s", &row, &col)
		cs.Changes = append(cs.Changes, patina.Change{Table: "t", PK: []byte(row), Column: col, Value: patina.Int(int64(v)), Seq: patina.Seq(i)})
	}
	return cs
}

func newQueue(max int) *broadcastQueue { return newBroadcastQueue(max, make(chan struct{}, 1)) }

func takeAll(q *broadcastQueue) []*queued {
	items, _ := q.take()
	return items
}

func describe(items []*queued) []string {
	var out []string
	for _, it := range items {
		switch {
		case it.cs.Cleared:
			out = append(out, fmt.Sprintf("%x:v%d..=%d cleared", it.cs.Actor[0], it.cs.Version, it.cs.ClearedTo))
		default:
			out = append(out, fmt.Sprintf("%x:v%d %d cells", it.cs.Actor[0], it.cs.Version, len(it.cs.Changes)))
		}
	}
	return out
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestBroadcastQueue_Coalescing(t *testing.T) {
	local := patina.ActorID{1}
	t.Run("later version rewriting every cell clears the earlier", func(t *testing.T) {
		q := newQueue(100)
		q.push(&queued{cs: set(1, 1, "a/x", "b/x"), from: local, ttl: 2})
		q.push(&queued{cs: set(1, 2, "a/x", "b/x", "c/x"), from: local, ttl: 2})
		got := describe(takeAll(q))
		if want := []string{"1:v1..=1 cleared", "1:v2 3 cells"}; !equal(got, want) {
			t.Fatalf("queue = %v, want %v", got, want)
		}
	})
	t.Run("cleared marker keeps identity and timestamp", func(t *testing.T) {
		q := newQueue(100)
		first := set(1, 7, "a/x")
		first.TS = 99
		q.push(&queued{cs: first, from: local, ttl: 2})
		q.push(&queued{cs: set(1, 8, "a/x"), from: local, ttl: 2})
		it := takeAll(q)[0]
		if !it.cs.Cleared || it.cs.Actor != first.Actor || it.cs.Version != 7 || it.cs.ClearedTo != 7 || it.cs.TS != 99 || len(it.cs.Changes) != 0 {
			t.Fatalf("cleared marker = %+v", it.cs)
		}
	})
	t.Run("partially superseded stays", func(t *testing.T) {
		q := newQueue(100)
		q.push(&queued{cs: set(1, 1, "a/x", "b/x"), from: local, ttl: 2})
		q.push(&queued{cs: set(1, 2, "a/x"), from: local, ttl: 2})
		items := takeAll(q)
		if len(items) != 2 || items[0].cs.Cleared || items[0].cs.Version != 1 {
			t.Fatalf("queue = %v, want v1 kept (b/x is still live) then v2", describe(items))
		}
		kept := false
		for _, c := range items[0].cs.Changes {
			if string(c.PK) == "b" {
				kept = true
			}
		}
		if !kept {
			t.Fatalf("v1 lost its live cell b/x: %+v", items[0].cs.Changes)
		}
	})
	t.Run("different origins never coalesce", func(t *testing.T) {
		q := newQueue(100)
		q.push(&queued{cs: set(2, 1, "a/x"), from: patina.ActorID{2}, ttl: 1})
		q.push(&queued{cs: set(3, 5, "a/x"), from: patina.ActorID{3}, ttl: 1})
		q.push(&queued{cs: set(1, 9, "a/x"), from: local, ttl: 2})
		got := describe(takeAll(q))
		if want := []string{"2:v1 1 cells", "3:v5 1 cells", "1:v9 1 cells"}; !equal(got, want) {
			t.Fatalf("queue = %v, want %v", got, want)
		}
	})
	t.Run("an older version arriving late does not clear a newer one", func(t *testing.T) {
		q := newQueue(100)
		q.push(&queued{cs: set(2, 5, "a/x"), from: patina.ActorID{9}, ttl: 1})
		q.push(&queued{cs: set(2, 4, "a/x"), from: patina.ActorID{8}, ttl: 1})
		for _, it := range takeAll(q) {
			if it.cs.Version == 5 && it.cs.Cleared {
				t.Fatal("v5 cleared by the older v4")
			}
		}
	})
	t.Run("partial chunks never coalesce", func(t *testing.T) {
		q := newQueue(100)
		chunk := set(1, 1, "a/x")
		chunk.LastSeq = 5 // seqs 0..=0 of 0..=5: a partial
		q.push(&queued{cs: chunk, from: local, ttl: 2})
		q.push(&queued{cs: set(1, 2, "a/x"), from: local, ttl: 2})
		q.push(&queued{cs: set(1, 3, "a/x"), from: local, ttl: 2})
		got := describe(takeAll(q))
		if want := []string{"1:v1 1 cells", "1:v2..=2 cleared", "1:v3 1 cells"}; !equal(got, want) {
			t.Fatalf("queue = %v, want %v", got, want)
		}
	})
	t.Run("sent items are not cleared afterwards", func(t *testing.T) {
		q := newQueue(100)
		q.push(&queued{cs: set(1, 1, "a/x"), from: local, ttl: 2})
		sent := takeAll(q)
		q.push(&queued{cs: set(1, 2, "a/x"), from: local, ttl: 2})
		if sent[0].cs.Cleared {
			t.Fatal("an item already taken for sending was rewritten")
		}
	})
	t.Run("a backlog of 1000 writes to 10 cells travels as 10 cells", func(t *testing.T) {
		q := newQueue(2000)
		for v := 1; v <= 1000; v++ {
			q.push(&queued{cs: set(1, patina.Version(v), fmt.Sprintf("%d/x", v%10)), from: local, ttl: 2})
		}
		items := mergeCleared(takeAll(q))
		cells := 0
		for _, it := range items {
			cells += len(it.cs.Changes)
		}
		if cells != 10 {
			t.Fatalf("%d cells queued for 1000 writes to 10 cells: %v", cells, describe(items))
		}
		if len(items) != 11 {
			t.Fatalf("queue = %v, want one cleared range then the 10 latest versions", describe(items))
		}
	})
}

func TestBroadcastQueue_Overflow(t *testing.T) {
	q := newQueue(3)
	for v := 1; v <= 5; v++ {
		q.push(&queued{cs: set(1, patina.Version(v), fmt.Sprintf("%d/x", v)), from: patina.ActorID{1}, ttl: 2})
	}
	if q.len() != 3 || q.dropped != 2 {
		t.Fatalf("len %d dropped %d, want 3 and 2", q.len(), q.dropped)
	}
	got := describe(takeAll(q))
	if want := []string{"1:v3 1 cells", "1:v4 1 cells", "1:v5 1 cells"}; !equal(got, want) {
		t.Fatalf("queue = %v, want the oldest dropped: %v", got, want)
	}
	t.Run("a dropped item is never rewritten", func(t *testing.T) {
		q := newQueue(1)
		first := &queued{cs: set(1, 1, "a/x"), from: patina.ActorID{1}, ttl: 2}
		q.push(first)
		q.push(&queued{cs: set(1, 2, "b/x"), from: patina.ActorID{1}, ttl: 2}) // drops v1
		q.push(&queued{cs: set(1, 3, "a/x"), from: patina.ActorID{1}, ttl: 2})
		if first.cs.Cleared {
			t.Fatal("dropped v1 was turned into a cleared marker")
		}
	})
	t.Run("closed queue takes nothing", func(t *testing.T) {
		q := newQueue(3)
		q.close()
		q.push(&queued{cs: set(1, 1, "a/x")})
		if q.len() != 0 {
			t.Fatal("push after close queued an item")
		}
	})
}

func TestMergeCleared(t *testing.T) {
	a, b := patina.ActorID{1}, patina.ActorID{2}
	cl := func(actor patina.ActorID, from patina.ActorID, ttl int, v, to patina.Version) *queued {
		return &queued{cs: patina.Changeset{Actor: actor, Version: v, Cleared: true, ClearedTo: to}, from: from, ttl: ttl}
	}
	live := func(actor patina.ActorID, v patina.Version) *queued {
		return &queued{cs: patina.Changeset{Actor: actor, Version: v, Changes: []patina.Change{{Table: "t"}}}, from: actor, ttl: 2}
	}
	tests := []struct {
		name string
		in   []*queued
		want []string
	}{
		{"contiguous run folds", []*queued{cl(a, a, 2, 1, 1), cl(a, a, 2, 2, 2), cl(a, a, 2, 3, 5), live(a, 6)},
			[]string{"1:v1..=5 cleared", "1:v6 1 cells"}},
		{"gap breaks the run", []*queued{cl(a, a, 2, 1, 1), cl(a, a, 2, 3, 3)},
			[]string{"1:v1..=1 cleared", "1:v3..=3 cleared"}},
		{"other origin breaks the run", []*queued{cl(a, a, 2, 1, 1), cl(b, b, 2, 2, 2), cl(a, a, 2, 2, 2)},
			[]string{"1:v1..=1 cleared", "2:v2..=2 cleared", "1:v2..=2 cleared"}},
		{"other sender or ttl breaks the run", []*queued{cl(b, a, 1, 1, 1), cl(b, a, 2, 2, 2), cl(b, b, 2, 3, 3)},
			[]string{"2:v1..=1 cleared", "2:v2..=2 cleared", "2:v3..=3 cleared"}},
		{"live version breaks the run", []*queued{cl(a, a, 2, 1, 1), live(a, 2), cl(a, a, 2, 3, 3)},
			[]string{"1:v1..=1 cleared", "1:v2 1 cells", "1:v3..=3 cleared"}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(mergeCleared(tt.in)); !equal(got, tt.want) {
				t.Fatalf("mergeCleared = %v, want %v", got, tt.want)
			}
		})
	}
}

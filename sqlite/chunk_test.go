package sqlite

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patinadb/patina"
)

// bigVersion commits one version with rows of varied sizes and returns it.
func bigVersion(t *testing.T, db *DB, rows int) *patina.Changeset {
	t.Helper()
	stmts := make([]string, rows)
	for i := range stmts {
		stmts[i] = fmt.Sprintf(`INSERT INTO machines (id, name, state) VALUES ('m%03d', '%s', 'up')`, i, strings.Repeat("n", i%40))
	}
	return MustExec(t, db, stmts...)
}

func TestChunk(t *testing.T) {
	a := MustOpen(t, testSchema)
	cs := bigVersion(t, a, 60)
	for _, maxBytes := range []int{1, 60, 100, 250, 1000, 1 << 20} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			chunks := Chunk(cs.Actor, cs.Version, cs.Changes, cs.LastSeq, cs.TS, maxBytes)
			var all []patina.Change
			next := uint64(0)
			for i, c := range chunks {
				size := 0
				for j := range c.Changes {
					size += ChangeSize(&c.Changes[j])
					if s := c.Changes[j].Seq; s < c.Seqs.Start || s > c.Seqs.End {
						t.Fatalf("chunk %d: change seq %d outside %v", i, s, c.Seqs)
					}
				}
				if size > maxBytes && len(c.Changes) > 1 {
					t.Fatalf("chunk %d: %d bytes over the budget %d with %d changes", i, size, maxBytes, len(c.Changes))
				}
				if len(c.Changes) == 0 {
					t.Fatalf("chunk %d is empty", i)
				}
				if c.Seqs.Start != next || c.LastSeq != cs.LastSeq || c.Version != cs.Version || c.Actor != cs.Actor {
					t.Fatalf("chunk %d: %+v, want start %d", i, c, next)
				}
				next = c.Seqs.End + 1
				all = append(all, c.Changes...)
			}
			if next != cs.LastSeq+1 {
				t.Fatalf("chunks end at %d, last seq %d", next-1, cs.LastSeq)
			}
			if len(all) != len(cs.Changes) {
				t.Fatalf("chunks carry %d changes of %d", len(all), len(cs.Changes))
			}
			if maxBytes == 1 && len(chunks) != len(cs.Changes) {
				t.Fatalf("1-byte budget: %d chunks for %d changes", len(chunks), len(cs.Changes))
			}
		})
	}
	if got := Chunk(cs.Actor, 1, nil, 0, 0, 100); got != nil {
		t.Fatalf("no changes gave %v", got)
	}
}

func TestDB_Apply_Chunks(t *testing.T) {
	a := MustOpen(t, testSchema)
	cs := bigVersion(t, a, 30)
	chunks := Chunk(cs.Actor, cs.Version, cs.Changes, cs.LastSeq, cs.TS, 300)
	if len(chunks) < 4 {
		t.Fatalf("only %d chunks", len(chunks))
	}
	t.Run("out of order and duplicated", func(t *testing.T) {
		b := MustOpen(t, testSchema)
		order := slices.Clone(chunks)
		slices.Reverse(order)
		for i, c := range order[:len(order)-1] {
			outs := MustApply(t, b, c, c)
			if outs[0] != patina.ApplyBuffered || outs[1] != patina.ApplyDuplicate {
				t.Fatalf("chunk %d: %v", i, outs)
			}
		}
		st := b.SyncState()
		p, ok := st.Partials[a.Actor()][1]
		if !ok || p.LastSeq != cs.LastSeq || st.Heads[a.Actor()] != 1 {
			t.Fatalf("partial state %+v", st)
		}
		if got := MustQuery(t, b, `SELECT count(*) FROM machines`); got[0] != "0" {
			t.Fatalf("rows applied before the version completed: %v", got)
		}
		if b.BufferedChanges() == 0 {
			t.Fatal("nothing buffered")
		}
		if outs := MustApply(t, b, order[len(order)-1]); outs[0] != patina.ApplyNew {
			t.Fatalf("last chunk: %v", outs)
		}
		if n := b.BufferedChanges(); n != 0 {
			t.Fatalf("%d changes still buffered", n)
		}
		if st := b.SyncState(); st.NeedCount() != 0 {
			t.Fatalf("state after completion %+v", st)
		}
		if outs := MustApply(t, b, chunks[1], *cs); outs[0] != patina.ApplyDuplicate || outs[1] != patina.ApplyDuplicate {
			t.Fatalf("after completion: %v", outs)
		}
		assertConverged(t, a, b)
	})
	t.Run("partial state survives a restart", func(t *testing.T) {
		b := MustOpen(t, testSchema)
		MustApply(t, b, chunks[0], chunks[2])
		before := b.SyncState()
		buffered := b.BufferedChanges()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Open(); err != nil {
			t.Fatal(err)
		}
		assertSameSyncState(t, before, b.SyncState())
		if b.BufferedChanges() != buffered {
			t.Fatalf("buffered %d -> %d", buffered, b.BufferedChanges())
		}
		MustApply(t, b, chunks[1:]...)
		assertConverged(t, a, b)
	})
	t.Run("partial changes for", func(t *testing.T) {
		b, c := MustOpen(t, testSchema), MustOpen(t, testSchema)
		MustApply(t, b, chunks[0], chunks[2])
		// C asks B for all seqs; B sends what it has, vouching for whole
		// ranges.
		var got []patina.Changeset
		err := b.PartialChangesFor(context.Background(), a.Actor(), 1, []patina.Range{{Start: 0, End: cs.LastSeq}}, 0, func(x patina.Changeset) error {
			got = append(got, x)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Seqs != chunks[0].Seqs || got[1].Seqs != chunks[2].Seqs || len(got[1].Changes) != len(chunks[2].Changes) {
			t.Fatalf("partial answer %+v", got)
		}
		if outs := MustApply(t, c, got...); outs[0] != patina.ApplyBuffered {
			t.Fatalf("outcomes %v", outs)
		}
		// The rest comes from the origin, which holds the whole version.
		syncPair(t, a, c, 200)
		assertConverged(t, a, c)
		// A node that does not have the version answers nothing.
		d := MustOpen(t, testSchema)
		if err := d.PartialChangesFor(context.Background(), a.Actor(), 1, []patina.Range{{Start: 0, End: 5}}, 0, func(patina.Changeset) error {
			t.Fatal("answered")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("views of different age", func(t *testing.T) {
		// The version's last cell is overwritten on A: sync now serves a
		// shorter view, which completes what the broadcast started.
		a2 := MustOpen(t, testSchema)
		b := MustOpen(t, testSchema)
		v := MustExec(t, a2, `INSERT INTO machines (id, name, state) VALUES ('x', 'n', 's'), ('y', 'n', 's')`)
		broadcast := Chunk(v.Actor, v.Version, v.Changes, v.LastSeq, v.TS, 1)
		MustApply(t, b, broadcast[0], broadcast[1])
		MustExec(t, a2, `UPDATE machines SET cpus = 9 WHERE id = 'y'`)
		newer := MustChangesFor(t, a2, a2.Actor(), patina.Range{Start: 1, End: 1}, 1)
		if newer[0].LastSeq >= v.LastSeq {
			t.Fatalf("view did not shrink: %d vs %d", newer[0].LastSeq, v.LastSeq)
		}
		outs := MustApply(t, b, newer...)
		if outs[len(outs)-1] != patina.ApplyNew {
			t.Fatalf("outcomes %v", outs)
		}
		syncPair(t, a2, b, 0)
		assertConverged(t, a2, b)
	})
	t.Run("buffer bound", func(t *testing.T) {
		b := MustOpen(t, testSchema)
		b.MaxBufferedChanges = len(chunks[0].Changes) + 1
		res, err := b.Apply(context.Background(), chunks[:2])
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcomes[0] != patina.ApplyBuffered || res.Outcomes[1] != patina.ApplyRejected || !strings.Contains(res.Errors[1].Error(), "partial-version buffer is full") {
			t.Fatalf("outcomes %v %v", res.Outcomes, res.Errors)
		}
		if b.BufferedChanges() != len(chunks[0].Changes) {
			t.Fatalf("buffered %d", b.BufferedChanges())
		}
		// The whole version still applies (it needs no buffer).
		if outs := MustApply(t, b, *cs); outs[0] != patina.ApplyNew {
			t.Fatalf("whole version: %v", outs)
		}
		if b.BufferedChanges() != 0 {
			t.Fatalf("buffer kept %d changes of a complete version", b.BufferedChanges())
		}
		assertConverged(t, a, b)
	})
}

// TestDB_ChangesFor checks newest-first order, cleared versions (merged into
// ranges) and gap detection on the receiver.
func TestDB_ChangesFor(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	MustExec(t, a, `INSERT INTO machines (id, name) VALUES ('m1', 'a')`) // v1
	MustExec(t, a, `UPDATE machines SET state = 'x' WHERE id = 'm1'`)    // v2: overwritten by v4
	MustExec(t, a, `UPDATE machines SET state = 'y' WHERE id = 'm1'`)    // v3: overwritten by v4
	MustExec(t, a, `UPDATE machines SET state = 'z' WHERE id = 'm1'`)    // v4
	MustExec(t, a, `INSERT INTO machines (id) VALUES ('m2')`)            // v5
	MustExec(t, a, `UPDATE machines SET cpus = 5 WHERE id = 'm2'`)       // v6: overwritten by v7
	MustExec(t, a, `UPDATE machines SET cpus = 6 WHERE id = 'm2'`)       // v7
	render := func(css []patina.Changeset) string {
		var parts []string
		for _, cs := range css {
			if cs.Cleared {
				parts = append(parts, fmt.Sprintf("cleared %d..=%d", cs.Version, cs.ClearedTo))
			} else {
				parts = append(parts, fmt.Sprintf("v%d", cs.Version))
			}
		}
		return strings.Join(parts, ", ")
	}
	css := MustChangesFor(t, a, a.Actor(), patina.Range{Start: 1, End: 7}, 0)
	if got, want := render(css), "v7, cleared 6..=6, v5, v4, cleared 2..=3, v1"; got != want {
		t.Fatalf("ChangesFor: %s, want %s", got, want)
	}
	// Deleting m1 clears v1 and v4 as well.
	MustExec(t, a, `DELETE FROM machines WHERE id = 'm1'`) // v8
	css = MustChangesFor(t, a, a.Actor(), patina.Range{Start: 0, End: math.MaxUint64}, 0)
	if got, want := render(css), "v8, v7, cleared 6..=6, v5, cleared 1..=4"; got != want {
		t.Fatalf("ChangesFor after delete: %s, want %s", got, want)
	}
	// A sub-range and an empty range.
	if got := render(MustChangesFor(t, a, a.Actor(), patina.Range{Start: 2, End: 3}, 0)); got != "cleared 2..=3" {
		t.Fatalf("sub-range: %s", got)
	}
	if got := MustChangesFor(t, a, a.Actor(), patina.Range{Start: 9, End: 20}, 0); len(got) != 0 {
		t.Fatalf("above the head: %v", got)
	}
	if got := MustChangesFor(t, a, patina.ActorID{1}, patina.Range{Start: 1, End: 20}, 0); len(got) != 0 {
		t.Fatalf("unknown actor: %v", got)
	}
	// B receives the newest first: gaps open, then close.
	MustApply(t, b, css[0])
	if st := b.SyncState(); st.Heads[a.Actor()] != 8 || !slices.Equal(st.Gaps[a.Actor()], []patina.Range{{Start: 1, End: 7}}) {
		t.Fatalf("after v8: %+v", st)
	}
	MustApply(t, b, css[2])
	if st := b.SyncState(); !slices.Equal(st.Gaps[a.Actor()], []patina.Range{{Start: 1, End: 5}, {Start: 7, End: 7}}) {
		t.Fatalf("after cleared 6: %+v", st.Gaps)
	}
	MustApply(t, b, css...)
	if st := b.SyncState(); st.NeedCount() != 0 || st.Heads[a.Actor()] != 8 {
		t.Fatalf("after all: %+v", st)
	}
	assertConverged(t, a, b)
	// B serves A's versions the same way.
	if got, want := render(MustChangesFor(t, b, a.Actor(), patina.Range{Start: 1, End: 8}, 0)), "v8, v7, cleared 6..=6, v5, cleared 1..=4"; got != want {
		t.Fatalf("B serves %s, want %s", got, want)
	}
	// Bookkeeping reloads from the file.
	before := b.SyncState()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	assertSameSyncState(t, before, b.SyncState())
}

// TestDB_ChangesFor_Snapshot races ChangesFor against Apply: a version must
// never be served as cleared, or half, because it committed meanwhile.
func TestDB_ChangesFor_Snapshot(t *testing.T) {
	a, b := MustOpen(t, testSchema), MustOpen(t, testSchema)
	var css []patina.Changeset
	for i := 0; i < 40; i++ {
		css = append(css, *MustExec(t, a, fmt.Sprintf(`INSERT INTO machines (id, name) VALUES ('m%d', 'x')`, i)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, cs := range css {
			if _, err := b.Apply(context.Background(), []patina.Changeset{cs}); err != nil {
				panic(err)
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("apply did not finish")
		}
		for _, cs := range MustChangesFor(t, b, a.Actor(), patina.Range{Start: 1, End: 40}, 0) {
			if cs.Cleared {
				t.Fatalf("version %d..=%d served as cleared", cs.Version, cs.ClearedTo)
			}
			if len(cs.Changes) != 4 {
				t.Fatalf("version %d served with %d changes", cs.Version, len(cs.Changes))
			}
		}
	}
}

package sqlite

import (
	"fmt"
	"sync"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/rangeset"
)

// bookie holds, per origin actor, the highest version seen (head), the
// versions below it not yet received (gaps) and the versions received in
// part (partials). It lives in memory and is written to SQLite in the same
// transaction as the data it describes.
type bookie struct {
	mu     sync.RWMutex
	actors map[patina.ActorID]*actorBook

	// saved holds pre-transaction copies of the actors a transaction touched
	// (nil for actors it created), restored on rollback and written by flush.
	saved map[patina.ActorID]*actorBook
	// sp holds the same for the open savepoint (one changeset of an Apply).
	sp map[patina.ActorID]*actorBook
}

type actorBook struct {
	head     patina.Version
	gaps     rangeset.Set
	partials map[patina.Version]*partialVersion
}

type partialVersion struct {
	have    rangeset.Set
	lastSeq patina.Seq
	ts      patina.Timestamp
}

func newBookie() *bookie {
	return &bookie{actors: map[patina.ActorID]*actorBook{}}
}

func (a *actorBook) clone() *actorBook {
	c := &actorBook{head: a.head, gaps: a.gaps.Clone(), partials: map[patina.Version]*partialVersion{}}
	for v, p := range a.partials {
		c.partials[v] = &partialVersion{have: p.have.Clone(), lastSeq: p.lastSeq, ts: p.ts}
	}
	return c
}

func (a *actorBook) cloneOrNil() *actorBook {
	if a == nil {
		return nil
	}
	return a.clone()
}

// known reports whether version v of actor a has been fully applied.
func (b *bookie) known(a patina.ActorID, v patina.Version) bool {
	return b.actors[a].known(v)
}

// known reports whether version v has been fully applied (or deferred).
func (ab *actorBook) known(v patina.Version) bool {
	if ab == nil || v == 0 || v > ab.head || ab.gaps.Contains(v) {
		return false
	}
	_, partial := ab.partials[v]
	return !partial
}

// touch returns actor a's book for modification inside a transaction.
func (b *bookie) touch(a patina.ActorID) *actorBook {
	if b.saved == nil {
		b.saved = map[patina.ActorID]*actorBook{}
	}
	ab := b.actors[a]
	if _, ok := b.saved[a]; !ok {
		b.saved[a] = ab.cloneOrNil()
	}
	if _, ok := b.sp[a]; b.sp != nil && !ok {
		b.sp[a] = ab.cloneOrNil()
	}
	if ab == nil {
		ab = &actorBook{partials: map[patina.Version]*partialVersion{}}
		b.actors[a] = ab
	}
	return ab
}

// markKnown records versions r of actor a as fully applied.
func (b *bookie) markKnown(a patina.ActorID, r patina.Range) {
	ab := b.touch(a)
	if r.End > ab.head {
		if r.Start > ab.head+1 {
			ab.gaps.Insert(patina.Range{Start: ab.head + 1, End: r.Start - 1})
		}
		ab.head = r.End
	}
	ab.gaps.Remove(r)
	for v := range ab.partials {
		if r.Contains(v) {
			delete(ab.partials, v)
		}
	}
}

// addPartial records seqs of version v as received, with the lowest last
// seq seen, and reports whether the version is now complete.
func (b *bookie) addPartial(a patina.ActorID, v patina.Version, seqs patina.Range, lastSeq patina.Seq, ts patina.Timestamp) bool {
	ab := b.touch(a)
	p := ab.partials[v]
	if p == nil {
		p = &partialVersion{lastSeq: lastSeq, ts: ts}
		ab.partials[v] = p
	}
	p.lastSeq = min(p.lastSeq, lastSeq)
	p.have.Insert(seqs)
	if v > ab.head {
		if v > ab.head+1 {
			ab.gaps.Insert(patina.Range{Start: ab.head + 1, End: v - 1})
		}
		ab.head = v
	}
	ab.gaps.Remove(patina.Range{Start: v, End: v})
	return p.have.ContainsRange(patina.Range{Start: 0, End: p.lastSeq})
}

// begin starts tracking a transaction's changes.
func (b *bookie) begin() { b.saved, b.sp = map[patina.ActorID]*actorBook{}, nil }

// rollback restores the books touched since begin.
func (b *bookie) rollback() {
	b.restore(b.saved)
	b.saved, b.sp = nil, nil
}

// savepoint starts tracking one changeset's changes inside a transaction.
func (b *bookie) savepoint() { b.sp = map[patina.ActorID]*actorBook{} }

// rollbackTo restores the books touched since savepoint.
func (b *bookie) rollbackTo() {
	b.restore(b.sp)
	b.sp = nil
}

// release ends the savepoint, keeping its changes.
func (b *bookie) release() { b.sp = nil }

func (b *bookie) restore(saved map[patina.ActorID]*actorBook) {
	for a, ab := range saved {
		if ab == nil {
			delete(b.actors, a)
		} else {
			b.actors[a] = ab
		}
	}
}

// flush writes the touched books in the open transaction; commit or
// rollback follows.
func (b *bookie) flush(exec func(sql string, args ...any) error) error {
	for a := range b.saved {
		ab := b.actors[a]
		if err := writeBook(exec, a, ab); err != nil {
			return fmt.Errorf("write bookkeeping of actor %s: %w", a, err)
		}
	}
	return nil
}

// commit forgets the pre-transaction copies once the transaction committed.
func (b *bookie) commit() { b.saved, b.sp = nil, nil }

func writeBook(exec func(sql string, args ...any) error, a patina.ActorID, ab *actorBook) error {
	id := a[:]
	if err := exec(`DELETE FROM __patina_gaps WHERE site = ?`, id); err != nil {
		return err
	}
	if err := exec(`DELETE FROM __patina_partials WHERE site = ?`, id); err != nil {
		return err
	}
	if ab == nil {
		return exec(`DELETE FROM __patina_heads WHERE site = ?`, id)
	}
	if err := exec(`INSERT INTO __patina_heads (site, head) VALUES (?, ?) ON CONFLICT (site) DO UPDATE SET head = excluded.head`, id, ab.head); err != nil {
		return err
	}
	for _, r := range ab.gaps.Ranges() {
		if err := exec(`INSERT INTO __patina_gaps (site, start, "end") VALUES (?, ?, ?)`, id, r.Start, r.End); err != nil {
			return err
		}
	}
	for v, p := range ab.partials {
		for _, r := range p.have.Ranges() {
			if err := exec(`INSERT INTO __patina_partials (site, version, start_seq, end_seq, last_seq, ts) VALUES (?, ?, ?, ?, ?, ?)`,
				id, v, r.Start, r.End, p.lastSeq, uint64(p.ts)); err != nil {
				return err
			}
		}
	}
	return nil
}

// load reads the bookkeeping tables.
func (b *bookie) load(conn *sqlite3.Conn) error {
	get := func(a []byte) *actorBook {
		var id patina.ActorID
		copy(id[:], a)
		ab := b.actors[id]
		if ab == nil {
			ab = &actorBook{partials: map[patina.Version]*partialVersion{}}
			b.actors[id] = ab
		}
		return ab
	}
	stmt, _, err := conn.Prepare(`SELECT site, head FROM __patina_heads`)
	if err != nil {
		return err
	}
	for stmt.Step() {
		get(stmt.ColumnRawBlob(0)).head = uint64(stmt.ColumnInt64(1))
	}
	stmt.Close()
	stmt, _, err = conn.Prepare(`SELECT site, start, "end" FROM __patina_gaps`)
	if err != nil {
		return err
	}
	for stmt.Step() {
		get(stmt.ColumnRawBlob(0)).gaps.Insert(patina.Range{Start: uint64(stmt.ColumnInt64(1)), End: uint64(stmt.ColumnInt64(2))})
	}
	stmt.Close()
	stmt, _, err = conn.Prepare(`SELECT site, version, start_seq, end_seq, last_seq, ts FROM __patina_partials`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for stmt.Step() {
		ab := get(stmt.ColumnRawBlob(0))
		v := uint64(stmt.ColumnInt64(1))
		p := ab.partials[v]
		if p == nil {
			p = &partialVersion{lastSeq: uint64(stmt.ColumnInt64(4)), ts: patina.Timestamp(stmt.ColumnInt64(5))}
			ab.partials[v] = p
		}
		p.have.Insert(patina.Range{Start: uint64(stmt.ColumnInt64(2)), End: uint64(stmt.ColumnInt64(3))})
	}
	return stmt.Err()
}

// state returns a deep copy as a patina.SyncState.
func (b *bookie) state(self patina.ActorID) patina.SyncState {
	b.mu.RLock()
	defer b.mu.RUnlock()
	s := patina.SyncState{
		Actor:    self,
		Heads:    map[patina.ActorID]patina.Version{},
		Gaps:     map[patina.ActorID][]patina.Range{},
		Partials: map[patina.ActorID]map[patina.Version]patina.Partial{},
	}
	for a, ab := range b.actors {
		if ab.head == 0 {
			continue
		}
		s.Heads[a] = ab.head
		if rs := ab.gaps.Ranges(); len(rs) > 0 {
			s.Gaps[a] = rs
		}
		if len(ab.partials) > 0 {
			m := map[patina.Version]patina.Partial{}
			for v, p := range ab.partials {
				m[v] = patina.Partial{Have: p.have.Ranges(), LastSeq: p.lastSeq}
			}
			s.Partials[a] = m
		}
	}
	return s
}

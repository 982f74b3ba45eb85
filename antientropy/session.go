package antientropy

import (
	"errors"
	"fmt"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/rangeset"
)

// DefaultMaxInflightNeeds is how many needs a session sends in one batch, as
// Corrosion's 10 need messages per peer per pass.
const DefaultMaxInflightNeeds = 10

// ErrFinished is returned by Step after the session produced Done.
var ErrFinished = errors.New("sync session finished")

// SessionConfig configures a Session.
type SessionConfig struct {
	// MaxVersions is the most versions one need asks for when the session
	// has no planner (a planner uses its own). Zero means DefaultMaxVersions.
	MaxVersions uint64
	// MaxInflightNeeds is the most needs sent in one batch; the next batch
	// goes out when the peer ends the previous one. Zero means
	// DefaultMaxInflightNeeds.
	MaxInflightNeeds int
}

// Message is an output of Session.Ready: SendStateRequest, SendNeeds or Done.
type Message interface{ isMessage() }

// SendStateRequest asks the peer for its sync state; answer with GotState.
type SendStateRequest struct{}

// SendNeeds asks the peer for needs; feed every changeset it streams back as
// GotChangeset and the end of its answer as GotDone.
type SendNeeds struct{ Needs []patina.Need }

// Done ends the session: Err is nil if every batch was answered (possibly in
// part: see Stats), or why the session failed.
type Done struct{ Err error }

func (SendStateRequest) isMessage() {}
func (SendNeeds) isMessage()        {}
func (Done) isMessage()             {}

// Event is an input of Session.Step: GotState, GotChangeset, GotDone or
// GotError.
type Event interface{ isEvent() }

// GotState is the peer's sync state, the answer to SendStateRequest.
type GotState struct{ State patina.SyncState }

// GotChangeset is one changeset (or chunk of one) streamed by the peer.
type GotChangeset struct{ Set patina.Changeset }

// GotDone says the peer has answered the batch of needs last sent.
type GotDone struct{}

// GotError says the exchange failed (network, timeout, refusal).
type GotError struct{ Err error }

func (GotState) isEvent()     {}
func (GotChangeset) isEvent() {}
func (GotDone) isEvent()      {}
func (GotError) isEvent()     {}

// Stats are a session's counters.
type Stats struct {
	NeedsSent int // needs sent to the peer
	// VersionsRequested counts the versions of full needs plus one per
	// partial need.
	VersionsRequested uint64
	// VersionsReceived counts requested versions that arrived whole: cleared,
	// every seq of a full version, or every requested seq of a partial.
	VersionsReceived uint64
	// VersionsUnanswered counts requested versions still incomplete when the
	// peer ended their batch; the next round asks again.
	VersionsUnanswered uint64
	Changesets         int // changesets received
	Changes            int // changes received
	// Unsolicited counts changesets that matched no outstanding need
	// (duplicates, or a peer sending what was not asked). They are still
	// valid data; the session only counts them.
	Unsolicited int
	// BytesEstimated estimates the payload received: the changes' strings,
	// keys and values plus a fixed per-change and per-changeset overhead.
	BytesEstimated int64
}

type phase uint8

const (
	phaseStart      phase = iota // SendStateRequest not yet produced
	phaseAwaitState              // waiting for GotState
	phasePulling                 // sending needs in batches
	phaseFailed                  // Done{err} not yet produced
	phaseFinished                // Done produced
)

// Session is the client side of one sync exchange with one peer, as a pure
// state machine in the style of etcd-io/raft's RawNode: Ready returns the
// messages to send now, the driver sends them and calls Advance, and feeds
// what arrives to Step. The flow is SendStateRequest, GotState, then for
// each batch SendNeeds, GotChangeset..., GotDone, and finally Done.
//
// Ready returns the same messages until Advance is called; the session's
// state moves when Ready produces them, so events may be stepped before
// Advance. A Session is not safe for concurrent use.
type Session struct {
	local   patina.SyncState
	planner *Planner
	cfg     SessionConfig

	phase   phase
	peer    patina.ActorID
	known   bool // peer is set
	err     error
	queue   []patina.Need // needs not yet sent
	batch   *tracker      // needs of the batch in flight, nil if none
	pending []Message     // produced by Ready, not yet advanced
	stats   Stats
}

// NewSession returns a session pulling into local. planner, if not nil, is
// the round's planner: the session asks this peer only for what no other
// session of the round was assigned.
func NewSession(local patina.SyncState, planner *Planner, cfg SessionConfig) *Session {
	if cfg.MaxVersions == 0 {
		cfg.MaxVersions = DefaultMaxVersions
	}
	if cfg.MaxInflightNeeds <= 0 {
		cfg.MaxInflightNeeds = DefaultMaxInflightNeeds
	}
	return &Session{local: local, planner: planner, cfg: cfg}
}

// Ready returns the messages to send now, or nil if the session waits for
// an event. After Done it returns nil.
func (s *Session) Ready() []Message {
	if s.pending != nil {
		return s.pending
	}
	switch s.phase {
	case phaseStart:
		s.phase = phaseAwaitState
		s.pending = []Message{SendStateRequest{}}
	case phasePulling:
		if s.batch != nil {
			return nil
		}
		if len(s.queue) == 0 {
			s.phase = phaseFinished
			s.pending = []Message{Done{}}
			break
		}
		n := min(len(s.queue), s.cfg.MaxInflightNeeds)
		batch := s.queue[:n:n]
		s.queue = s.queue[n:]
		s.batch = newTracker(batch)
		s.stats.NeedsSent += n
		s.stats.VersionsRequested += s.batch.remaining()
		s.pending = []Message{SendNeeds{Needs: batch}}
	case phaseFailed:
		s.phase = phaseFinished
		s.pending = []Message{Done{Err: s.err}}
	}
	return s.pending
}

// Advance acknowledges that the messages of the last Ready were sent.
func (s *Session) Advance() { s.pending = nil }

// Finished reports whether the session has produced Done.
func (s *Session) Finished() bool { return s.phase == phaseFinished }

// Stats returns the session's counters so far.
func (s *Session) Stats() Stats { return s.stats }

// Step feeds an event. An event the session does not expect in its current
// phase (a state it did not ask for, a changeset with no batch in flight)
// fails the session: Step returns the error and Ready then yields Done with
// it. After Done, Step returns ErrFinished and changes nothing.
func (s *Session) Step(ev Event) error {
	if s.phase == phaseFinished {
		return ErrFinished
	}
	if s.phase == phaseFailed {
		return s.err
	}
	switch ev := ev.(type) {
	case GotError:
		err := ev.Err
		if err == nil {
			err = errors.New("unknown error")
		}
		s.fail(err)
		return nil
	case GotState:
		if s.phase != phaseAwaitState {
			return s.fail(errors.New("protocol error: unexpected sync state"))
		}
		s.peer, s.known = ev.State.Actor, true
		if s.planner != nil {
			s.queue = s.planner.Add(ev.State.Actor, ev.State)
		} else {
			s.queue = Needs(s.local, ev.State, s.cfg.MaxVersions)
		}
		s.phase = phasePulling
		return nil
	case GotChangeset:
		if s.batch == nil {
			return s.fail(fmt.Errorf("protocol error: unexpected changeset of actor %s version %d", ev.Set.Actor, ev.Set.Version))
		}
		s.receive(&ev.Set)
		return nil
	case GotDone:
		if s.batch == nil {
			return s.fail(errors.New("protocol error: unexpected end of batch"))
		}
		s.stats.VersionsUnanswered += s.batch.remaining()
		s.batch = nil
		return nil
	case nil:
		return s.fail(errors.New("step nil event"))
	default:
		return s.fail(fmt.Errorf("step unknown event %T", ev))
	}
}

// fail records err, wrapped with the peer, and returns it.
func (s *Session) fail(err error) error {
	if s.known {
		err = fmt.Errorf("sync with peer %s: %w", s.peer, err)
	} else {
		err = fmt.Errorf("sync: %w", err)
	}
	s.err = err
	s.phase = phaseFailed
	s.batch = nil
	s.queue = nil
	return err
}

func (s *Session) receive(cs *patina.Changeset) {
	s.stats.Changesets++
	s.stats.Changes += len(cs.Changes)
	s.stats.BytesEstimated += estimateSize(cs)
	got, solicited := s.batch.receive(cs)
	s.stats.VersionsReceived += got
	if !solicited {
		s.stats.Unsolicited++
	}
}

// Per-changeset and per-change overheads of estimateSize: ids, versions,
// seqs, timestamps and framing, roughly as the wire encodes them.
const (
	changesetOverhead = 64
	changeOverhead    = 48
)

// estimateSize estimates the bytes a changeset occupies on the wire.
func estimateSize(cs *patina.Changeset) int64 {
	n := int64(changesetOverhead)
	for i := range cs.Changes {
		c := &cs.Changes[i]
		n += changeOverhead + int64(len(c.Table)+len(c.PK)+len(c.Column)+len(c.Value.Bytes))
	}
	return n
}

type verKey struct {
	actor   patina.ActorID
	version patina.Version
}

// tracker follows which needs of a batch are satisfied.
type tracker struct {
	full   map[patina.ActorID]*rangeset.Set // versions of full needs not yet whole
	chunks map[verKey]*rangeset.Set         // seqs received so far of full versions arriving in chunks
	seqs   map[verKey]*rangeset.Set         // partial needs: seqs still wanted
}

func newTracker(needs []patina.Need) *tracker {
	t := &tracker{
		full:   map[patina.ActorID]*rangeset.Set{},
		chunks: map[verKey]*rangeset.Set{},
		seqs:   map[verKey]*rangeset.Set{},
	}
	for _, n := range needs {
		if n.IsPartial() {
			k := verKey{n.Actor, n.Versions.Start}
			if t.seqs[k] == nil {
				t.seqs[k] = &rangeset.Set{}
			}
			for _, r := range n.Seqs {
				t.seqs[k].Insert(r)
			}
			continue
		}
		if t.full[n.Actor] == nil {
			t.full[n.Actor] = &rangeset.Set{}
		}
		t.full[n.Actor].Insert(n.Versions)
	}
	return t
}

// remaining returns how many requested versions are not yet whole.
func (t *tracker) remaining() uint64 {
	n := uint64(len(t.seqs))
	for _, s := range t.full {
		n += s.Len()
	}
	return n
}

// receive marks what cs satisfies. It returns how many requested versions
// became whole and whether cs matched any need.
func (t *tracker) receive(cs *patina.Changeset) (got uint64, solicited bool) {
	a := cs.Actor
	full := t.full[a]
	if cs.Cleared {
		r := cs.Versions()
		if full != nil {
			in := rangeset.FromRanges([]patina.Range{r})
			hit := full.Intersect(&in)
			got += hit.Len()
			full.Remove(r)
		}
		for k := range t.chunks {
			if k.actor == a && r.Contains(k.version) {
				delete(t.chunks, k)
			}
		}
		for k := range t.seqs {
			if k.actor == a && r.Contains(k.version) {
				delete(t.seqs, k)
				got++
			}
		}
		return got, got > 0
	}
	k := verKey{a, cs.Version}
	if want, ok := t.seqs[k]; ok {
		in := rangeset.FromRanges([]patina.Range{cs.Seqs})
		if hit := want.Intersect(&in); hit.IsEmpty() {
			return 0, false // none of its seqs is still wanted: a duplicate
		}
		want.Remove(cs.Seqs)
		if want.IsEmpty() {
			delete(t.seqs, k)
			got++
		}
		return got, true
	}
	if full == nil || !full.Contains(cs.Version) {
		return 0, false
	}
	c := t.chunks[k]
	if c == nil {
		c = &rangeset.Set{}
		t.chunks[k] = c
	} else if c.ContainsRange(cs.Seqs) {
		return 0, false // a duplicate chunk
	}
	c.Insert(cs.Seqs)
	if c.ContainsRange(patina.Range{Start: 0, End: cs.LastSeq}) {
		full.Remove(patina.Range{Start: cs.Version, End: cs.Version})
		delete(t.chunks, k)
		got++
	}
	return got, true
}

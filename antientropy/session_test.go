package antientropy

import (
	"errors"
	"testing"

	"github.com/patinadb/patina"
)

// drive runs s against a peer holding remote, answering needs the way a
// server does: Serve, then one changeset per version (all seqs 0..=1) or per
// requested seq range. It returns the session's final error.
func drive(t *testing.T, s *Session, remote patina.SyncState) error {
	t.Helper()
	for steps := 0; steps < 100; steps++ {
		msgs := s.Ready()
		if len(msgs) == 0 {
			t.Fatal("session stalled: Ready returned nothing while nothing is in flight")
		}
		s.Advance()
		for _, m := range msgs {
			switch m := m.(type) {
			case SendStateRequest:
				mustStep(t, s, GotState{State: remote})
			case SendNeeds:
				for _, n := range Serve(m.Needs, remote) {
					if n.IsPartial() {
						for _, r := range n.Seqs {
							mustStep(t, s, GotChangeset{Set: patina.Changeset{Actor: n.Actor, Version: n.Versions.Start, Seqs: r, LastSeq: 9}})
						}
						continue
					}
					for v := n.Versions.End; v >= n.Versions.Start; v-- {
						mustStep(t, s, GotChangeset{Set: patina.Changeset{Actor: n.Actor, Version: v, Seqs: patina.Range{Start: 0, End: 1}, LastSeq: 1}})
					}
				}
				mustStep(t, s, GotDone{})
			case Done:
				if !s.Finished() {
					t.Fatal("Done produced but session not finished")
				}
				return m.Err
			}
		}
	}
	t.Fatal("session did not finish in 100 steps")
	return nil
}

func mustStep(t *testing.T, s *Session, ev Event) {
	t.Helper()
	if err := s.Step(ev); err != nil {
		t.Fatalf("Step(%T): %v", ev, err)
	}
}

func TestSession_roundWithPlanner(t *testing.T) {
	local := MustState(t, "actor=a heads=a:4,b:10,c:3 gaps=b:2-4 partials=b:7@0/9")
	peers := []patina.SyncState{
		MustState(t, "actor=b heads=b:40,c:3 gaps=b:3 partials=b:7@1-4/9"),
		MustState(t, "actor=c heads=b:35,c:12"),
		MustState(t, "actor=d heads=b:44 gaps=b:41-43"),
	}
	p := NewPlanner(local, 0)
	var requested, received uint64
	for _, remote := range peers {
		s := NewSession(local, p, SessionConfig{MaxInflightNeeds: 2})
		if err := drive(t, s, remote); err != nil {
			t.Fatalf("sync with %s: %v", actorName(remote.Actor), err)
		}
		st := s.Stats()
		if st.VersionsUnanswered != 0 || st.Unsolicited != 0 || st.VersionsReceived != st.VersionsRequested {
			t.Errorf("peer %s: stats %+v: every planned need should be answered exactly", actorName(remote.Actor), st)
		}
		requested += st.VersionsRequested
		received += st.VersionsReceived
	}
	// b: 11..=40, 2 and 4 from b, 3 from c, 7 seqs 1..=4 from b and 5..=9
	// from c (a partial need counts once per peer); c: 4..=12 from c; b:44
	// from d.
	if want := uint64(30 + 2 + 1 + 1 + 1 + 9 + 1); requested != want {
		t.Errorf("requested %d versions, want %d", requested, want)
	}
	if got := fmtOutstanding(p.Outstanding()); got != "b:3" {
		t.Errorf("Outstanding = %q, want b:3 (41..=43 held by nobody)", got)
	}
}

func TestSession_errors(t *testing.T) {
	cause := errors.New("stream reset")
	s := NewSession(MustState(t, "actor=a"), nil, SessionConfig{})
	s.Ready()
	s.Advance()
	mustStep(t, s, GotState{State: MustState(t, "actor=b heads=b:3")})
	s.Ready()
	s.Advance()
	mustStep(t, s, GotError{Err: cause})
	msgs := s.Ready()
	if len(msgs) != 1 {
		t.Fatalf("Ready = %v, want one Done", msgs)
	}
	done, ok := msgs[0].(Done)
	if !ok || !errors.Is(done.Err, cause) {
		t.Fatalf("Ready = %#v, want Done wrapping %v", msgs[0], cause)
	}
	if err := s.Step(GotDone{}); !errors.Is(err, ErrFinished) {
		t.Fatalf("Step after Done = %v, want ErrFinished", err)
	}
	if err := NewSession(MustState(t, "actor=a"), nil, SessionConfig{}).Step(nil); err == nil {
		t.Fatal("Step(nil) accepted")
	}
}

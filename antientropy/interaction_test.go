package antientropy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the actual output")

// TestInteraction runs the scripted session interactions of testdata/*.txt,
// in the style of etcd-io/raft's interaction tests. A script is a sequence of
// blocks:
//
//	# comment
//	command args...
//	----
//	expected output
//
// ended by a blank line. Run with -rewrite to regenerate the expected output.
//
// Commands (states use the notation of parseState):
//
//	local STATE                       set the local state for what follows
//	planner [max=N]                   start a round's planner over local
//	session NAME [max=N] [inflight=N] [planner]   start a session and select it
//	use NAME                          select a session
//	ready                             print the selected session's Ready
//	advance                           Advance
//	state STATE                       Step(GotState)
//	changeset ACTOR:V SEQS/LAST [changes=N]   Step(GotChangeset) of a chunk
//	cleared ACTOR:V-W                 Step(GotChangeset) of cleared versions
//	done                              Step(GotDone)
//	error MESSAGE...                  Step(GotError)
//	stats                             print Stats
//	outstanding                       print the planner's Outstanding
func TestInteraction(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt scripts")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out strings.Builder
	in := &interp{sessions: map[string]*Session{}}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := i + 1
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", file, cmdLine, line)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		got, err := in.run(line)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", file, cmdLine, line, err)
		}
		if got == "" {
			got = "ok"
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n", line, got)
		if i < len(lines) {
			out.WriteString("\n")
		}
		if w := strings.Join(want, "\n"); !*rewrite && got != w {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", file, cmdLine, line, got, w)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type interp struct {
	local    patina.SyncState
	planner  *Planner
	sessions map[string]*Session
	cur      *Session
}

// run executes one command and returns its output; err reports a malformed
// script, not a session error (those are output).
func (in *interp) run(line string) (string, error) {
	cmd, rest, _ := strings.Cut(line, " ")
	args := strings.Fields(rest)
	opts := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			opts[k] = v
		} else {
			opts[a] = ""
		}
	}
	num := func(key string) (uint64, error) {
		v, ok := opts[key]
		if !ok {
			return 0, nil
		}
		return strconv.ParseUint(v, 10, 64)
	}
	if cmd != "local" && cmd != "planner" && cmd != "session" && in.cur == nil && cmd != "outstanding" {
		return "", errors.New("no session selected")
	}
	switch cmd {
	case "local":
		st, err := parseState(rest)
		in.local = st
		return "", err
	case "planner":
		max, err := num("max")
		in.planner = NewPlanner(in.local, max)
		return "", err
	case "session":
		if len(args) == 0 {
			return "", errors.New("session needs a name")
		}
		max, err := num("max")
		if err != nil {
			return "", err
		}
		inflight, err := num("inflight")
		if err != nil {
			return "", err
		}
		var p *Planner
		if _, ok := opts["planner"]; ok {
			if in.planner == nil {
				return "", errors.New("no planner")
			}
			p = in.planner
		}
		in.cur = NewSession(in.local, p, SessionConfig{MaxVersions: max, MaxInflightNeeds: int(inflight)})
		in.sessions[args[0]] = in.cur
		return "", nil
	case "use":
		s, ok := in.sessions[rest]
		if !ok {
			return "", fmt.Errorf("no session %q", rest)
		}
		in.cur = s
		return "", nil
	case "ready":
		return fmtMessages(in.cur.Ready()), nil
	case "advance":
		in.cur.Advance()
		return "", nil
	case "state":
		st, err := parseState(rest)
		if err != nil {
			return "", err
		}
		return stepResult(in.cur.Step(GotState{State: st})), nil
	case "changeset":
		if len(args) < 2 {
			return "", errors.New("changeset ACTOR:V SEQS/LAST [changes=N]")
		}
		name, vs, _ := strings.Cut(args[0], ":")
		v, err := strconv.ParseUint(vs, 10, 64)
		if err != nil {
			return "", err
		}
		seqs, last, _ := strings.Cut(args[1], "/")
		rs, err := parseRanges(seqs)
		if err != nil {
			return "", err
		}
		l, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			return "", err
		}
		n, err := num("changes")
		if err != nil {
			return "", err
		}
		cs := patina.Changeset{Actor: actor(name[0]), Version: v, Seqs: rs[0], LastSeq: l}
		for i := range n {
			cs.Changes = append(cs.Changes, patina.Change{Table: "t", PK: []byte{byte(i)}, Column: "c", Value: patina.Text("v"), Seq: rs[0].Start + i})
		}
		return stepResult(in.cur.Step(GotChangeset{Set: cs})), nil
	case "cleared":
		name, vs, _ := strings.Cut(rest, ":")
		rs, err := parseRanges(vs)
		if err != nil {
			return "", err
		}
		cs := patina.Changeset{Actor: actor(name[0]), Version: rs[0].Start, ClearedTo: rs[0].End, Cleared: true}
		return stepResult(in.cur.Step(GotChangeset{Set: cs})), nil
	case "done":
		return stepResult(in.cur.Step(GotDone{})), nil
	case "error":
		return stepResult(in.cur.Step(GotError{Err: errors.New(rest)})), nil
	case "stats":
		s := in.cur.Stats()
		return fmt.Sprintf("needs=%d requested=%d received=%d unanswered=%d changesets=%d changes=%d unsolicited=%d bytes=%d finished=%t",
			s.NeedsSent, s.VersionsRequested, s.VersionsReceived, s.VersionsUnanswered, s.Changesets, s.Changes, s.Unsolicited, s.BytesEstimated, in.cur.Finished()), nil
	case "outstanding":
		if in.planner == nil {
			return "", errors.New("no planner")
		}
		if o := fmtOutstanding(in.planner.Outstanding()); o != "" {
			return o, nil
		}
		return "(none)", nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func stepResult(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func fmtMessages(ms []Message) string {
	if len(ms) == 0 {
		return "(none)"
	}
	var lines []string
	for _, m := range ms {
		switch m := m.(type) {
		case SendStateRequest:
			lines = append(lines, "SendStateRequest")
		case SendNeeds:
			lines = append(lines, "SendNeeds "+fmtNeeds(m.Needs))
		case Done:
			if m.Err != nil {
				lines = append(lines, "Done err="+m.Err.Error())
			} else {
				lines = append(lines, "Done")
			}
		default:
			lines = append(lines, fmt.Sprintf("%T", m))
		}
	}
	return strings.Join(lines, "\n")
}

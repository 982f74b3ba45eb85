package antientropy

import (
	"testing"

	"github.com/patinadb/patina"
)

func TestNeeds(t *testing.T) {
	tests := []struct {
		name          string
		local, remote string
		max           uint64
		want          string
	}{
		{"in sync", "actor=a heads=b:5", "actor=b heads=b:5", 0, ""},
		{"empty remote", "actor=a heads=b:5", "actor=b", 0, ""},
		{"head ahead", "actor=a heads=b:5", "actor=b heads=b:8", 0, "b:6..=8"},
		{"never seen actor", "actor=a", "actor=b heads=b:3", 0, "b:1..=3"},
		{"local behind remote", "actor=a heads=b:9", "actor=b heads=b:5", 0, ""},
		{"own actor skipped", "actor=a heads=a:2", "actor=b heads=a:9", 0, ""},
		{"own gaps skipped", "actor=a heads=a:9 gaps=a:2-4", "actor=b heads=a:9", 0, ""},
		{"local gap", "actor=a heads=b:9 gaps=b:3-4", "actor=b heads=b:9", 0, "b:3..=4"},
		{"local gap and head", "actor=a heads=b:9 gaps=b:3-4", "actor=b heads=b:12", 0, "b:10..=12 b:3..=4"},
		{"remote gap cuts", "actor=a heads=b:2", "actor=b heads=b:9 gaps=b:4-6", 0, "b:7..=9 b:3..=3"},
		{"remote gap covers local gap", "actor=a heads=b:9 gaps=b:3-4", "actor=b heads=b:9 gaps=b:2-5", 0, ""},
		{"remote partial not had", "actor=a heads=b:2", "actor=b heads=b:5 partials=b:4@0/3", 0, "b:5..=5 b:3..=3"},
		{"remote partial above local head, local none", "actor=a", "actor=b heads=b:1 partials=b:1@0/3", 0, ""},
		{"local partial, remote full", "actor=a heads=b:5 partials=b:4@0-1+3/5", "actor=b heads=b:5", 0, "b:4[2..=2,4..=5]"},
		{"local partial, remote partial overlaps", "actor=a heads=b:5 partials=b:4@0-1/5", "actor=b heads=b:5 partials=b:4@1-3/5", 0, "b:4[2..=3]"},
		{"local partial, remote partial has nothing new", "actor=a heads=b:5 partials=b:4@0-3/5", "actor=b heads=b:5 partials=b:4@1-2/5", 0, ""},
		{"local partial, remote gap", "actor=a heads=b:5 partials=b:4@0/5", "actor=b heads=b:5 gaps=b:4", 0, ""},
		{"local partial, remote head below", "actor=a heads=b:5 partials=b:4@0/5", "actor=b heads=b:3", 0, ""},
		{"local partial complete is ignored", "actor=a heads=b:5 partials=b:4@0-5/5", "actor=b heads=b:5", 0, ""},
		{"local partial above head excluded from full", "actor=a heads=b:2 partials=b:4@0/1", "actor=b heads=b:6", 0, "b:5..=6 b:4[1..=1] b:3..=3"},
		{"chunked newest first", "actor=a", "actor=b heads=b:25", 0, "b:16..=25 b:6..=15 b:1..=5"},
		{"chunk size", "actor=a heads=b:1", "actor=b heads=b:8", 3, "b:6..=8 b:3..=5 b:2..=2"},
		{"chunk exact", "actor=a", "actor=b heads=b:20", 10, "b:11..=20 b:1..=10"},
		{"partials ordered among chunks", "actor=a heads=b:12 gaps=b:1-9 partials=b:11@0/1", "actor=b heads=b:14", 3, "b:13..=14 b:11[1..=1] b:7..=9 b:4..=6 b:1..=3"},
		{
			"interleaved across actors by id",
			"actor=a heads=c:5",
			"actor=b heads=c:30,b:22,d:3",
			10,
			"b:13..=22 c:21..=30 d:1..=3 b:3..=12 c:11..=20 b:1..=2 c:6..=10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmtNeeds(Needs(MustState(t, tt.local), MustState(t, tt.remote), tt.max))
			if got != tt.want {
				t.Errorf("Needs:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNeeds_maxUint64Chunks(t *testing.T) {
	local := patina.SyncState{Actor: actor('a'), Heads: map[patina.ActorID]patina.Version{actor('b'): ^uint64(0) - 3}}
	remote := patina.SyncState{Actor: actor('b'), Heads: map[patina.ActorID]patina.Version{actor('b'): ^uint64(0)}}
	got := Needs(local, remote, 2)
	want := []patina.Need{
		{Actor: actor('b'), Versions: patina.Range{Start: ^uint64(0) - 1, End: ^uint64(0)}},
		{Actor: actor('b'), Versions: patina.Range{Start: ^uint64(0) - 2, End: ^uint64(0) - 2}},
	}
	if fmtNeeds(got) != fmtNeeds(want) {
		t.Fatalf("got %s, want %s", fmtNeeds(got), fmtNeeds(want))
	}
}

func TestServe(t *testing.T) {
	const have = "actor=s heads=b:20,s:4 gaps=b:5-7 partials=b:10@0-2+6/8"
	tests := []struct {
		name  string
		needs []patina.Need
		want  string
	}{
		{"held", needs(full('b', 1, 4), full('s', 1, 4)), "b:1..=4 s:1..=4"},
		{"above head", needs(full('b', 18, 25)), "b:18..=20"},
		{"unknown actor", needs(full('c', 1, 3)), ""},
		{"split around gap and partial", needs(full('b', 1, 12)), "b:11..=12 b:8..=9 b:1..=4"},
		{"partial of full version", needs(part('b', 3, 1, 2)), "b:3[1..=2]"},
		{"partial of own partial", needs(part('b', 10, 1, 7)), "b:10[1..=2,6..=6]"},
		{"partial of own partial, nothing held", needs(part('b', 10, 3, 5)), ""},
		{"partial of gap", needs(part('b', 6, 0, 1)), ""},
		{"partial above head", needs(part('b', 21, 0, 1)), ""},
		{"empty range", needs(full('b', 3, 2)), ""},
		{"order kept", needs(full('b', 15, 16), part('b', 3, 0, 0), full('s', 2, 2)), "b:15..=16 b:3[0..=0] s:2..=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmtNeeds(Serve(tt.needs, MustState(t, have)))
			if got != tt.want {
				t.Errorf("Serve:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func needs(ns ...patina.Need) []patina.Need { return ns }

func full(a byte, lo, hi uint64) patina.Need {
	return patina.Need{Actor: actor(a), Versions: patina.Range{Start: lo, End: hi}}
}

func part(a byte, v, lo, hi uint64) patina.Need {
	return patina.Need{Actor: actor(a), Versions: patina.Range{Start: v, End: v}, Seqs: []patina.Range{{Start: lo, End: hi}}}
}

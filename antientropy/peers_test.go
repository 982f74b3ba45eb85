package antientropy

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestChoosePeers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := func(name byte, region string, lastSync time.Duration, score int) Candidate {
		var ls time.Time
		if lastSync >= 0 {
			ls = t0.Add(lastSync)
		}
		return Candidate{Actor: actor(name), Region: region, LastSync: ls, Score: score}
	}
	names := func(cs []Candidate) string {
		var b strings.Builder
		for _, c := range cs {
			b.WriteString(actorName(c.Actor))
		}
		return b.String()
	}
	tests := []struct {
		name  string
		cands []Candidate
		n     int
		want  string
	}{
		{"none", nil, 3, ""},
		{"n zero", []Candidate{c('a', "ams", 0, 0)}, 0, ""},
		{"score first", []Candidate{c('a', "ams", 0, 1), c('b', "ams", 0, 5), c('c', "ams", 0, 3)}, 2, "bc"},
		{"then least recently synced, never first", []Candidate{c('a', "ams", 2*time.Second, 0), c('b', "ams", -1, 0), c('c', "ams", time.Second, 0)}, 3, "bca"},
		{"then local region", []Candidate{c('a', "syd", 0, 0), c('b', "ams", 0, 0), c('c', "syd", 0, 0)}, 1, "b"},
		{"score beats recency", []Candidate{c('a', "ams", -1, 0), c('b', "syd", time.Hour, 2)}, 1, "b"},
		{"fewer than n", []Candidate{c('a', "ams", 0, 0)}, 5, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.cands)
			got := names(ChoosePeers(tt.cands, tt.n, "ams", rand.New(rand.NewPCG(1, 1))))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !slices.Equal(in, tt.cands) {
				t.Errorf("ChoosePeers modified its input")
			}
		})
	}
}

func TestChoosePeers_randomTies(t *testing.T) {
	var cands []Candidate
	for name := byte('a'); name <= 'h'; name++ {
		cands = append(cands, Candidate{Actor: actor(name), Region: "ams"})
	}
	pick := func(seed uint64) string {
		var b strings.Builder
		for _, c := range ChoosePeers(cands, 3, "ams", rand.New(rand.NewPCG(seed, 0))) {
			b.WriteString(actorName(c.Actor))
		}
		return b.String()
	}
	if pick(7) != pick(7) {
		t.Fatal("same seed, different choice")
	}
	seen := map[string]bool{}
	for seed := range uint64(50) {
		seen[pick(seed)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("ties broken at random should vary with the seed; saw %d choices", len(seen))
	}
}

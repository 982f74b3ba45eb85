package netsim

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rttCSV is shared/data/rtt_ms.csv: one row per ordered region pair with the
// great-circle distance and the measured round-trip time in milliseconds.
//
//go:embed rtt_ms.csv
var rttCSV string

// regionPair is an ordered (from, to) key of the RTT matrix.
type regionPair struct{ from, to string }

// rttMatrix is a parsed RTT matrix.
type rttMatrix struct {
	regions []string                     // sorted
	rtt     map[regionPair]time.Duration // as listed; lookups try both orders
}

var defaultMatrix = mustParseMatrix(rttCSV)

// mustParseMatrix parses the embedded CSV. The file is part of the package, so
// a malformed row is a build defect and panics (TestRegions covers it).
func mustParseMatrix(text string) *rttMatrix {
	m, err := parseMatrix(text)
	if err != nil {
		panic("netsim: embedded rtt_ms.csv: " + err.Error())
	}
	return m
}

func parseMatrix(text string) (*rttMatrix, error) {
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse csv: %w", err)
	}
	if len(rows) < 2 || !slices.Equal(rows[0], []string{"from", "to", "distance_km", "rtt_ms"}) {
		return nil, fmt.Errorf("want header from,to,distance_km,rtt_ms, got %q", rows[0])
	}
	m := &rttMatrix{rtt: make(map[regionPair]time.Duration, len(rows)-1)}
	seen := map[string]bool{}
	for i, row := range rows[1:] {
		ms, err := strconv.ParseFloat(row[3], 64)
		if err != nil || ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
			return nil, fmt.Errorf("line %d: bad rtt_ms %q", i+2, row[3])
		}
		m.rtt[regionPair{row[0], row[1]}] = time.Duration(math.Round(ms * float64(time.Millisecond)))
		for _, r := range row[:2] {
			if !seen[r] {
				seen[r] = true
				m.regions = append(m.regions, r)
			}
		}
	}
	slices.Sort(m.regions)
	for _, a := range m.regions {
		for _, b := range m.regions {
			if _, ok := m.lookup(a, b); !ok {
				return nil, fmt.Errorf("no rtt for %s-%s", a, b)
			}
		}
	}
	return m, nil
}

func (m *rttMatrix) lookup(from, to string) (time.Duration, bool) {
	if d, ok := m.rtt[regionPair{from, to}]; ok {
		return d, true
	}
	d, ok := m.rtt[regionPair{to, from}]
	return d, ok
}

// Regions returns the region codes of the embedded RTT matrix (iad, fra, syd,
// ...), sorted. The caller may modify the returned slice.
func Regions() []string { return slices.Clone(defaultMatrix.regions) }

// RTT returns the round-trip time between two regions from the embedded
// matrix, in either order; a region to itself gives the matrix diagonal
// (1 ms: two machines in one data center). ok is false for an unknown region.
func RTT(from, to string) (time.Duration, bool) { return defaultMatrix.lookup(from, to) }

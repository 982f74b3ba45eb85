package sqlite

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/patinadb/patina"
)

// setRapidChecks lowers rapid's number of checks for one test unless the
// -rapid.checks flag was given, so the package stays fast without flags.
func setRapidChecks(t *testing.T, n int) {
	t.Helper()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.checks" })
	f := flag.Lookup("rapid.checks")
	if given || f == nil {
		return
	}
	old := f.Value.String()
	if err := flag.Set("rapid.checks", strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("rapid.checks", old) })
}

// openScratch opens a store in a fresh directory with one read connection;
// close removes it.
func openScratch(t rapid.TB, schema string) (db *DB, closeFn func()) {
	dir, err := os.MkdirTemp("", "patina-prop-")
	if err != nil {
		t.Fatal(err)
	}
	db = NewDB(filepath.Join(dir, "state.db"))
	db.ReadConns = 1
	if err := db.Open(); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	if err := db.ApplySchema([]SchemaFile{{Name: "test.sql", SQL: schema}}); err != nil {
		db.Close()
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// propOp is one statement template of the random workload.
type propOp struct {
	sql  string
	args func(t *rapid.T) []patina.Value
}

func pick(t *rapid.T, label string, vs ...patina.Value) patina.Value {
	return vs[rapid.IntRange(0, len(vs)-1).Draw(t, label)]
}

var (
	machineIDs = []patina.Value{patina.Text("a"), patina.Text("b"), patina.Text("c")}
	names      = []patina.Value{patina.Text(""), patina.Text("x"), patina.Text("y"), patina.Text("zz")}
	states     = []patina.Value{patina.Null(), patina.Text("up"), patina.Text("down"), patina.Int(1), patina.Real(2.5), patina.Blob([]byte{0})}
	cpus       = []patina.Value{patina.Int(1), patina.Int(2), patina.Int(3)}
	pairAs     = []patina.Value{patina.Int(1), patina.Int(-2)}
	pairBs     = []patina.Value{patina.Blob([]byte{}), patina.Blob([]byte{1})}
	reals      = []patina.Value{patina.Null(), patina.Real(0.5), patina.Real(-1), patina.Real(1e300), patina.Real(math.Inf(1)), patina.Real(math.Copysign(0, -1))}
	kvKeys     = []patina.Value{patina.Blob([]byte{}), patina.Blob([]byte{0}), patina.Blob([]byte{0xff, 0})}
	kvVals     = []patina.Value{patina.Null(), patina.Int(1), patina.Real(2.5), patina.Text("a"), patina.Text("zz"), patina.Text(""), patina.Text("12"), patina.Blob([]byte{0}), patina.Int(math.MinInt64)}
)

var propOps = []propOp{
	{`INSERT OR IGNORE INTO machines (id, name, state, cpus) VALUES (?, ?, ?, ?)`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "id", machineIDs...), pick(t, "name", names...), pick(t, "state", states...), pick(t, "cpus", cpus...)}
	}},
	{`UPDATE machines SET state = ? WHERE id = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "state", states...), pick(t, "id", machineIDs...)}
	}},
	{`UPDATE machines SET name = ?, cpus = ? WHERE id = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "name", names...), pick(t, "cpus", cpus...), pick(t, "id", machineIDs...)}
	}},
	{`DELETE FROM machines WHERE id = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "id", machineIDs...)}
	}},
	{`INSERT INTO machines (id, state) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, cpus = cpus + 1`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "id", machineIDs...), pick(t, "state", states...)}
	}},
	{`INSERT OR REPLACE INTO machines (id, name) VALUES (?, ?)`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "id", machineIDs...), pick(t, "name", names...)}
	}},
	{`UPDATE OR REPLACE machines SET id = ? WHERE id = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "to", machineIDs...), pick(t, "from", machineIDs...)}
	}},
	{`INSERT OR IGNORE INTO pairs (a, b, v) VALUES (?, ?, ?)`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "a", pairAs...), pick(t, "b", pairBs...), pick(t, "v", reals...)}
	}},
	{`UPDATE pairs SET v = ? WHERE a = ? AND b = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "v", reals...), pick(t, "a", pairAs...), pick(t, "b", pairBs...)}
	}},
	{`DELETE FROM pairs WHERE a = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "a", pairAs...)}
	}},
	{`REPLACE INTO pairs (a, b, v) VALUES (?, ?, ?)`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "a", pairAs...), pick(t, "b", pairBs...), pick(t, "v", reals...)}
	}},
	{`INSERT OR IGNORE INTO kv (k, v) VALUES (?, ?)`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "k", kvKeys...), pick(t, "v", kvVals...)}
	}},
	{`UPDATE kv SET v = ? WHERE k = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "v", kvVals...), pick(t, "k", kvKeys...)}
	}},
	{`DELETE FROM kv WHERE k = ?`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "k", kvKeys...)}
	}},
	{`INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, func(t *rapid.T) []patina.Value {
		return []patina.Value{pick(t, "k", kvKeys...), pick(t, "v", kvVals...)}
	}},
}

// TestDB_Property_Converges runs a random workload on 3-5 replicas, moves
// changesets in random order with duplicates, drops and tiny chunks, and
// syncs pairs through ChangesFor and PartialChangesFor. Once everything is
// delivered, every replica must hold the same rows and clocks, and those
// must equal what a naive model of the merge rules computes from every
// changeset the replicas committed.
func TestDB_Property_Converges(t *testing.T) {
	checks := 25
	if raceEnabled {
		checks = 3
	}
	if testing.Short() {
		checks = 5
	}
	setRapidChecks(t, checks)
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		n := rapid.IntRange(3, 5).Draw(rt, "nodes")
		nodes := make([]*DB, n)
		for i := range nodes {
			db, closeFn := openScratch(rt, testSchema)
			defer closeFn()
			var a patina.ActorID
			copy(a[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(rt, "actor"))
			a[0] = byte(i) // distinct
			setActor(rt, db, a)
			nodes[i] = db
		}
		queues := make([][]patina.Changeset, n) // in flight to each node
		var committed []patina.Changeset
		maxSteps := 40
		if raceEnabled {
			maxSteps = 20
		}
		steps := rapid.IntRange(5, maxSteps).Draw(rt, "steps")
		for step := 0; step < steps; step++ {
			switch rapid.IntRange(0, 9).Draw(rt, "kind") {
			case 0, 1, 2, 3, 4: // a local transaction
				i := rapid.IntRange(0, n-1).Draw(rt, "writer")
				var stmts []patina.Statement
				for k := rapid.IntRange(1, 3).Draw(rt, "ops"); k > 0; k-- {
					op := propOps[rapid.IntRange(0, len(propOps)-1).Draw(rt, "op")]
					stmts = append(stmts, patina.Statement{SQL: op.sql, Params: op.args(rt)})
				}
				res, err := nodes[i].Transact(ctx, stmts)
				if err != nil {
					rt.Fatalf("transact on node %d: %v", i, err)
				}
				cs := res.Changeset
				rt.Logf("node %d transact %s -> %s", i, renderStmts(stmts), renderCS(cs))
				if cs == nil {
					continue
				}
				committed = append(committed, *cs)
				// Broadcast: whole, or in tiny chunks, some lost, some twice.
				for j := range nodes {
					if j == i {
						continue
					}
					parts := []patina.Changeset{*cs}
					if !cs.Cleared && rapid.Bool().Draw(rt, "chunked") {
						parts = Chunk(cs.Actor, cs.Version, cs.Changes, cs.LastSeq, cs.TS, rapid.IntRange(1, 300).Draw(rt, "maxBytes"))
					}
					for _, p := range parts {
						switch rapid.IntRange(0, 5).Draw(rt, "fate") {
						case 0: // lost; sync repairs it
						case 1:
							queues[j] = append(queues[j], p, p)
						default:
							queues[j] = append(queues[j], p)
						}
					}
				}
			case 5, 6: // deliver some of a node's queue, in random order
				j := rapid.IntRange(0, n-1).Draw(rt, "receiver")
				q := queues[j]
				if len(q) == 0 {
					continue
				}
				var batch []patina.Changeset
				for k := rapid.IntRange(1, len(q)).Draw(rt, "deliver"); k > 0 && len(q) > 0; k-- {
					x := rapid.IntRange(0, len(q)-1).Draw(rt, "item")
					batch = append(batch, q[x])
					if rapid.IntRange(0, 4).Draw(rt, "keep") > 0 {
						q = slices.Delete(q, x, x+1)
					}
				}
				queues[j] = q
				rt.Logf("node %d applies %s", j, renderCSs(batch))
				MustApply(rt, nodes[j], batch...)
			case 7, 8: // anti-entropy between two nodes
				src := rapid.IntRange(0, n-1).Draw(rt, "src")
				dst := rapid.IntRange(0, n-1).Draw(rt, "dst")
				if src != dst {
					rt.Logf("node %d syncs from node %d", dst, src)
					syncPair(rt, nodes[src], nodes[dst], rapid.IntRange(1, 400).Draw(rt, "syncBytes"))
				}
			case 9: // a restart: bookkeeping reloads from the file
				j := rapid.IntRange(0, n-1).Draw(rt, "restart")
				before := nodes[j].SyncState()
				if err := nodes[j].Close(); err != nil {
					rt.Fatal(err)
				}
				if err := nodes[j].Open(); err != nil {
					rt.Fatal(err)
				}
				assertSameSyncState(rt, before, nodes[j].SyncState())
			}
		}
		// Deliver what is still in flight, shuffled, then sync everyone.
		for j, q := range queues {
			q = slices.Clone(q)
			for k := len(q) - 1; k > 0; k-- {
				x := rapid.IntRange(0, k).Draw(rt, "shuffle")
				q[k], q[x] = q[x], q[k]
			}
			rt.Logf("node %d applies the rest %s", j, renderCSs(q))
			MustApply(rt, nodes[j], q...)
		}
		syncAll(rt, nodes...)
		assertConverged(rt, nodes...)

		// Every node holds every version of every writer, whole.
		heads := map[patina.ActorID]patina.Version{}
		for _, cs := range committed {
			heads[cs.Actor] = max(heads[cs.Actor], cs.Version)
		}
		for i, db := range nodes {
			st := db.SyncState()
			if st.NeedCount() != 0 {
				rt.Fatalf("node %d still needs %d versions: gaps %v partials %v", i, st.NeedCount(), st.Gaps, st.Partials)
			}
			for a, h := range heads {
				if st.Heads[a] != h {
					rt.Fatalf("node %d: head of %s is %d, want %d", i, a, st.Heads[a], h)
				}
			}
			if db.BufferedChanges() != 0 {
				rt.Fatalf("node %d keeps %d buffered changes", i, db.BufferedChanges())
			}
		}

		// The replicas equal the reference model.
		m := newModel()
		for _, cs := range committed {
			m.apply(cs)
		}
		wantData, wantClocks := m.dump(nodes[0].Schema())
		data, clocks := dumpState(rt, nodes[0])
		if !slices.Equal(data, wantData) {
			rt.Fatalf("rows differ from the model:\n%s", diffLines(wantData, data))
		}
		if !slices.Equal(clocks, wantClocks) {
			rt.Fatalf("clocks differ from the model:\n%s", diffLines(wantClocks, clocks))
		}
	})
}

func renderStmts(stmts []patina.Statement) string {
	var parts []string
	for _, st := range stmts {
		sql := st.SQL
		for _, p := range st.Params {
			sql = strings.Replace(sql, "?", p.String(), 1)
		}
		parts = append(parts, sql)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func renderCS(cs *patina.Changeset) string {
	if cs == nil {
		return "nothing"
	}
	if cs.Cleared {
		return fmt.Sprintf("%s cleared %d..=%d", cs.Actor.String()[:4], cs.Version, cs.ClearedTo)
	}
	var parts []string
	for _, c := range cs.Changes {
		pk, _ := UnpackPK(c.PK)
		parts = append(parts, fmt.Sprintf("%d:%s%v.%s=%s@%d/cl%d", c.Seq, c.Table, pk, c.Column, c.Value, c.ColVersion, c.CL))
	}
	return fmt.Sprintf("%s v%d seqs %v last %d {%s}", cs.Actor.String()[:4], cs.Version, cs.Seqs, cs.LastSeq, strings.Join(parts, " "))
}

func renderCSs(css []patina.Changeset) string {
	var parts []string
	for i := range css {
		parts = append(parts, renderCS(&css[i]))
	}
	return strings.Join(parts, "\n\t")
}

func assertSameSyncState(t rapid.TB, a, b patina.SyncState) {
	t.Helper()
	render := func(s patina.SyncState) string {
		var lines []string
		for a, h := range s.Heads {
			lines = append(lines, fmt.Sprintf("head %s %d", a, h))
		}
		for a, g := range s.Gaps {
			lines = append(lines, fmt.Sprintf("gaps %s %v", a, g))
		}
		for a, ps := range s.Partials {
			for v, p := range ps {
				lines = append(lines, fmt.Sprintf("partial %s %d %v %d", a, v, p.Have, p.LastSeq))
			}
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	if ra, rb := render(a), render(b); ra != rb {
		t.Fatalf("sync state changed across restart:\n%s\n---\n%s", ra, rb)
	}
}

// model is a naive reference of the merge rules: per row the causal length
// and the sentinel write that set it, per cell the winning write.
type model struct {
	rows map[string]map[string]*modelRow // table -> packed pk -> row
}

type modelWrite struct {
	colVersion int64
	value      patina.Value
	site       patina.ActorID
	version    patina.Version
	seq        patina.Seq
}

type modelRow struct {
	pk       []patina.Value
	cl       int64
	sentinel *modelWrite // nil while only column changes told the cl
	cells    map[string]modelWrite
}

func newModel() *model { return &model{rows: map[string]map[string]*modelRow{}} }

func (m *model) apply(cs patina.Changeset) {
	for _, c := range cs.Changes {
		tbl := m.rows[c.Table]
		if tbl == nil {
			tbl = map[string]*modelRow{}
			m.rows[c.Table] = tbl
		}
		r := tbl[string(c.PK)]
		if r == nil {
			pk, err := UnpackPK(c.PK)
			if err != nil {
				panic(err)
			}
			r = &modelRow{pk: pk, cells: map[string]modelWrite{}}
			tbl[string(c.PK)] = r
		}
		w := modelWrite{colVersion: c.ColVersion, value: c.Value, site: cs.Actor, version: cs.Version, seq: c.Seq}
		if c.CL < r.cl {
			continue // an older life of the row
		}
		if c.CL > r.cl {
			// A new life: every cell of the old one is gone.
			r.cl, r.sentinel, r.cells = c.CL, nil, map[string]modelWrite{}
		}
		if c.Column == patina.SentinelColumn {
			if r.sentinel == nil || bytes.Compare(w.site[:], r.sentinel.site[:]) > 0 {
				r.sentinel = &w
			}
			continue
		}
		old, ok := r.cells[c.Column]
		if !ok || modelWins(w, old) {
			r.cells[c.Column] = w
		}
	}
}

// modelWins: more edits win; then the larger value in SQLite's order (NULL,
// numbers, TEXT, BLOB; an INTEGER above an equal REAL, -0.0 below 0.0); then
// the larger site.
func modelWins(a, b modelWrite) bool {
	if a.colVersion != b.colVersion {
		return a.colVersion > b.colVersion
	}
	if c := naiveCompare(a.value, b.value); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.site[:], b.site[:]) > 0
}

func naiveCompare(a, b patina.Value) int {
	rank := func(v patina.Value) int {
		switch v.Type {
		case patina.TypeNull:
			return 0
		case patina.TypeInteger, patina.TypeReal:
			return 1
		case patina.TypeText:
			return 2
		}
		return 3
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	switch rank(a) {
	case 0:
		return 0
	case 1:
		num := func(v patina.Value) *big.Float {
			if v.Type == patina.TypeInteger {
				return new(big.Float).SetInt64(v.Int)
			}
			return new(big.Float).SetFloat64(v.Float)
		}
		if c := num(a).Cmp(num(b)); c != 0 {
			return c
		}
		switch {
		case a.Type != b.Type && a.Type == patina.TypeReal:
			return -1
		case a.Type != b.Type:
			return 1
		case a.Type == patina.TypeReal && math.Signbit(a.Float) != math.Signbit(b.Float):
			if math.Signbit(a.Float) {
				return -1
			}
			return 1
		}
		return 0
	}
	return bytes.Compare(a.Bytes, b.Bytes)
}

// dump renders the model like dumpState renders a store.
func (m *model) dump(schema *Schema) (data, clocks []string) {
	defaults := map[string]patina.Value{"machines.name": patina.Text(""), "machines.cpus": patina.Int(1)}
	for name, rows := range m.rows {
		t := schema.Tables[name]
		for _, r := range rows {
			pk := make([]string, len(r.pk))
			for i, v := range r.pk {
				pk[i] = v.String()
			}
			prefix := name + ":" + strings.Join(pk, "|") + "|"
			line := func(cid string, w modelWrite) string {
				return prefix + fmt.Sprintf("%q|%d|%d|%s|%d", cid, w.colVersion, w.version, w.site, w.seq)
			}
			if r.sentinel == nil {
				clocks = append(clocks, prefix+"(no sentinel write at cl "+strconv.FormatInt(r.cl, 10)+")")
			} else {
				clocks = append(clocks, line(patina.SentinelColumn, *r.sentinel))
			}
			for cid, w := range r.cells {
				clocks = append(clocks, line(cid, w))
			}
			if r.cl%2 == 0 {
				continue
			}
			vals := make([]string, 0, len(t.Columns))
			for _, c := range t.Columns {
				if c.PK > 0 {
					vals = append(vals, r.pk[c.PK-1].String())
				} else if w, ok := r.cells[c.Name]; ok {
					vals = append(vals, w.value.String())
				} else {
					vals = append(vals, defaults[name+"."+c.Name].String())
				}
			}
			data = append(data, name+":"+strings.Join(vals, "|"))
		}
	}
	sort.Strings(data)
	sort.Strings(clocks)
	return data, clocks
}

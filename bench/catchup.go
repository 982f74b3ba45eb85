package bench

import (
	"context"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/testcluster"
	"github.com/patinadb/patina/wire"
)

// CatchupOptions configures the catch-up benchmark.
type CatchupOptions struct {
	Changes int // cells written while the node is away; default 100,000
	PerTx   int // rows per transaction; default 100 (4 cells each)
}

// CatchupResult is the outcome; JSON keys per issue #5.
type CatchupResult struct {
	ChangesMissed    int     `json:"changes_missed"`
	VersionsMissed   int     `json:"versions_missed"`
	Seconds          float64 `json:"seconds"`
	BytesTransferred int64   `json:"bytes_transferred"`
	BytesMissing     int64   `json:"bytes_missing"`
	Ratio            float64 `json:"ratio"`
}

// Catchup takes one node of a two-node cluster offline, writes Changes cells
// on the other (rows overwritten as well as new), brings it back and
// measures how long sync takes and how many bytes cross the network against
// the encoded size of exactly what it lacks (INCIDENTS.md #7).
func Catchup(tb testcluster.TB, o CatchupOptions) (CatchupResult, error) {
	if o.Changes <= 0 {
		o.Changes = 100_000
	}
	if o.PerTx <= 0 {
		o.PerTx = 100
	}
	c := testcluster.New(tb, testcluster.Config{Nodes: 2, Regions: []string{"iad", "fra"},
		Schema: `CREATE TABLE services (id TEXT NOT NULL PRIMARY KEY, name TEXT, port INTEGER, weight REAL, meta BLOB);`})
	testcluster.WaitFor(tb, 30*time.Second, "membership", func() (bool, string) { return c.MembersSeen(1) })
	c.Kill(1)
	ctx := context.Background()
	rows := o.Changes / 4
	var versions []patina.Version
	for base := 0; base < rows; base += o.PerTx {
		params := make([]patina.Value, 0, 5*o.PerTx)
		n := min(o.PerTx, rows-base)
		for i := base; i < base+n; i++ {
			params = append(params, benchRow(i)...)
		}
		res, err := c.Nodes[0].Agent.Transact(ctx, []patina.Statement{{SQL: multiInsert(n), Params: params}})
		if err != nil {
			return CatchupResult{}, err
		}
		versions = append(versions, res.Changeset.Version)
	}
	// What the returning node lacks, encoded as compactly as the protocol
	// allows: every missed version whole, one frame each.
	var missing int64
	actor := c.Nodes[0].Store.Actor()
	err := c.Nodes[0].Store.ChangesFor(ctx, actor, patina.Range{Start: versions[0], End: versions[len(versions)-1]}, 1<<30, func(cs patina.Changeset) error {
		missing += int64(len(wire.Marshal(nil, &wire.SyncChangeset{Set: cs})))
		return nil
	})
	if err != nil {
		return CatchupResult{}, err
	}
	before := c.Net.Stats()[c.Nodes[0].Addr].StreamBytesSent
	start := time.Now()
	c.Restart(1)
	testcluster.WaitFor(tb, 300*time.Second, "returning node caught up", func() (bool, string) {
		return c.Converged()
	})
	secs := time.Since(start).Seconds()
	sent := c.Net.Stats()[c.Nodes[0].Addr].StreamBytesSent - before
	return CatchupResult{ChangesMissed: rows * 4, VersionsMissed: len(versions), Seconds: secs,
		BytesTransferred: sent, BytesMissing: missing, Ratio: float64(sent) / float64(missing)}, nil
}

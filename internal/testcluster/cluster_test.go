package testcluster

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/sqlite"
)

func TestCluster_WriteVisibleEverywhere(t *testing.T) {
	c := New(t, Config{Nodes: 3, Regions: []string{"iad", "fra", "syd"}})
	WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(2) })
	c.Exec(0, `INSERT INTO machines (id, name, state) VALUES ('m1', 'web-1', 'started')`)
	WaitFor(t, 10*time.Second, "row on every node", func() (bool, string) {
		for _, n := range c.Nodes {
			rows, err := n.Query(`SELECT name, state FROM machines WHERE id = 'm1'`)
			if err != nil || len(rows) != 1 || rows[0] != `"web-1"|"started"` {
				return false, fmt.Sprintf("node %d: %v %v", n.Index, rows, err)
			}
		}
		return true, ""
	})
	WaitFor(t, 10*time.Second, "convergence", func() (bool, string) { return c.Converged("machines") })
}

func TestCluster_ThirtyNodesLossAndPartitionConverge(t *testing.T) {
	regions := []string{"iad", "ord", "fra", "lhr", "syd", "nrt", "gru", "sin"}
	c := New(t, Config{Nodes: 30, Regions: regions, Seed: 1, Loss: 0.05})
	WaitFor(t, 60*time.Second, "membership", func() (bool, string) { return c.MembersSeen(29) })
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(round int) {
		var wg sync.WaitGroup
		for w := 0; w < 20; w++ {
			i := rng.IntN(len(c.Nodes))
			id := rng.IntN(40)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Exec(i, fmt.Sprintf(`INSERT INTO services (id, name, port) VALUES ('s%d', 'svc-%d-%d', %d)
					ON CONFLICT (id) DO UPDATE SET name = excluded.name, port = excluded.port`, id, round, i, round*100+i))
			}()
		}
		wg.Wait()
	}
	write(0)
	// Split the cluster in two halves by region; both sides keep writing.
	var a, b []string
	for _, n := range c.Nodes {
		if n.Region == "iad" || n.Region == "ord" || n.Region == "gru" || n.Region == "fra" {
			a = append(a, n.Addr)
		} else {
			b = append(b, n.Addr)
		}
	}
	c.Net.Partition(a, b)
	write(1)
	write(2)
	c.Net.Heal()
	write(3)
	WaitFor(t, 60*time.Second, "convergence after heal", func() (bool, string) { return c.Converged("services") })
}

func TestCluster_KilledNodeCatchesUpFromFiles(t *testing.T) {
	c := New(t, Config{Nodes: 4, Regions: []string{"iad", "fra"}})
	WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(3) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 200; k++ {
			c.Exec(0, fmt.Sprintf(`INSERT INTO machines (id, name) VALUES ('m%d', 'n%d')`, k, k))
		}
	}()
	// Kill node 3 mid-stream.
	WaitFor(t, 10*time.Second, "some rows on node 3", func() (bool, string) {
		rows, _ := c.Nodes[3].Query(`SELECT count(*) FROM machines`)
		return len(rows) == 1 && rows[0] != "0", fmt.Sprint(rows)
	})
	c.Kill(3)
	wg.Wait()
	c.Exec(1, `UPDATE machines SET state = 'stopped' WHERE id = 'm1'`)
	c.Restart(3)
	WaitFor(t, 30*time.Second, "restarted node converges", func() (bool, string) { return c.Converged("machines") })
	rows, err := c.Nodes[3].Query(`SELECT count(*), (SELECT state FROM machines WHERE id = 'm1') FROM machines`)
	if err != nil || len(rows) != 1 || rows[0] != `200|"stopped"` {
		t.Fatalf("node 3 after restart: %v %v", rows, err)
	}
}

func TestCluster_OtherClusterIDNeverFed(t *testing.T) {
	c := New(t, Config{Nodes: 4, ClusterIDs: map[int]uint16{3: 7}})
	WaitFor(t, 20*time.Second, "membership of cluster 0", func() (bool, string) {
		for _, n := range c.Nodes[:3] {
			alive := 0
			for _, m := range n.Gossip.Members() {
				if m.State.String() == "alive" {
					alive++
				}
			}
			if alive != 2 {
				return false, fmt.Sprintf("node %d sees %d", n.Index, alive)
			}
		}
		return true, ""
	})
	for k := 0; k < 20; k++ {
		c.Exec(k%3, fmt.Sprintf(`INSERT INTO machines (id) VALUES ('m%d')`, k))
	}
	WaitFor(t, 20*time.Second, "cluster 0 converges", func() (bool, string) {
		for _, n := range c.Nodes[:3] {
			rows, _ := n.Query(`SELECT count(*) FROM machines`)
			if len(rows) != 1 || rows[0] != "20" {
				return false, fmt.Sprintf("node %d: %v", n.Index, rows)
			}
		}
		return true, ""
	})
	// Direct attempts by the foreign node to sync are refused too.
	_, err := c.Nodes[3].Gossip.SyncState(t.Context(), c.Nodes[0].Gossip.Local())
	if err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Fatalf("foreign sync attempt: err = %v, want a refusal naming the cluster", err)
	}
	rows, _ := c.Nodes[3].Query(`SELECT count(*) FROM machines`)
	if rows[0] != "0" || len(c.Nodes[3].Store.SyncState().Heads) != 0 {
		t.Fatalf("foreign node got data: %v heads %v", rows, c.Nodes[3].Store.SyncState().Heads)
	}
	if c.Nodes[3].Gossip.Stats().ClusterRefused+c.Nodes[0].Gossip.Stats().ClusterRefused == 0 {
		t.Fatal("no refusal counted")
	}
}

func TestCluster_BurstLargerThanQueuesConverges(t *testing.T) {
	// Node 2's apply is held while the burst arrives, so its bounded queue
	// must overflow and drop; sync has to repair what was dropped.
	stuck := &stuckApplyStore{gate: make(chan struct{}), entered: make(chan struct{})}
	c := New(t, Config{Nodes: 3, Tune: func(i int, n *Node) {
		n.Agent.ApplyQueueLen = 16
		n.Agent.ApplyBatch = 4
		n.Gossip.QueueLen = 8
		n.Gossip.PeerQueueLen = 4
		if i == 2 {
			stuck.DB = n.Store
			n.Agent.Store = stuck
		}
	}})
	WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(2) })
	for k := 0; k < 300; k++ {
		c.Exec(k%2, fmt.Sprintf(`INSERT INTO services (id, port) VALUES ('s%d', %d)`, k, k))
	}
	WaitFor(t, 30*time.Second, "node 2's apply queue to overflow", func() (bool, string) {
		st := c.Nodes[2].Agent.Status(t.Context())
		return st.Queues["apply"].Dropped > 0, fmt.Sprintf("%+v", st.Queues)
	})
	close(stuck.gate)
	WaitFor(t, 60*time.Second, "convergence after burst", func() (bool, string) { return c.Converged("services") })
}

func TestCluster_SupersededCellsCoalesce(t *testing.T) {
	c := New(t, Config{Nodes: 2, Tune: func(i int, n *Node) {
		n.Gossip.RateBytesPerSec = 4 << 10 // a slow link: a backlog builds
		n.Agent.DisableSync = true         // count broadcast only
	}})
	WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(1) })
	for k := 0; k < 1000; k++ {
		c.Exec(0, fmt.Sprintf(`INSERT INTO services (id, port) VALUES ('s%d', %d) ON CONFLICT (id) DO UPDATE SET port = excluded.port`, k%10, k))
	}
	WaitFor(t, 60*time.Second, "final values on node 1", func() (bool, string) {
		rows, _ := c.Nodes[1].Query(`SELECT sum(port) FROM services`)
		want := 0
		for k := 990; k < 1000; k++ {
			want += k
		}
		return len(rows) == 1 && rows[0] == fmt.Sprint(want), fmt.Sprint(rows)
	})
	WaitFor(t, 10*time.Second, "heads equal", func() (bool, string) { return c.Converged("services") })
	cells := c.Nodes[0].Gossip.Stats().CellsSent
	t.Logf("1000 updates (1000 port cells + 10 row inserts) travelled as %d cells", cells)
	if cells > 300 {
		t.Fatalf("sent %d cells for 1000 updates to 10 cells; want at most 300", cells)
	}
}

// INCIDENTS.md #5: a poison change reaches every node; each rejects and
// quarantines it, and none stops serving.
func TestCluster_PoisonChangeRejectedEverywhereNodesKeepServing(t *testing.T) {
	c := New(t, Config{Nodes: 3})
	WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(2) })
	var evil patina.ActorID
	evil[0], evil[15] = 0xee, 0x01
	poison := []patina.Changeset{
		{Actor: evil, Version: 1, Seqs: patina.Range{Start: 0, End: 0}, LastSeq: 0, Changes: []patina.Change{
			{Table: "machines", PK: []byte{0x01, 0xff}, Column: "name", Value: patina.Text("x"), ColVersion: 1, DBVersion: 1, CL: 1, Seq: 0}}},
		{Actor: evil, Version: 2, Seqs: patina.Range{Start: 0, End: 0}, LastSeq: 0, Changes: []patina.Change{
			{Table: "machines", PK: []byte{0x01, 0x0b, 0x01, 'm'}, Column: "name", Value: patina.Real(math.NaN()), ColVersion: 1, DBVersion: 2, CL: 1, Seq: 0}}},
	}
	for _, n := range c.Nodes {
		n.Agent.HandleChangesets(evil, poison, 2)
	}
	WaitFor(t, 10*time.Second, "poison quarantined on every node", func() (bool, string) {
		for _, n := range c.Nodes {
			rows, err := n.Store.Quarantined(t.Context())
			if err != nil || rows < 2 {
				return false, fmt.Sprintf("node %d: %d quarantined, %v", n.Index, rows, err)
			}
		}
		return true, ""
	})
	c.Exec(1, `INSERT INTO machines (id, name) VALUES ('after-poison', 'ok')`)
	WaitFor(t, 10*time.Second, "writes still flow", func() (bool, string) {
		for _, n := range c.Nodes {
			rows, err := n.Query(`SELECT name FROM machines WHERE id = 'after-poison'`)
			if err != nil || len(rows) != 1 {
				return false, fmt.Sprintf("node %d: %v %v", n.Index, rows, err)
			}
		}
		return true, ""
	})
	if h := c.Nodes[0].Store.SyncState().Heads[evil]; h != 0 {
		t.Fatalf("poison versions were recorded as applied (head %d)", h)
	}
}

// stuckApplyStore blocks Apply until released: a stuck apply loop
// (INCIDENTS.md #6).
type stuckApplyStore struct {
	*sqlite.DB
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (s *stuckApplyStore) Apply(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.gate:
	case <-ctx.Done():
		return patina.ApplyResult{}, ctx.Err()
	}
	return s.DB.Apply(ctx, css)
}

// INCIDENTS.md #6: with the apply path stuck, local reads keep answering
// and the node reports the backlog instead of hanging; once unstuck it
// catches up.
func TestCluster_StuckApplyReadsKeepAnswering(t *testing.T) {
	stuck := &stuckApplyStore{gate: make(chan struct{}), entered: make(chan struct{})}
	c := New(t, Config{Nodes: 2, Tune: func(i int, n *Node) {
		if i == 1 {
			stuck.DB = n.Store
			n.Agent.Store = stuck
		}
	}})
	WaitFor(t, 20*time.Second, "membership", func() (bool, string) { return c.MembersSeen(1) })
	for k := 0; k < 20; k++ {
		c.Exec(0, fmt.Sprintf(`INSERT INTO machines (id) VALUES ('m%d')`, k))
	}
	select {
	case <-stuck.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("apply never reached the stuck store")
	}
	// The apply loop is stuck now; reads and status still answer.
	rows, err := c.Nodes[1].Query(`SELECT count(*) FROM machines`)
	if err != nil || len(rows) != 1 {
		t.Fatalf("read while apply is stuck: %v %v", rows, err)
	}
	WaitFor(t, 10*time.Second, "backlog visible in status", func() (bool, string) {
		st := c.Nodes[1].Agent.Status(t.Context())
		return st.Queues["apply"].Len+st.Queues["applying"].Len > 0, fmt.Sprintf("%+v", st.Queues)
	})
	close(stuck.gate)
	WaitFor(t, 30*time.Second, "caught up after unsticking", func() (bool, string) { return c.Converged("machines") })
}

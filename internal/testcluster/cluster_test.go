package testcluster

import (
	"fmt"
	"testing"
	"time"
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

package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// matrix is the region RTT matrix (shared/data/rtt_ms.csv, embedded in
// netsim as netsim/rtt_ms.csv).
type matrix map[[2]string]time.Duration

func loadMatrix(path string) (matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	m := matrix{}
	for _, r := range rows[1:] {
		ms, err := strconv.ParseFloat(r[3], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, r, err)
		}
		d := time.Duration(ms * float64(time.Millisecond))
		m[[2]string{r[0], r[1]}], m[[2]string{r[1], r[0]}] = d, d
	}
	return m, nil
}

func (m matrix) rtt(a, b string) time.Duration    { return m[[2]string{a, b}] }
func (m matrix) oneWay(a, b string) time.Duration { return m.rtt(a, b) / 2 }

// node is one member of a benchmarked cluster.
type node struct {
	Name   string
	Region string
	Real   string // IP the process binds
	Adv    string // IP it advertises: the proxy in WAN mode, Real on loopback
}

// gossipRegions places nodes: the first three are iad, fra, sin (Consul's
// servers, etcd's first members), then every other region, then iad, fra,
// sin again; so 17 nodes cover every region once and 20 add a second node
// in the three server regions.
func gossipRegions(all []string, n int) []string {
	head := []string{"iad", "fra", "sin"}
	out := slices.Clone(head)
	for _, r := range all {
		if !slices.Contains(head, r) {
			out = append(out, r)
		}
	}
	out = append(out, head...)
	return out[:min(n, len(out))]
}

// etcdRegions are the five etcd members: iad (the writer, moved to leader),
// fra, sin, sjc, syd.
var etcdRegions = []string{"iad", "fra", "sin", "sjc", "syd"}

// layout gives case number c its own loopback IPs: real 127.20.c.k+1,
// advertised 127.21.c.k+1 in WAN mode.
func layout(c int, prefix string, regions []string, wan bool) []node {
	nodes := make([]node, len(regions))
	for k, r := range regions {
		real := fmt.Sprintf("127.20.%d.%d", c, k+1)
		adv := real
		if wan {
			adv = fmt.Sprintf("127.21.%d.%d", c, k+1)
		}
		nodes[k] = node{Name: fmt.Sprintf("%s%d", prefix, k), Region: r, Real: real, Adv: adv}
	}
	return nodes
}

// wanNode mirrors bench/wan.Node (the emulator's topology file).
type wanNode struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	Real   string `json:"real"`
	Proxy  string `json:"proxy"`
	TCP    []int  `json:"tcp"`
	UDP    []int  `json:"udp"`
	UID    int    `json:"uid"`
}

func writeTopology(path string, nodes []node, ports func(k int) (tcp, udp []int), uid func(k int) int) error {
	cfg := struct {
		Scale float64   `json:"scale"`
		Nodes []wanNode `json:"nodes"`
	}{Scale: 1}
	for k, n := range nodes {
		tcp, udp := ports(k)
		cfg.Nodes = append(cfg.Nodes, wanNode{Name: n.Name, Region: n.Region, Real: n.Real, Proxy: n.Adv, TCP: tcp, UDP: udp, UID: uid(k)})
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// floor is the physical lower bound of write → visible everywhere, and how
// it is made up.
type floor struct {
	Ms  float64 `json:"ms"`
	How string  `json:"how"`
}

// gossipFloor: one-way from the writer to the farthest node.
func gossipFloor(m matrix, regions []string) floor {
	far, who := time.Duration(0), ""
	for _, r := range regions[1:] {
		if d := m.oneWay(regions[0], r); d > far {
			far, who = d, r
		}
	}
	return floor{ms(far), fmt.Sprintf("one-way %s→%s (farthest node)", regions[0], who)}
}

// raftFloor: the leader (regions[0], also the writer) needs acks from a
// majority of voters (the quorum-th nearest follower's RTT), then followers
// learn the commit one way later; the farthest observer sets the end.
func raftFloor(m matrix, voters []string, observers []string) floor {
	var rtts []time.Duration
	for _, r := range voters[1:] {
		rtts = append(rtts, m.rtt(voters[0], r))
	}
	slices.Sort(rtts)
	need := len(voters)/2 + 1 - 1 // followers needed besides the leader
	quorum := rtts[need-1]
	far, who := time.Duration(0), ""
	for _, r := range observers {
		if d := m.oneWay(voters[0], r); d > far {
			far, who = d, r
		}
	}
	return floor{ms(quorum + far), fmt.Sprintf("leader %s: quorum RTT %.0f ms (%d of %d followers) + one-way to %s %.1f ms",
		voters[0], ms(quorum), need, len(voters)-1, who, ms(far))}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

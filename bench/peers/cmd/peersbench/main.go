// Command peersbench measures write → visible-on-every-node latency of etcd,
// Consul, Serf and patina, each as a local cluster, first on plain loopback
// (to check the harness against known figures) and then through the bench/wan
// emulator with the region RTT matrix. It starts and stops every process
// itself; bench/peers/run.sh builds everything and runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

type bins struct{ etcd, serf, consul, patina, patinaagent, wan string }

// caseEnv is what a system needs to start its nodes.
type caseEnv struct {
	dir   string
	nodes []node
	procs *procs
	bins  bins
	wan   bool
}

// baseUID: node k runs as uid baseUID+k, so the emulator identifies its
// sockets by uid (bench/wan Node.UID).
const baseUID = 45000

func (e *caseEnv) uid(k int) int { return baseUID + k }

// nodeDir creates node k's directory, owned by its uid.
func (e *caseEnv) nodeDir(k int) (string, error) {
	d := filepath.Join(e.dir, e.nodes[k].Name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	return d, os.Chown(d, e.uid(k), e.uid(k))
}

// start launches node k's process as its uid, in its directory.
func (e *caseEnv) start(k int, argv ...string) error {
	d, err := e.nodeDir(k)
	if err != nil {
		return err
	}
	_, err = e.procs.start(d+".log", e.uid(k), d, argv...)
	return err
}

// system is one benchmarked cluster.
type system interface {
	Start(ctx context.Context) error                // launch every node and wait until the cluster is formed
	Observe(ctx context.Context, o *observer) error // attach the system's own watch to every node
	Write(ctx context.Context, seq int64) error     // one write on node 0
	Info() map[string]string
	Close()
}

type caseSpec struct {
	System    string
	Setup     string
	Mode      string // "loopback" or "wan"
	Regions   []string
	Floor     floor
	Reference string        // loopback figure measured earlier on this machine
	Timeout   time.Duration // overrides -timeout
	Ports     func(k int) (tcp, udp []int)
	New       func(env *caseEnv) system
}

type caseResult struct {
	System    string            `json:"system"`
	Setup     string            `json:"setup"`
	Mode      string            `json:"mode"`
	Nodes     int               `json:"nodes"`
	Regions   []string          `json:"regions"`
	Floor     *floor            `json:"floor,omitempty"`
	Reference string            `json:"reference,omitempty"`
	Summary   summary           `json:"summary"`
	Info      map[string]string `json:"info"`
	CPUIdle   float64           `json:"cpu_idle"` // fraction of both cores idle during the measured writes
	StartSec  float64           `json:"start_s"`  // launch → cluster formed
	Wan       json.RawMessage   `json:"wan,omitempty"`
	Error     string            `json:"error,omitempty"`
	Seconds   float64           `json:"seconds"`
	Timeout   string            `json:"timeout"`
	// Raw: per measured write, the write call's duration and each node's
	// write → visible time in ms (-1: not within the timeout).
	Raw []rawWrite `json:"raw"`
}

type rawWrite struct {
	AckMs   float64   `json:"ack_ms"`
	NodesMs []float64 `json:"nodes_ms"`
}

type options struct {
	work         string
	writes       int
	loopWrites   int
	warmup       int
	timeout      time.Duration
	pollInterval time.Duration
	pidFile      string
	verbose      bool
	budget       time.Duration
}

func main() {
	var o options
	var b bins
	var n int
	var systems, modes, out, md, rttPath string
	flag.StringVar(&o.work, "work", "", "work directory (data dirs, logs, topologies); default a new /tmp dir")
	flag.IntVar(&o.writes, "writes", 200, "measured writes per system through the WAN emulator")
	flag.IntVar(&o.loopWrites, "loopback-writes", 100, "measured writes per system on plain loopback")
	flag.IntVar(&o.warmup, "warmup", 5, "unmeasured writes first")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Second, "a write not visible everywhere by then counts as incomplete")
	flag.DurationVar(&o.pollInterval, "poll", 5*time.Millisecond, "patina observers' polling interval")
	flag.StringVar(&o.pidFile, "pidfile", "", "append every started PID here")
	flag.BoolVar(&o.verbose, "v", false, "print every write's per-node latencies")
	flag.DurationVar(&o.budget, "budget", 3*time.Minute, "stop a case's measured writes after this long (fewer writes then)")
	flag.IntVar(&n, "n", 20, "nodes of the gossip clusters (Serf, patina; Consul is 3 servers + n-3 clients); at most 20")
	flag.StringVar(&systems, "systems", "etcd,consul,serf,patina", "systems to run")
	flag.StringVar(&modes, "modes", "loopback,wan", "loopback, wan or both")
	flag.StringVar(&out, "out", "results.json", "JSON results")
	flag.StringVar(&md, "md", "", "also write the markdown table here")
	flag.StringVar(&rttPath, "rtt", "../../netsim/rtt_ms.csv", "region RTT matrix (CSV)")
	flag.StringVar(&b.etcd, "etcd", "/usr/bin/etcd", "etcd binary")
	flag.StringVar(&b.serf, "serf", "/usr/bin/serf", "serf binary")
	flag.StringVar(&b.consul, "consul", "", "consul binary")
	flag.StringVar(&b.patina, "patina", "", "patina binary (cmd/patina)")
	flag.StringVar(&b.patinaagent, "patinaagent", "", "patinaagent binary (bench/peers/patinaagent)")
	flag.StringVar(&b.wan, "wan", "", "wan emulator binary (bench/wan/cmd/wan)")
	flag.Parse()
	if n < 4 || n > 20 {
		fatal(fmt.Errorf("-n %d: want 4..20", n))
	}
	m, err := loadMatrix(rttPath)
	if err != nil {
		fatal(err)
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "patina-peers-"); err != nil {
			fatal(err)
		}
	}
	// Nodes run under their own uids: they need to reach the work directory
	// and the binaries (which may sit under a 0700 home).
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		fatal(err)
	}
	if err := os.Chmod(o.work, 0o755); err != nil {
		fatal(err)
	}
	if err := shareBinaries(filepath.Join(o.work, "bin"), &b); err != nil {
		fatal(err)
	}
	var all []string
	for k := range m {
		if !slices.Contains(all, k[0]) {
			all = append(all, k[0])
		}
	}
	slices.Sort(all)
	specs := plan(m, all, n, strings.Split(systems, ","), strings.Split(modes, ","), b, o)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report := map[string]any{
		"started": time.Now().UTC().Format(time.RFC3339),
		"command": strings.Join(os.Args, " "),
		"machine": machine(b),
		"options": map[string]any{"writes": o.writes, "loopback_writes": o.loopWrites, "warmup": o.warmup,
			"timeout": o.timeout.String(), "patina_poll": o.pollInterval.String(), "n": n},
	}
	var results []caseResult
	for i, s := range specs {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "== %s %s (%s) ...\n", s.System, s.Setup, s.Mode)
		r := runCase(ctx, i, s, b, o)
		results = append(results, r)
		if r.Error != "" {
			fmt.Fprintf(os.Stderr, "   error: %s\n", r.Error)
		}
		fmt.Fprintf(os.Stderr, "   all p50 %.1f p99 %.1f ms (floor %.1f), %d/%d incomplete, idle %.0f%%, %.0fs\n",
			r.Summary.AllMs.P50, r.Summary.AllMs.P99, r.Floor.Ms, r.Summary.Incomplete, r.Summary.Writes, 100*r.CPUIdle, r.Seconds)
		report["cases"] = results
		writeJSON(out, report)
	}
	report["finished"] = time.Now().UTC().Format(time.RFC3339)
	writeJSON(out, report)
	table := markdown(results)
	fmt.Print(table)
	if md != "" {
		os.WriteFile(md, []byte(table), 0o644)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "peersbench:", err)
	os.Exit(1)
}

func writeJSON(path string, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "peersbench:", err)
	}
}

// plan lists the cases: loopback at the reference setups first (etcd 3,
// Consul 3+5, Serf 20), then everything through the emulator.
func plan(m matrix, all []string, n int, systems, modes []string, b bins, o options) []caseSpec {
	gr := gossipRegions(all, n)
	var specs []caseSpec
	add := func(s caseSpec) {
		if slices.Contains(systems, s.System) && slices.Contains(modes, s.Mode) {
			specs = append(specs, s)
		}
	}
	loop := func(k int) []string { return slices.Repeat([]string{"loopback"}, k) }
	for _, mode := range []string{"loopback", "wan"} {
		wan := mode == "wan"
		etcdN, consulClients := 5, n-3
		if !wan {
			etcdN, consulClients = 3, 5
		}
		regs := func(r []string) []string {
			if wan {
				return r
			}
			return loop(len(r))
		}
		er := etcdRegions[:etcdN]
		add(caseSpec{System: "etcd", Mode: mode, Setup: fmt.Sprintf("%d members", etcdN), Regions: regs(er),
			Floor: pick(wan, raftFloor(m, er, er)), Reference: ref(wan, "3 members: p50 3.4 / p99 6.1 ms"),
			Ports: etcdPorts, New: func(env *caseEnv) system { return &etcdCluster{env: env} }})
		cr := gr[:3+consulClients]
		if !wan {
			cr = loop(8)
		}
		add(caseSpec{System: "consul", Mode: mode, Setup: fmt.Sprintf("3 servers + %d clients", consulClients), Regions: cr,
			Floor: pick(wan, raftFloor(m, gr[:3], gr[:3+consulClients])), Reference: ref(wan, "3+5: p50 10.9 / p99 25.9 ms"),
			Ports: consulPorts(3), New: func(env *caseEnv) system { return &consulCluster{env: env, servers: 3} }})
		sn := n
		if !wan {
			sn = 20
		}
		add(caseSpec{System: "serf", Mode: mode, Setup: fmt.Sprintf("%d agents", sn), Regions: regs(gr[:sn]),
			Floor: pick(wan, gossipFloor(m, gr[:sn])), Reference: ref(wan, "20 agents: p50 379 / p99 662 ms"),
			Ports: serfPorts, New: func(env *caseEnv) system { return &serfCluster{env: env} }})
		bin, adv := b.patina, false
		if wan {
			bin, adv = b.patinaagent, true
		}
		newPatina := func(env *caseEnv) system {
			return &patinaCluster{env: env, bin: bin, advFlag: adv, interval: o.pollInterval}
		}
		setup := fmt.Sprintf("%d agents", n)
		if !wan {
			setup += ", one region"
		}
		one := caseSpec{System: "patina", Mode: mode, Setup: setup, Regions: regs(gr[:n]),
			Floor: pick(wan, gossipFloor(m, gr[:n])), Ports: patinaPorts, New: newPatina}
		if !wan {
			// In one region most nodes wait for anti-entropy (tens of
			// seconds): wait long enough to see when the last one has it.
			one.Timeout = max(o.timeout, 60*time.Second)
		}
		add(one)
		if !wan {
			// patina routes broadcasts by region, so on loopback also run the
			// WAN layout's region labels (without the delay).
			add(caseSpec{System: "patina", Mode: mode, Setup: fmt.Sprintf("%d agents, WAN region labels", n), Regions: gr[:n],
				Floor: pick(wan, floor{}), Ports: patinaPorts, New: newPatina})
		}
	}
	return specs
}

func pick(wan bool, f floor) floor {
	if wan {
		return f
	}
	return floor{0, "loopback"}
}

func ref(wan bool, s string) string {
	if wan {
		return ""
	}
	return s
}

func runCase(ctx context.Context, idx int, s caseSpec, b bins, o options) (r caseResult) {
	began := time.Now()
	wan := s.Mode == "wan"
	r = caseResult{System: s.System, Setup: s.Setup, Mode: s.Mode, Nodes: len(s.Regions), Regions: s.Regions, Floor: &s.Floor, Reference: s.Reference}
	defer func() { r.Seconds = time.Since(began).Seconds() }()
	dir := filepath.Join(o.work, fmt.Sprintf("%02d-%s-%s", idx, s.System, s.Mode))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	nodes := layout(idx+1, s.System[:1], s.Regions, wan)
	p := &procs{pidFile: o.pidFile, nice: -ownNiceness()}
	env := &caseEnv{dir: dir, nodes: nodes, procs: p, bins: b, wan: wan}
	var wanCmd *exec.Cmd
	defer func() {
		var sys []*exec.Cmd
		for _, c := range p.cmds {
			if c != wanCmd {
				sys = append(sys, c)
			}
		}
		if len(sys) > 0 {
			p.stop(20*time.Second, sys...)
		}
		if wanCmd != nil {
			p.stop(10*time.Second, wanCmd)
			if st, err := os.ReadFile(filepath.Join(dir, "wan-stats.json")); err == nil {
				r.Wan = st
			}
		}
	}()
	if wan {
		topo := filepath.Join(dir, "topology.json")
		if err := writeTopology(topo, nodes, s.Ports, env.uid); err != nil {
			r.Error = err.Error()
			return r
		}
		var err error
		// The emulator is the network, not a tenant of the machine: it runs
		// at real-time priority (SCHED_FIFO) when it can, so its timers fire
		// on time even while the systems under test saturate both cores.
		argv := []string{b.wan}
		if rt, err := exec.LookPath("chrt"); err == nil && os.Geteuid() == 0 {
			argv = []string{rt, "-f", "20", b.wan}
		}
		wanCmd, err = p.start(filepath.Join(dir, "wan.log"), 0, "", append(argv, "-config", topo, "-stats", filepath.Join(dir, "wan-stats.json"))...)
		if err == nil {
			err = retryUntil(ctx, "wan emulator ready", 50*time.Millisecond, func() error {
				if p.exited(wanCmd) {
					return fmt.Errorf("wan exited; see %s", filepath.Join(dir, "wan.log"))
				}
				if b, _ := os.ReadFile(filepath.Join(dir, "wan.log")); strings.Contains(string(b), "ready") {
					return nil
				}
				return fmt.Errorf("not ready")
			})
		}
		if err != nil {
			r.Error = err.Error()
			return r
		}
	}
	sys := s.New(env)
	defer sys.Close()
	// Start, failing fast if a node process exits meanwhile.
	sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	sctx, cancelCause := context.WithCancelCause(sctx)
	go func() {
		for sctx.Err() == nil {
			if log := p.firstExited(wanCmd); log != "" {
				tail, _ := os.ReadFile(log)
				if len(tail) > 400 {
					tail = tail[len(tail)-400:]
				}
				cancelCause(fmt.Errorf("a process exited; %s ends with: %s", log, strings.TrimSpace(string(tail))))
				return
			}
			sleepCtx(sctx, 200*time.Millisecond)
		}
	}()
	err := sys.Start(sctx)
	cancelCause(nil)
	cancel()
	r.StartSec = time.Since(began).Seconds()
	if err != nil {
		r.Error = "start: " + err.Error()
		return r
	}
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	obs := newObserver(len(nodes))
	if err := sys.Observe(mctx, obs); err != nil {
		r.Error = "observe: " + err.Error()
		return r
	}
	writes := o.loopWrites
	if wan {
		writes = o.writes
	}
	timeout := o.timeout
	if s.Timeout > 0 {
		timeout = s.Timeout
	}
	r.Timeout = timeout.String()
	var results []writeResult
	var cpu0 cpuSample
	var measureFrom time.Time
	failures := 0
	for seq := int64(1); seq <= int64(o.warmup+writes) && ctx.Err() == nil; seq++ {
		if seq == int64(o.warmup)+1 {
			cpu0, measureFrom = sampleCPU(), time.Now()
		}
		if !measureFrom.IsZero() && time.Since(measureFrom) > o.budget {
			fmt.Fprintf(os.Stderr, "   budget %v spent after %d measured writes\n", o.budget, len(results))
			break
		}
		start := time.Now()
		done := obs.arm(seq, start)
		wctx, wcancel := context.WithTimeout(ctx, timeout)
		err := sys.Write(wctx, seq)
		ack := time.Since(start)
		if err == nil {
			select {
			case <-done:
			case <-wctx.Done():
			}
		}
		wcancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "   write %d: %v\n", seq, err)
			if failures++; failures > 5 {
				r.Error = "write: " + err.Error()
				break
			}
		}
		lat := obs.latencies()
		if o.verbose {
			var sb strings.Builder
			for k, d := range lat {
				fmt.Fprintf(&sb, " %d:%.0f", k, ms(d))
			}
			fmt.Fprintf(os.Stderr, "   write %d ack %.1f ms:%s\n", seq, ms(ack), sb.String())
		}
		if seq > int64(o.warmup) {
			results = append(results, writeResult{Ack: ack, Nodes: lat})
		}
		sleepCtx(ctx, 100*time.Millisecond+rand.N(100*time.Millisecond))
	}
	r.CPUIdle = sampleCPU().idleSince(cpu0)
	r.Summary = summarize(results)
	for _, w := range results {
		rw := rawWrite{AckMs: round2(ms(w.Ack))}
		for _, d := range w.Nodes {
			rw.NodesMs = append(rw.NodesMs, round2(ms(d)))
		}
		r.Raw = append(r.Raw, rw)
	}
	r.Info = sys.Info()
	return r
}

// machine records what the numbers ran on.
func machine(b bins) map[string]any {
	out := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version()}
	if bs, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(bs), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				out["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if bs, err := os.ReadFile("/proc/loadavg"); err == nil {
		out["loadavg_at_start"] = strings.TrimSpace(string(bs))
	}
	if bs, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		out["kernel"] = strings.TrimSpace(string(bs))
	}
	version := func(argv ...string) string {
		if argv[0] == "" {
			return ""
		}
		o, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		s, _, _ := strings.Cut(string(o), "\n")
		return strings.TrimSpace(s)
	}
	out["etcd"] = version(b.etcd, "--version")
	out["serf"] = version(b.serf, "version")
	out["consul"] = version(b.consul, "version")
	return out
}

// markdown renders the one table.
func markdown(rs []caseResult) string {
	var sb strings.Builder
	sb.WriteString("| system | setup | network | floor ms | write → visible on ALL nodes p50 / p95 / p99 / max ms | p50 ÷ floor | each node p50 / p99 | write ack p50 | incomplete | CPU idle |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		s := r.Summary
		net, fl, ratio := "loopback", "–", "–"
		if r.Mode == "wan" {
			net = "WAN emulator"
			fl = fmt.Sprintf("%.1f", r.Floor.Ms)
			if r.Floor.Ms > 0 && s.AllMs.P50 > 0 {
				ratio = fmt.Sprintf("%.2f", s.AllMs.P50/r.Floor.Ms)
			}
		}
		if r.Error != "" && s.Writes == 0 {
			fmt.Fprintf(&sb, "| %s | %s | %s | %s | error: %s | | | | | |\n", r.System, r.Setup, net, fl, r.Error)
			continue
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | **%.1f** / %.1f / **%.1f** / %.1f | %s | %.1f / %.1f | %.1f | %d/%d | %.0f%% |\n",
			r.System, r.Setup, net, fl, s.AllMs.P50, s.AllMs.P95, s.AllMs.P99, s.AllMs.Max, ratio,
			s.NodeMs.P50, s.NodeMs.P99, s.AckMs.P50, s.Incomplete, s.Writes, 100*r.CPUIdle)
	}
	return sb.String()
}

// shareBinaries copies every named binary into dir (mode 0755) and points b
// at the copies.
func shareBinaries(dir string, b *bins) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range []*string{&b.etcd, &b.serf, &b.consul, &b.patina, &b.patinaagent, &b.wan} {
		if *p == "" {
			continue
		}
		data, err := os.ReadFile(*p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.Base(*p))
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			return err
		}
		*p = dst
	}
	return nil
}

func round2(f float64) float64 {
	if f < 0 {
		return -1
	}
	return float64(int64(f*100+0.5)) / 100
}

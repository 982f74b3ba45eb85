package wan

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"time"
)

// Node is one emulated machine: its process listens on Real, advertises
// Proxy to its peers, and sits in Region.
type Node struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	Real   string `json:"real"`  // IP the process binds, e.g. 127.0.0.11
	Proxy  string `json:"proxy"` // IP it advertises, e.g. 127.0.1.11
	TCP    []int  `json:"tcp"`   // ports proxied Proxy:port → Real:port
	UDP    []int  `json:"udp"`
	// UID, if not 0, is the uid the node's process runs as: its sockets
	// are then identified from /proc/net without reading any process's
	// file descriptors (fast). 0: identify by process (slower).
	UID int `json:"uid,omitempty"`
}

// Config is a whole emulated network.
type Config struct {
	Nodes []Node `json:"nodes"`
	// Scale multiplies the matrix delays: 1 is the matrix, 0 forwards
	// without delay (to measure the proxies' own cost).
	Scale float64 `json:"scale"`
	// NoHandshake skips the emulated TCP handshake delay.
	NoHandshake bool `json:"no_handshake"`
	// Delay, if set, replaces MatrixDelay(Scale).
	Delay DelayFunc `json:"-"`
	// Logf, if set, reports senders that could not be identified.
	Logf func(format string, args ...any) `json:"-"`
}

// Emulator runs the proxies of a Config.
type Emulator struct {
	Stats  Stats
	cfg    Config
	byIP   map[string]string // real IP → region
	owners *procOwners
	closer []func() error
}

// Start opens one TCP or UDP proxy per node and port.
func Start(cfg Config) (*Emulator, error) {
	e := &Emulator{cfg: cfg, byIP: map[string]string{}}
	if runtime.GOOS == "linux" {
		e.owners = newProcOwners("/proc")
	}
	delay := cfg.Delay
	if delay == nil {
		delay = MatrixDelay(cfg.Scale)
	}
	nodeRegion := map[string]string{}
	for _, n := range cfg.Nodes {
		if n.Real == n.Proxy {
			return nil, fmt.Errorf("node %s: real and proxy IP are both %s", n.Name, n.Real)
		}
		if _, dup := e.byIP[n.Real]; dup {
			return nil, fmt.Errorf("node %s: real IP %s used twice", n.Name, n.Real)
		}
		e.byIP[n.Real] = n.Region
		nodeRegion[n.Name] = n.Region
		if e.owners != nil {
			if n.UID != 0 {
				if _, dup := e.owners.byUID[n.UID]; dup {
					return nil, fmt.Errorf("node %s: uid %d used twice", n.Name, n.UID)
				}
				e.owners.byUID[n.UID] = n.Name
			}
			for _, p := range n.TCP {
				e.owners.add(n.Name, "tcp", net.JoinHostPort(n.Real, strconv.Itoa(p)))
			}
			for _, p := range n.UDP {
				e.owners.add(n.Name, "udp", net.JoinHostPort(n.Real, strconv.Itoa(p)))
			}
		}
	}
	if e.owners != nil {
		e.owners.uidOnly = len(e.owners.byUID) == len(cfg.Nodes)
	}
	source := func(network string, remote, local net.Addr) (string, bool) {
		host, _, err := net.SplitHostPort(remote.String())
		if err != nil {
			return "", false
		}
		if r, ok := e.byIP[host]; ok {
			return r, true
		}
		if e.owners == nil {
			return "", false
		}
		began := time.Now()
		node, ok := e.owners.lookup(network, remote, local)
		e.Stats.observeResolve(time.Since(began))
		if !ok {
			if cfg.Logf != nil {
				cfg.Logf("wan: unknown sender %s %s → %s (counted as the receiver's region)", network, remote, local)
			}
			return "", false
		}
		return nodeRegion[node], true
	}
	for _, n := range cfg.Nodes {
		for _, port := range n.TCP {
			p := &TCPProxy{Listen: net.JoinHostPort(n.Proxy, strconv.Itoa(port)), Backend: net.JoinHostPort(n.Real, strconv.Itoa(port)),
				Region: n.Region, Source: source, Delay: delay, Stats: &e.Stats, NoHandshake: cfg.NoHandshake}
			if err := p.Open(); err != nil {
				e.Close()
				return nil, fmt.Errorf("node %s: tcp proxy %s: %w", n.Name, p.Listen, err)
			}
			e.closer = append(e.closer, p.Close)
		}
		for _, port := range n.UDP {
			p := &UDPProxy{Listen: net.JoinHostPort(n.Proxy, strconv.Itoa(port)), Backend: net.JoinHostPort(n.Real, strconv.Itoa(port)),
				Region: n.Region, Source: source, Delay: delay, Stats: &e.Stats}
			if err := p.Open(); err != nil {
				e.Close()
				return nil, fmt.Errorf("node %s: udp proxy %s: %w", n.Name, p.Listen, err)
			}
			e.closer = append(e.closer, p.Close)
		}
	}
	return e, nil
}

// Close stops every proxy.
func (e *Emulator) Close() error {
	var errs []error
	for _, c := range e.closer {
		errs = append(errs, c())
	}
	e.closer = nil
	return errors.Join(errs...)
}

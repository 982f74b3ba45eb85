package wan

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// procOwners finds which node a loopback socket belongs to (Linux /proc).
// The socket's row in /proc/net/{tcp,udp} gives its owner uid and inode. If
// nodes run under their own uids, the uid names the node at once; otherwise
// the process whose /proc/PID/fd holds the inode does, through the node whose
// listening socket the same process holds (slower: it reads file
// descriptors, 20 ms on average on a loaded 2-core VM).
type procOwners struct {
	root   string                 // "/proc"
	listen map[string][]listenKey // node name → its real listening sockets
	byUID  map[int]string         // uid → node, for nodes run under their own uid
	// uidOnly skips the process scan: every node has a uid, so a socket
	// that is not found (closed already) or has another uid is no node's.
	uidOnly bool

	mu      sync.Mutex
	pidNode map[int]string // cache: process → node
}

type listenKey struct {
	network string // "tcp" or "udp"
	addr    string // ip:port
}

func newProcOwners(root string) *procOwners {
	return &procOwners{root: root, listen: map[string][]listenKey{}, byUID: map[int]string{}, pidNode: map[int]string{}}
}

// add says node listens on network addr (its real address).
func (o *procOwners) add(node, network, addr string) {
	o.listen[node] = append(o.listen[node], listenKey{network, addr})
}

// sockEntry is one row of /proc/net/{tcp,udp}[6].
type sockEntry struct {
	local, remote string // ip:port
	state         string
	uid           int
	inode         string
}

// readSockets parses the socket tables of network ("tcp" or "udp").
func (o *procOwners) readSockets(network string) ([]sockEntry, error) {
	var out []sockEntry
	for _, f := range []string{network, network + "6"} {
		fh, err := os.Open(filepath.Join(o.root, "net", f))
		if err != nil {
			if f == network {
				return nil, err
			}
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 {
				continue
			}
			l, err1 := parseProcAddr(fs[1])
			r, err2 := parseProcAddr(fs[2])
			if err1 != nil || err2 != nil {
				continue // IPv6 proper: not used on loopback here
			}
			uid, _ := strconv.Atoi(fs[7])
			out = append(out, sockEntry{local: l, remote: r, state: fs[3], uid: uid, inode: fs[9]})
		}
		fh.Close()
	}
	return out, nil
}

// parseProcAddr decodes "0100007F:1F90" (or its IPv4-mapped IPv6 form).
func parseProcAddr(s string) (string, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	if len(h) == 32 {
		if h[:24] != "0000000000000000FFFF0000" && h[:24] != "00000000000000000000FFFF" {
			if h == strings.Repeat("0", 32) {
				h = "00000000"
			} else {
				return "", fmt.Errorf("not IPv4 %q", s)
			}
		} else {
			h = h[24:]
		}
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 4 {
		return "", fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port %q", s)
	}
	// /proc prints the address as a host-order (little-endian) word.
	return net.JoinHostPort(net.IPv4(b[3], b[2], b[1], b[0]).String(), strconv.Itoa(int(port))), nil
}

// lookup returns the node owning the socket with local address sock; for
// TCP the socket's remote address must be peer (the proxy end).
func (o *procOwners) lookup(network string, sock, peer net.Addr) (string, bool) {
	if network == "tcp" {
		if uid, _, ok := diagTCP(sock, peer); ok {
			if node, ok := o.byUID[uid]; ok {
				return node, true
			}
		}
	}
	socks, err := o.readSockets(network)
	if err != nil {
		return "", false
	}
	inode, uid := "", -1
	for _, e := range socks {
		if (network == "tcp" && e.local == sock.String() && e.remote == peer.String()) ||
			(network == "udp" && sameUDP(e.local, sock.String())) {
			inode, uid = e.inode, e.uid
			break
		}
	}
	if node, ok := o.byUID[uid]; ok {
		return node, true
	}
	if o.uidOnly || inode == "" || inode == "0" {
		return "", false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for pid, node := range o.pidNode {
		if holds(o.root, pid, map[string]bool{inode: true}) != "" {
			return node, true
		}
	}
	return o.rescan(inode)
}

// sameUDP matches a UDP socket's local address, allowing a wildcard bind.
func sameUDP(local, want string) bool {
	if local == want {
		return true
	}
	lh, lp, _ := net.SplitHostPort(local)
	_, wp, _ := net.SplitHostPort(want)
	return lh == "0.0.0.0" && lp == wp
}

// rescan walks every process: it refreshes which process serves which node
// and returns the node whose process holds inode.
func (o *procOwners) rescan(inode string) (string, bool) {
	nodeInodes := map[string]string{} // listening inode → node
	for _, network := range []string{"tcp", "udp"} {
		socks, err := o.readSockets(network)
		if err != nil {
			continue
		}
		for _, e := range socks {
			if network == "tcp" && e.state != "0A" { // LISTEN
				continue
			}
			for node, keys := range o.listen {
				for _, k := range keys {
					if k.network == network && (e.local == k.addr || (network == "udp" && sameUDP(e.local, k.addr))) {
						nodeInodes[e.inode] = node
					}
				}
			}
		}
	}
	want := map[string]bool{inode: true}
	for ino := range nodeInodes {
		want[ino] = true
	}
	dirs, _ := os.ReadDir(o.root)
	found := ""
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		held := holdsAll(o.root, pid, want)
		node := ""
		for ino := range held {
			if n, ok := nodeInodes[ino]; ok {
				node = n
			}
		}
		if node == "" {
			continue
		}
		o.pidNode[pid] = node
		if held[inode] {
			found = node
		}
	}
	return found, found != ""
}

// holds returns one inode of want that pid has open, or "".
func holds(root string, pid int, want map[string]bool) string {
	for ino := range holdsAll(root, pid, want) {
		return ino
	}
	return ""
}

// holdsAll returns the inodes of want that pid has open.
func holdsAll(root string, pid int, want map[string]bool) map[string]bool {
	dir := filepath.Join(root, strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out map[string]bool
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		ino := l[len("socket:[") : len(l)-1]
		if want[ino] {
			if out == nil {
				out = map[string]bool{}
			}
			out[ino] = true
		}
	}
	return out
}

package wan

import (
	"encoding/binary"
	"net"
	"strconv"
	"syscall"
)

// diagTCP asks the kernel (netlink sock_diag, one exact lookup) for the uid
// and inode of the IPv4 TCP socket bound to local and connected to remote.
// It costs one small netlink round trip, however many sockets the machine
// has, where reading /proc/net/tcp grows with every TIME_WAIT socket.
func diagTCP(local, remote net.Addr) (uid int, inode string, ok bool) {
	l, lok := local.(*net.TCPAddr)
	r, rok := remote.(*net.TCPAddr)
	if !lok || !rok || l.IP.To4() == nil || r.IP.To4() == nil {
		return 0, "", false
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 4 /* NETLINK_SOCK_DIAG */)
	if err != nil {
		return 0, "", false
	}
	defer syscall.Close(fd)
	const hdr, reqLen = 16, 56
	req := make([]byte, hdr+reqLen)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], 20) // SOCK_DIAG_BY_FAMILY
	binary.NativeEndian.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1) // seq
	b := req[hdr:]
	b[0], b[1] = syscall.AF_INET, syscall.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], 0xffffffff) // any state
	binary.BigEndian.PutUint16(b[8:], uint16(l.Port))
	binary.BigEndian.PutUint16(b[10:], uint16(r.Port))
	copy(b[12:16], l.IP.To4())
	copy(b[28:32], r.IP.To4())
	binary.NativeEndian.PutUint32(b[48:], 0xffffffff) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(b[52:], 0xffffffff)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, "", false
	}
	resp := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, resp, 0)
	if err != nil || n < hdr+72 {
		return 0, "", false
	}
	if typ := binary.NativeEndian.Uint16(resp[4:]); typ != 20 {
		return 0, "", false // NLMSG_ERROR: no such socket (closed already)
	}
	m := resp[hdr:n]
	return int(binary.NativeEndian.Uint32(m[64:])), strconv.FormatUint(uint64(binary.NativeEndian.Uint32(m[68:])), 10), true
}

package gossip

import (
	"context"
	"fmt"
	"net"
)

// Network is what the gossip layer needs from a network: one packet socket
// and one stream listener on the node's gossip address, and dialing. The real
// network (TCPNetwork) and the simulated one (netsim.Host) both provide it.
type Network interface {
	Addr() string
	ListenPacket() (net.PacketConn, error)
	Listen() (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// TCPNetwork is the real network: UDP and TCP on the same host:port.
type TCPNetwork struct {
	// BindAddr is the gossip address, host:port (port 0 picks a free port
	// shared by UDP and TCP).
	BindAddr string

	bound string
}

// Addr returns the bound address once listening, else BindAddr.
func (n *TCPNetwork) Addr() string {
	if n.bound != "" {
		return n.bound
	}
	return n.BindAddr
}

// Listen opens the TCP listener (first, so port 0 can be shared with UDP).
func (n *TCPNetwork) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", n.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on gossip address %s (tcp): %w; is another agent running?", n.BindAddr, err)
	}
	n.bound = l.Addr().String()
	return l, nil
}

// ListenPacket opens the UDP socket on the bound TCP port.
func (n *TCPNetwork) ListenPacket() (net.PacketConn, error) {
	addr := n.Addr()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on gossip address %s (udp): %w", addr, err)
	}
	return &udpConn{PacketConn: pc}, nil
}

// Dial opens a TCP stream.
func (n *TCPNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// udpConn resolves string addresses handed to WriteTo.
type udpConn struct{ net.PacketConn }

func (c *udpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if _, ok := addr.(*net.UDPAddr); !ok {
		ua, err := net.ResolveUDPAddr("udp", addr.String())
		if err != nil {
			return 0, err
		}
		addr = ua
	}
	return c.PacketConn.WriteTo(b, addr)
}

// strAddr is a net.Addr from a host:port string.
type strAddr string

func (a strAddr) Network() string { return "patina" }
func (a strAddr) String() string  { return string(a) }

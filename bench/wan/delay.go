package wan

import (
	"net"
	"time"

	"github.com/patinadb/patina/netsim"
)

// DelayFunc is the one-way latency from a sender in region src to a
// receiver in region dst.
type DelayFunc func(src, dst string) time.Duration

// MatrixDelay is half the round-trip time of the netsim region matrix
// (shared/data/rtt_ms.csv), times scale: 1 is the matrix, 0 is no delay.
// Unknown regions get no delay.
func MatrixDelay(scale float64) DelayFunc {
	return func(src, dst string) time.Duration {
		rtt, ok := netsim.RTT(src, dst)
		if !ok {
			return 0
		}
		return time.Duration(float64(rtt) / 2 * scale)
	}
}

// SourceFunc names the region of whoever sent a connection or datagram that
// arrived at local from remote (network "tcp" or "udp"); ok is false when
// the sender is unknown.
type SourceFunc func(network string, remote, local net.Addr) (region string, ok bool)

// FixedSource says every sender is in region: the per-port design, where a
// proxy port is dedicated to one source.
func FixedSource(region string) SourceFunc {
	return func(string, net.Addr, net.Addr) (string, bool) { return region, true }
}

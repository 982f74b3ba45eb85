//go:build !linux

package wan

import "net"

func diagTCP(local, remote net.Addr) (uid int, inode string, ok bool) { return 0, "", false }

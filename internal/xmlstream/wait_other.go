//go:build !unix

package xmlstream

import "net"

// CanWait reports whether WaitReadable can wait on a connection: not here.
func CanWait(net.Conn) bool { return false }

// WaitReadable returns at once.
func WaitReadable(net.Conn) {}

//go:build !unix

package s2s

import "net"

// canWait reports whether waitReadable can wait on a connection: not here.
func canWait(net.Conn) bool { return false }

// waitReadable returns at once.
func waitReadable(net.Conn) {}

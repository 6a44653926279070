//go:build unix

package s2s

import (
	"net"
	"syscall"
)

// canWait reports whether waitReadable can wait on nc.
func canWait(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	_, err := sc.SyscallConn()
	return err == nil
}

// waitReadable waits until nc has bytes to read, or EOF, or an error, or
// its read deadline passes, without reading them. (The runtime's sockets
// are non-blocking: peeking at an empty one fails with EAGAIN.)
func waitReadable(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return err != syscall.EAGAIN
	})
}

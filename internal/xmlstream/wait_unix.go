//go:build unix

package xmlstream

import (
	"net"
	"syscall"
)

// CanWait reports whether WaitReadable can wait on nc.
func CanWait(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	_, err := sc.SyscallConn()
	return err == nil
}

// WaitReadable waits until nc has bytes to read, or EOF, or an error, or
// its read deadline passes, without reading them. (The runtime's sockets
// are non-blocking: peeking at an empty one fails with EAGAIN.)
func WaitReadable(nc net.Conn) {
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

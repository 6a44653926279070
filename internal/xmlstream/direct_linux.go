package xmlstream

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const tryWriteSupported = true

// tryWrite makes one write of b to the socket that does not block (the
// runtime's sockets are non-blocking) and returns what it took.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	if werr == syscall.EAGAIN {
		werr = nil
	}
	return n, werr
}

// unread reports whether the socket has bytes waiting to be read; when it
// cannot tell, it says yes.
func unread(rc syscall.RawConn) bool {
	n := 1
	rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
			n = v
		}
	})
	return n > 0
}

//go:build !linux

package node

import (
	"errors"
	"net"
)

// peerCred is only implemented on Linux (SO_PEERCRED); elsewhere the
// control socket relies on its file mode alone.
func peerCred(*net.UnixConn) (Cred, error) {
	return Cred{PID: -1, UID: -1, GID: -1}, errors.ErrUnsupported
}

// Package deadline bounds the writes on a connection in time, for the
// streams whose writes go through a writer goroutine (xmlstream.Writer):
// a peer that stops reading makes a write fail after the timeout, instead
// of holding the writer, and what it queued, for as long as the
// connection lives.
package deadline

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a connection whose every write fails when it makes no progress
// for the timeout. The write deadline is moved only when less than half
// the timeout is left, so that a busy stream does not reset a timer for
// every write: a write that makes no progress fails after between half the
// timeout and the timeout. Reads are the caller's to bound.
//
// Conn passes the socket through (SyscallConn), so that a stream can wait
// on it and write to it without blocking (xmlstream.Spill); such writes
// never block, and need no deadline.
type Conn struct {
	net.Conn
	timeout time.Duration
	wdl     atomic.Int64 // the write deadline in force, as nanoseconds since epoch
	fixed   atomic.Bool  // Fix was called: the deadline no longer moves
	fixedAt atomic.Int64 // Fix's deadline, as nanoseconds since epoch
}

// epoch is the origin of the monotonic times Conn keeps.
var epoch = time.Now()

// New returns nc with writes bounded by timeout, which must be positive.
func New(nc net.Conn, timeout time.Duration) *Conn {
	return &Conn{Conn: nc, timeout: timeout}
}

// Timeout returns the timeout New was given.
func (c *Conn) Timeout() time.Duration { return c.timeout }

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.fixed.Load() {
		now := int64(time.Since(epoch))
		if c.wdl.Load()-now < int64(c.timeout/2) {
			dl := now + int64(c.timeout)
			c.Conn.SetWriteDeadline(epoch.Add(time.Duration(dl)))
			c.wdl.Store(dl)
			if c.fixed.Load() {
				// Fix ran meanwhile: its deadline holds.
				c.Conn.SetWriteDeadline(epoch.Add(time.Duration(c.fixedAt.Load())))
			}
		}
	}
	return c.Conn.Write(b)
}

// Fix sets one last write deadline, which writes no longer move: the
// stream is closing.
func (c *Conn) Fix(t time.Time) {
	c.fixedAt.Store(int64(t.Sub(epoch)))
	c.fixed.Store(true)
	c.Conn.SetWriteDeadline(t)
}

// SyscallConn returns the socket's, if it has one.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errNoSocket
	}
	return sc.SyscallConn()
}

var errNoSocket = &net.OpError{Op: "syscallconn", Err: syscall.EINVAL}

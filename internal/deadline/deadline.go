// Package deadline bounds the writes on a connection in time, for the
// streams whose writes go through a writer goroutine (xmlstream.Writer):
// a peer that stops reading makes a write fail after the timeout, instead
// of holding the writer, and what it queued, for as long as the
// connection lives. It also parks a quiet connection's reads (Park).
package deadline

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s2sd/s2sd/internal/netpoll"
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

	parked atomic.Pointer[netpoll.Waiter] // Park's, until it fires
	rdl    atomic.Int64                   // the read deadline, as nanoseconds since epoch; 0: none
	closed atomic.Bool
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

// SetReadDeadline implements net.Conn. A deadline (not zero) set while
// the connection is parked ends the park: the function Park was given
// runs, and its read returns at the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	c.readDeadline(t)
	return err
}

// SetDeadline implements net.Conn, as SetReadDeadline does for reads.
func (c *Conn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	c.readDeadline(t)
	return err
}

// readDeadline records the read deadline set; one that is not zero ends a
// park.
func (c *Conn) readDeadline(t time.Time) {
	if t.IsZero() {
		c.rdl.Store(0)
		return
	}
	c.rdl.Store(max(1, int64(t.Sub(epoch))))
	c.unpark()
}

// Close implements net.Conn. Closing a parked connection ends the park.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.closed.Store(true)
	c.unpark()
	return err
}

// Park runs f on a fresh goroutine once the connection is readable (bytes,
// the end of the stream, an error), its read deadline passes, a read
// deadline is set, or it is closed, without a goroutine waiting meanwhile
// (netpoll). f is expected to read: its read tells which. f runs once per
// Park. Park reports false, and does not run f, when the socket cannot be
// watched: the caller waits otherwise (xmlstream.WaitReadable). The
// connection must have no read in progress.
func (c *Conn) Park(f func()) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var w *netpoll.Waiter
	w = netpoll.New(func() {
		c.parked.CompareAndSwap(w, nil)
		f()
	})
	c.parked.Store(w)
	// A deadline set or a Close after the Store ends the park
	// (unpark); one before it is seen here.
	if c.closed.Load() {
		w.Fire()
	}
	var dl time.Time
	if d := c.rdl.Load(); d != 0 {
		dl = epoch.Add(time.Duration(d))
	}
	if !w.Arm(rc, dl) {
		c.parked.CompareAndSwap(w, nil)
		return false
	}
	return true
}

// Parked reports whether a Park is in progress: its f has not run yet.
func (c *Conn) Parked() bool { return c.parked.Load() != nil }

// unpark ends a park in progress.
func (c *Conn) unpark() {
	if w := c.parked.Load(); w != nil {
		w.Fire()
	}
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

package s2s

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
)

// A stream quiet for parkAfter parks, inbound (in.serve) and outbound
// (link.watch) alike. A goroutine's stack only grows, and the garbage
// collector shrinks it only while it uses less than a quarter: negotiation
// and stanza handling leave the goroutine that did them with an 8 KiB
// stack, which a stream that then idles for hours would hold, more than
// half of it unused (a read parked in crypto/tls uses over 2 KiB). So a
// parked stream's goroutine ends, and no goroutine waits until its socket
// is readable (park: the process's one epoll goroutine watches it, see
// internal/netpoll); then a fresh goroutine, with the smallest stack,
// reads and handles what came. A busy stream keeps its goroutine. Where
// there is no epoll, a fresh goroutine waits; where the socket cannot be
// waited on at all (xmlstream.CanWait), the stream keeps its goroutine.
//
// The stream's own deadlines (negotiation, idle) are its clock's
// (clock.go); the only read deadline the reading loop sets is parkAfter's,
// at most once every setEvery, as a timer reset for every stanza is
// measurable: a stream parks after between parkAfter-setEvery and
// parkAfter of quiet.
//
// Waiting on the socket is right only when TLS holds no record that is
// complete: a read that timed out tells just that (crypto/tls reads the
// socket only when it lacks one).
const (
	parkAfter = 100 * time.Millisecond
	setEvery  = parkAfter / 2
)

// errPark is returned by a reading loop when the stream has been quiet for
// parkAfter with nothing buffered: the goroutine ends, and the stream
// parks (park).
var errPark = errors.New("s2s: park")

// parking is a reading loop's part in parking, kept across parks.
type parking struct {
	can   bool      // the socket can be waited on (xmlstream.CanWait)
	setAt time.Time // when arm set the deadline in force; zero when none is
}

// arm sets parkAfter's read deadline before c waits for its peer with
// nothing buffered, unless it was set less than setEvery ago. It returns
// the clock's error when the stream expired just before.
func (p *parking) arm(c *Conn) error {
	if !p.can || c.r.Buffered() != 0 {
		return nil
	}
	now := time.Now()
	if !p.setAt.IsZero() && now.Sub(p.setAt) <= setEvery {
		return nil
	}
	c.nc.SetReadDeadline(now.Add(parkAfter))
	p.setAt = now
	// The clock may have woken the stream just before.
	if e := c.clk.expired(); e != nil {
		return e
	}
	return nil
}

// clear removes parkAfter's read deadline.
func (p *parking) clear(c *Conn) {
	c.nc.SetReadDeadline(time.Time{})
	p.setAt = time.Time{}
}

// timedOut handles a read of c that timed out, which leaves the reader
// (and TLS) able to go on: the deadline was the clock's (the stream
// expired: its error) or parkAfter's. With nothing buffered, the reader
// gives up its buffer and timedOut returns errPark; in the middle of an
// element, nil: read on.
func (p *parking) timedOut(c *Conn) error {
	if e := c.clk.expired(); e != nil {
		return e
	}
	p.clear(c)
	if e := c.clk.expired(); e != nil {
		return e
	}
	if p.can && c.r.Buffered() == 0 {
		c.r.Park()
		return errPark
	}
	return nil
}

// park parks c, counted in n (Server.Parked, Pool.Parked), until its
// socket is readable, then runs resume on a fresh goroutine. Where it
// can, no goroutine waits meanwhile (deadline.Conn.Park): the clock's
// expiry (a read deadline) and closing end the park as the socket's
// readiness does. Elsewhere the fresh goroutine waits (waitReadable)
// before resume.
func park(c *Conn, n *atomic.Int64, resume func()) {
	n.Add(1)
	wake := func() {
		waitReadable(c)
		n.Add(-1)
		resume()
	}
	if !c.raw.Park(wake) {
		go wake()
	}
}

// waitReadable waits until a parked stream's socket is readable, which it
// is already when epoll ended the park. Whatever ends the wait (bytes, end
// of stream, error, closing, the clock's deadline), the read that follows
// tells.
func waitReadable(c *Conn) {
	xmlstream.WaitReadable(c.raw)
}

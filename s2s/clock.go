package s2s

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2sd/s2sd/internal/deadline"
	"github.com/s2sd/s2sd/stream"
)

// A stream's timers have one owner: its clock. Each stream, inbound or
// outbound, has one, made when its connection is accepted or dialed, and
// nothing else sets a deadline on the connection. It goes through three
// phases:
//
//   - negotiating: the stream must authenticate by a deadline counted from
//     the accept (or the connect), whatever happens meanwhile: TLS
//     handshakes, stream restarts, dialback verifications.
//   - ready: the stream ends after IdleTimeout without traffic, counted
//     from the last traffic or, when there was none, from authentication.
//     On an inbound stream, traffic is whatever the peer sends (whitespace
//     keepalives included); on an outbound one, stanzas we send. Outbound
//     streams also send whitespace keepalives and, while stanzas wait for
//     an XEP-0198 acknowledgement, tick to ask for it and to notice a peer
//     that stopped answering.
//   - closing: reads and writes get a short fixed deadline, so that saying
//     goodbye to a peer that does not read cannot hold the stream.
//
// Every write is bounded in every phase: the connection below TLS (conn)
// refreshes the write deadline before each write, so a write that blocks
// longer than WriteTimeout fails and the stream ends.
//
// The timers fire on their own goroutines and tell the stream's owner
// through the callbacks; an expiry also wakes a read in progress (or a
// parked stream's wait) by moving the read deadline into the past, the way
// net/http and miekg/dns interrupt reads.
type clock struct {
	nc *conn

	negotiation time.Duration
	idle        time.Duration
	keepAlive   time.Duration // 0: no keepalives (inbound)
	outbound    bool          // idle counts stanzas sent, not bytes read

	// onExpire is called once when the negotiation or idle deadline
	// passes, with the stream error to end the stream with.
	onExpire func(*stream.Error)
	// onKeepAlive is called when a keepalive is due.
	onKeepAlive func()
	// onAckTick is called every ackTick while armed (armAck); it returns
	// whether to keep ticking.
	onAckTick func() bool

	mu      sync.Mutex
	phase   phase
	start   int64 // mono: when the stream began (accept or connect)
	readyAt int64 // mono: authentication
	t       *time.Timer
	ka      *time.Timer
	ack     *time.Timer
	// ackWanted: armAck was called since the tick last began
	ackWanted bool
	err       atomic.Pointer[stream.Error] // set once the stream expired
	sent      atomic.Int64                 // mono: last stanza sent (outbound)
}

type phase uint8

const (
	negotiating phase = iota
	ready
	closing
	stopped
)

// ackTick is the pace of acknowledgement requests while stanzas wait for
// one (XEP-0198).
const ackTick = 50 * time.Millisecond

// closeTimeout bounds what closing a stream may take: the writer draining,
// the stream error and </stream:stream> going out.
const closeTimeout = 2 * time.Second

// idleText is the text of the connection-timeout a stream idle for its
// idle timeout ends with.
const idleText = "idle stream"

// defaultWriteTimeout bounds a write that makes no progress.
const defaultWriteTimeout = 30 * time.Second

var epoch = time.Now()

// mono returns the monotonic time, in nanoseconds since the process began.
func mono() int64 { return int64(time.Since(epoch)) }

// newClock starts the clock of a stream that begins now, in its
// negotiating phase.
func newClock(nc *conn, negotiation, idle time.Duration) *clock {
	k := &clock{nc: nc, negotiation: durOr(negotiation, defaultNegotiation), idle: durOr(idle, 10*time.Minute)}
	k.start = mono()
	k.t = time.AfterFunc(k.negotiation, k.fire)
	return k
}

// negotiationDeadline is when the stream must be authenticated.
func (k *clock) negotiationDeadline() time.Time {
	return epoch.Add(time.Duration(k.start) + k.negotiation)
}

// Err returns the error the stream expired with, or nil.
func (k *clock) Err() error {
	if e := k.err.Load(); e != nil {
		return e
	}
	return nil
}

// ready moves the stream to its ready phase: the idle deadline replaces
// the negotiation deadline. It is called once authentication succeeds;
// later calls do nothing.
func (k *clock) ready() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase != negotiating || k.err.Load() != nil {
		return
	}
	k.phase = ready
	k.readyAt = mono()
	k.t.Reset(k.idle)
	if k.keepAlive > 0 && k.onKeepAlive != nil {
		k.ka = time.AfterFunc(k.keepAlive, k.keepalive)
	}
}

// configure sets what an outbound stream's owner (the Pool) wants of its
// ready phase: the idle timeout, keepalives, and the acknowledgement tick.
func (k *clock) configure(idle, keepAlive time.Duration, onKeepAlive func(), onAckTick func() bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.idle = durOr(idle, 10*time.Minute)
	k.keepAlive, k.onKeepAlive, k.onAckTick = keepAlive, onKeepAlive, onAckTick
	if k.phase != ready {
		return
	}
	// fire measures the quiet again: it only needs to come soon enough.
	k.t.Reset(k.idle)
	if k.keepAlive > 0 && k.onKeepAlive != nil && k.ka == nil {
		k.ka = time.AfterFunc(k.keepAlive, k.keepalive)
	}
}

// fire handles the negotiation or idle deadline.
func (k *clock) fire() {
	k.mu.Lock()
	var e *stream.Error
	switch k.phase {
	case negotiating:
		e = stream.New(stream.ConnectionTimeout, "not authenticated in time")
	case ready:
		last := k.readyAt
		if k.outbound {
			last = max(last, k.sent.Load())
		} else {
			last = max(last, k.nc.lastRead.Load())
		}
		if quiet := time.Duration(mono() - last); quiet < k.idle {
			k.t.Reset(k.idle - quiet)
			k.mu.Unlock()
			return
		}
		e = stream.New(stream.ConnectionTimeout, idleText)
	default:
		k.mu.Unlock()
		return
	}
	k.err.Store(e)
	k.mu.Unlock()
	// Wake a read in progress, or a parked stream's wait.
	k.nc.SetReadDeadline(aLongTimeAgo)
	if k.onExpire != nil {
		k.onExpire(e)
	}
}

// interrupt ends the stream from outside, as an expiry does: the owner of
// the stream's reads wakes and ends it with e, so that what only it may
// do (a last acknowledgement) happens before the stream error.
func (k *clock) interrupt(e *stream.Error) {
	k.mu.Lock()
	if k.phase >= closing || k.err.Load() != nil {
		k.mu.Unlock()
		return
	}
	k.err.Store(e)
	k.mu.Unlock()
	k.nc.SetReadDeadline(aLongTimeAgo)
}

// expired tells whether the stream's deadline passed: a reader that was
// woken by a read timeout checks it to tell an expiry from its own
// deadlines.
func (k *clock) expired() *stream.Error { return k.err.Load() }

func (k *clock) keepalive() {
	k.mu.Lock()
	if k.phase != ready {
		k.mu.Unlock()
		return
	}
	k.ka.Reset(k.keepAlive)
	k.mu.Unlock()
	k.onKeepAlive()
}

// stanzaSent records outbound traffic for the idle deadline.
func (k *clock) stanzaSent(now int64) { k.sent.Store(now) }

// armAck starts the acknowledgement tick if it is not running: there are
// stanzas waiting for an acknowledgement, or for room on the stream.
func (k *clock) armAck() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase != ready || k.onAckTick == nil {
		return
	}
	k.ackWanted = true
	if k.ack == nil {
		k.ack = time.AfterFunc(ackTick, k.tickAck)
	}
}

// ackTicks counts acknowledgement ticks, for tests that check the tick
// runs only while it has something to do.
var ackTicks atomic.Int64

func (k *clock) tickAck() {
	ackTicks.Add(1)
	k.mu.Lock()
	k.ackWanted = false
	k.mu.Unlock()
	again := k.onAckTick()
	k.mu.Lock()
	defer k.mu.Unlock()
	// armAck may have been called while onAckTick ran.
	if (again || k.ackWanted) && k.phase == ready && k.ack != nil {
		k.ack.Reset(ackTick)
		return
	}
	k.ack = nil
}

// closing ends the ready phase and bounds what is left of the stream:
// reads and writes fail after closeTimeout.
func (k *clock) closing() {
	k.mu.Lock()
	if k.phase >= closing {
		k.mu.Unlock()
		return
	}
	k.phase = closing
	k.stopLocked()
	k.mu.Unlock()
	k.nc.fix(time.Now().Add(closeTimeout))
}

// stop stops every timer: the stream is gone.
func (k *clock) stop() {
	k.mu.Lock()
	k.phase = stopped
	k.stopLocked()
	k.mu.Unlock()
}

func (k *clock) stopLocked() {
	k.t.Stop()
	if k.ka != nil {
		k.ka.Stop()
	}
	if k.ack != nil {
		k.ack.Stop()
		k.ack = nil
	}
}

// conn is a stream's TCP connection, below TLS. It bounds every write
// with the write timeout (deadline.Conn) and records when bytes last
// arrived. It passes its socket through (SyscallConn), so that parked
// streams can wait on it and writers can write to it without blocking
// (xmlstream.Spill).
type conn struct {
	*deadline.Conn
	lastRead atomic.Int64 // mono
	broken   atomic.Bool  // a write failed: no goodbye can go out
}

func newTimedConn(nc net.Conn, writeTimeout time.Duration) *conn {
	return &conn{Conn: deadline.New(nc, durOr(writeTimeout, defaultWriteTimeout))}
}

// Read implements net.Conn.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.lastRead.Store(mono())
	}
	return n, err
}

// Write implements net.Conn.
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

// fix sets one last deadline for reads and writes (closing).
func (c *conn) fix(t time.Time) {
	c.Conn.Fix(t)
	c.Conn.SetReadDeadline(t)
}

package s2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stream"
)

// Namespaces used in negotiation.
const (
	nsTLS              = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL             = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsDialbackFeature  = "urn:xmpp:features:dialback"
	nsSM               = "urn:xmpp:sm:3"
	nsDialback         = xmlstream.NSDialback
	nsServer           = xmlstream.NSServer
	alpnXMPPServer     = "xmpp-server"
	defaultNegotiation = 30 * time.Second
	// outboundPending bounds the bytes queued on an outbound stream's
	// writer; past it, stanzas wait in the pool's queue (back-pressure).
	outboundPending = 8 << 20
)

// State bits of a stream.
type State uint8

// States.
const (
	Secure   State = 1 << iota // TLS is up
	Verified                   // the peer's certificate is valid for its domain
	Authn                      // at least one domain pair is authenticated
	Ready                      // stanzas may flow
	Received                   // the stream was initiated by the peer
	DANE                       // the peer's certificate was verified with TLSA records (DANE)
)

// Conn is one negotiated server-to-server stream (RFC 6120 §4). An outbound
// Conn, made by a Dialer, sends stanzas; an inbound one, served by a Server,
// reads them. A Conn knows the domain pairs it has authenticated.
type Conn struct {
	nc     net.Conn
	tls    *tls.Conn
	r      *xmlstream.Reader
	w      *xmlstream.Writer
	log    *slog.Logger
	local  string // our domain (outbound: the sender; inbound: the header's to)
	remote string // the peer's domain
	id     string // the stream ID (ours on inbound, the peer's on outbound)

	mu    sync.Mutex
	state State
	// authenticated domain pairs: usually one, rarely more than a few (a
	// slice costs an idle stream far less than maps). Replaced, never
	// changed in place (under mu): every stanza reads it without a lock.
	pairs atomic.Pointer[[]pair]

	method string      // how the stream authenticated: "sasl-external" or "dialback"
	sm     atomic.Bool // XEP-0198 acknowledgements are enabled (read per stanza)

	hdrSent     bool // we have sent a stream header (inbound streams)
	canDialback bool // the peer offers dialback (outbound streams)

	// outbound: the target's validated TLSA records, if any (DANE)
	tlsa     []*dns.TLSA
	tlsaHost string

	// clk owns the stream's deadlines and timers (clock.go); raw is the
	// connection below TLS, whose deadlines they are.
	clk *clock
	raw *conn

	// created is when the connection was made (Unix nanoseconds);
	// stanzas counts the stanzas read (inbound) or written (outbound):
	// for operators (Since, Stanzas).
	created int64
	stanzas atomic.Uint64

	endSent   atomic.Bool // </stream:stream> has gone out (with a stream error)
	downOnce  sync.Once   // the stream was reported down (OnStream)
	closeOnce sync.Once
	// done holds Done's channel, made when first asked for (nothing in
	// s2sd waits for a stream's end that way, and an idle stream then
	// keeps no channel); the stream's end swaps in endedChan.
	done atomic.Pointer[chan struct{}]
}

// endedChan is the closed channel Done returns once a stream has ended.
var endedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

var outCtx = xmlstream.StreamContext{NS: nsServer}

// pair is an authenticated (remote domain, local domain) pair.
type pair struct{ remote, local string }

// newConn makes the Conn of a stream on nc, which is raw or TLS over raw,
// timed by clk.
func newConn(nc net.Conn, raw *conn, clk *clock, lim xmlstream.Limits, log *slog.Logger) *Conn {
	c := &Conn{
		nc:      nc,
		raw:     raw,
		clk:     clk,
		r:       xmlstream.NewReader(nc, lim),
		log:     log,
		created: time.Now().UnixNano(),
	}
	if t, ok := nc.(*tls.Conn); ok {
		c.tls = t
		c.state |= Secure
		c.r.SetIdleRelease(true)
	}
	return c
}

// The stream's own goroutine reads local, remote, id, nc and tls without
// the lock; it holds the lock when it changes them (an inbound stream
// learns them as it negotiates), so that the methods below may run on
// other goroutines (operators' status).

// Local returns our domain on the stream.
func (c *Conn) Local() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local
}

// Remote returns the peer's domain.
func (c *Conn) Remote() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

// ID returns the stream ID.
func (c *Conn) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// State returns the stream's state bits.
func (c *Conn) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Since returns when the stream's connection was made.
func (c *Conn) Since() time.Time { return time.Unix(0, c.created) }

// Stanzas returns the stanzas the stream carried so far: read from the
// peer on an inbound stream, written to it on an outbound one.
func (c *Conn) Stanzas() uint64 { return c.stanzas.Load() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc.RemoteAddr()
}

// TLSState returns the TLS connection state, if TLS is up.
func (c *Conn) TLSState() (tls.ConnectionState, bool) {
	c.mu.Lock()
	t := c.tls
	c.mu.Unlock()
	if t == nil {
		return tls.ConnectionState{}, false
	}
	return t.ConnectionState(), true
}

func (c *Conn) setState(s State) {
	c.mu.Lock()
	c.state |= s
	c.mu.Unlock()
}

func (c *Conn) authenticate(remote, local, method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.method = method
	if p := c.pairList(); !slices.Contains(p, pair{remote, local}) {
		p = append(slices.Clip(p), pair{remote, local})
		c.pairs.Store(&p)
	}
	c.state |= Authn | Ready
	if c.state&Received != 0 {
		// Inbound: the idle deadline replaces the negotiation deadline.
		// (An outbound stream is ready once its negotiation ends.)
		c.clk.ready()
	}
}

// AuthMethod returns how the stream was authenticated: "sasl-external",
// "dialback", or "" before authentication. An inbound stream that
// authenticated several pairs reports the last method.
func (c *Conn) AuthMethod() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.method
}

// StreamManagement reports whether XEP-0198 acknowledgements are enabled on
// the stream.
func (c *Conn) StreamManagement() bool { return c.sm.Load() }

// SendRaw queues raw bytes, which must be complete elements, on a ready
// stream (tools and tests).
func (c *Conn) SendRaw(b []byte) error {
	if c.w == nil {
		return errors.New("s2s: stream not ready")
	}
	return c.w.Write(b)
}

// Authenticated reports whether the pair (remote, local) is authenticated on
// the stream.
func (c *Conn) Authenticated(remote, local string) bool {
	return slices.Contains(c.pairList(), pair{remote, local})
}

// pairList returns the authenticated pairs; the caller must not change
// the slice.
func (c *Conn) pairList() []pair {
	if p := c.pairs.Load(); p != nil {
		return *p
	}
	return nil
}

// Pairs returns the authenticated pairs as remote -> locals.
func (c *Conn) Pairs() map[string][]string {
	pairs := c.pairList()
	out := make(map[string][]string, len(pairs))
	for _, p := range pairs {
		out[p.remote] = append(out[p.remote], p.local)
	}
	return out
}

// write sends raw bytes: on the stream's writer once it runs, otherwise
// on the connection, whose writes are bounded in time (clock.go).
func (c *Conn) write(b []byte) error {
	if c.w != nil {
		return c.w.Write(b)
	}
	_, err := c.nc.Write(b)
	return err
}

// next reads the next element during negotiation. The stream's clock
// bounds it; cancelling ctx interrupts it too (the stream is then of no
// further use).
func (c *Conn) next(ctx context.Context) (*xmlstream.Element, error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(aLongTimeAgo) })
	el, err := c.r.Next()
	stop()
	if err != nil {
		return nil, c.readErr(ctx, err)
	}
	if el.Space == stream.NS && el.Local == "error" {
		se, perr := stream.Parse(el.Raw)
		if perr != nil {
			return nil, perr
		}
		return nil, se
	}
	return el, nil
}

func (c *Conn) readHeader(ctx context.Context) (xmlstream.Header, error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(aLongTimeAgo) })
	h, err := c.r.ReadHeader()
	stop()
	if err != nil {
		return h, c.readErr(ctx, err)
	}
	return h, nil
}

// readErr says why a read during negotiation failed: the clock's
// deadline, ctx, or the connection.
func (c *Conn) readErr(ctx context.Context, err error) error {
	if e := c.clk.expired(); e != nil {
		return e
	}
	if ctx.Err() != nil {
		return stream.New(stream.ConnectionTimeout, "negotiation took too long")
	}
	return err
}

// fail sends a locally raised stream error to the peer and closes the
// stream; other errors just close it. It returns err.
func (c *Conn) fail(err error) error {
	var se *stream.Error
	if errors.As(err, &se) && !se.Remote {
		var b []byte
		if c.state&Received != 0 && !c.hdrSent {
			// RFC 6120 §4.9.1.2: open the stream first, so that the
			// error has a stream to go on.
			b = xmlstream.AppendHeader(nil, xmlstream.Header{NS: nsServer, ID: newStreamID(), Version: "1.0"}, false)
		}
		// The error closes the stream: close must not close it again.
		b = xmlstream.AppendStreamError(b, se)
		if !c.endSent.Swap(true) && !c.raw.broken.Load() {
			c.clk.closing()
			c.write(b)
		}
	}
	c.close()
	return err
}

// close ends the stream: the writer drains, </stream:stream> goes out, and
// the connection closes, all within closeTimeout (clock.closing).
func (c *Conn) close() {
	c.closeOnce.Do(func() {
		c.clk.closing()
		// After a failed write (a peer that does not read), the goodbye
		// would only wait for closeTimeout.
		if !c.endSent.Swap(true) && !c.raw.broken.Load() {
			c.write([]byte(xmlstream.StreamEnd))
		}
		if c.w != nil {
			c.w.Close()
		}
		c.nc.Close()
		c.clk.stop()
		c.ended()
	})
}

// abort drops the connection at once, without a goodbye: for a peer that
// no longer answers.
func (c *Conn) abort() {
	c.closeOnce.Do(func() {
		c.clk.stop()
		c.nc.Close()
		if c.w != nil {
			c.w.Close() // fails at once on the closed connection
		}
		c.ended()
	})
}

// ended closes Done's channel, if it was made, and makes Done return a
// closed one from now on. close and abort call it once.
func (c *Conn) ended() {
	if p := c.done.Swap(&endedChan); p != nil && p != &endedChan {
		close(*p)
	}
}

// Close ends the stream gracefully.
func (c *Conn) Close() error {
	c.close()
	return nil
}

// CloseWithError sends a stream error, then ends the stream.
func (c *Conn) CloseWithError(e *stream.Error) {
	c.fail(e)
}

// Done is closed when the stream has ended.
func (c *Conn) Done() <-chan struct{} {
	if p := c.done.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{})
	if c.done.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *c.done.Load() // made by another caller, or the stream ended
}

// startWriter hands writing to a batching writer goroutine: from now on,
// stanzas are queued without blocking on the network.
func (c *Conn) startWriter(maxPending int) {
	// The writer writes to nc, or without TLS to a Spill of it; with TLS
	// the Spill, if any, is below it (spill).
	var dst io.Writer = c.nc
	var sp *xmlstream.Spill
	if c.tls != nil {
		sp, _ = c.tls.NetConn().(*xmlstream.Spill)
	} else if sp = xmlstream.NewSpill(c.nc); sp != nil {
		dst = sp
	}
	c.w = xmlstream.NewWriter(dst, maxPending)
	if sp != nil {
		c.w.Direct(sp)
	}
	c.w.OnFail(c.writeFailed)
}

// writeFailed ends a stream whose writes made no progress for the write
// timeout, as its clock ends an expired one: the peer does not read. (A
// broken connection fails the reads too.)
func (c *Conn) writeFailed(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return
	}
	c.log.Info("the peer does not read; ending the stream", "err", err)
	c.clk.interrupt(stream.New(stream.ConnectionTimeout, "the peer does not read"))
}

// spill returns nc, or a Spill of it for TLS to write to, so that the
// stream's writer can write on its callers' goroutines (Writer.Direct).
func spill(nc net.Conn) net.Conn {
	if sp := xmlstream.NewSpill(nc); sp != nil {
		return sp
	}
	return nc
}

// Send queues a stanza on a ready outbound stream.
func (c *Conn) Send(s *route.Stanza) error {
	if c.w == nil {
		return errors.New("s2s: stream not ready")
	}
	return c.w.AppendFunc(len(s.El.Raw)+xmlstream.ReframeRoom, func(b []byte) []byte { return s.AppendTo(b, outCtx) })
}

// peerChain returns the peer's certificate chain, if TLS is up.
func (c *Conn) peerChain() []*x509.Certificate {
	if c.tls == nil {
		return nil
	}
	return c.tls.ConnectionState().PeerCertificates
}

// errorIsEOF reports whether err means the peer went away.
func errorIsEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, xmlstream.ErrStreamEnd)
}

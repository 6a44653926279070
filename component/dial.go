package component

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/s2sd/s2sd/internal/deadline"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stream"
)

// ErrClosed is returned by Conn methods after Close, and by Next once the
// stream has ended.
var ErrClosed = errors.New("component: stream closed")

// ContextDialer dials connections; *net.Dialer is one.
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Option configures Dial and NewClientConn.
type Option func(*options)

type options struct {
	dialer       ContextDialer
	limits       xmlstream.Limits
	maxPending   int
	writeTimeout time.Duration
	logger       *slog.Logger
}

// WithDialer sets the dialer Dial uses (default a zero net.Dialer).
func WithDialer(d ContextDialer) Option { return func(o *options) { o.dialer = d } }

// WithLimits bounds what the server may make the Conn buffer (default the
// xmlstream defaults).
func WithLimits(l xmlstream.Limits) Option { return func(o *options) { o.limits = l } }

// WithMaxPending bounds the bytes queued for a server that does not read
// fast enough (default 1 MiB); Send then fails with
// xmlstream.ErrPendingFull.
func WithMaxPending(n int) Option { return func(o *options) { o.maxPending = n } }

// WithWriteTimeout bounds each write to the server (default
// DefaultWriteTimeout): when the server takes nothing of what is queued for
// that long, the stream ends, Next returns the write's error and Send
// ErrClosed.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.writeTimeout = d } }

// WithLogger sets where the Conn logs what it skips (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

func newOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.dialer == nil {
		o.dialer = &net.Dialer{}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return o
}

// Conn is a component's authenticated stream to a server (XEP-0114). Send
// and Close may be called from any goroutine; Next from one at a time.
type Conn struct {
	nc     net.Conn
	wc     *deadline.Conn // nc with its writes bounded in time, which the writer writes to
	r      *xmlstream.Reader
	w      *xmlstream.Writer
	id     string
	domain string
	log    *slog.Logger

	readMu sync.Mutex

	mu      sync.Mutex
	closing bool
	werr    error         // from flushing the last bytes
	done    chan struct{} // closed when the connection is closed
}

// Dial connects to a server's component port at addr (host:port) and
// authenticates as domain with the shared secret. A stream error from the
// server (host-unknown, not-authorized, conflict…) is returned as a
// *stream.Error with Remote set, wrapped: test it with errors.Is, e.g.
// errors.Is(err, stream.ErrNotAuthorized). ctx bounds the connection and
// the handshake.
func Dial(ctx context.Context, addr, domain, secret string, opts ...Option) (*Conn, error) {
	o := newOptions(opts)
	nc, err := o.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("component: %w", err)
	}
	c, err := newClientConn(ctx, nc, domain, secret, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// NewClientConn runs the handshake on an established connection nc, as
// Dial does after dialing. On failure the caller closes nc.
func NewClientConn(ctx context.Context, nc net.Conn, domain, secret string, opts ...Option) (*Conn, error) {
	return newClientConn(ctx, nc, domain, secret, newOptions(opts))
}

func newClientConn(ctx context.Context, nc net.Conn, domain, secret string, o options) (*Conn, error) {
	// ctx's end unblocks the handshake's I/O (its deadline too: a
	// deadline set on nc could fire before ctx reports it).
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	c := &Conn{
		nc:     nc,
		r:      xmlstream.NewReader(nc, o.limits),
		domain: domain,
		log:    o.logger.With("domain", domain, "remote", nc.RemoteAddr().String()),
		done:   make(chan struct{}),
	}
	err := c.handshake(secret)
	if !stop() {
		// ctx ended during the handshake: report that, not the i/o
		// timeout it caused.
		if err == nil || isTimeout(err) {
			err = ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("component: handshake as %s: %w", domain, err)
	}
	nc.SetDeadline(time.Time{})
	c.wc = deadline.New(nc, cmp.Or(o.writeTimeout, DefaultWriteTimeout))
	c.w = xmlstream.NewWriter(c.wc, o.maxPending)
	// A write that failed ends the stream: Next wakes and ends it.
	c.w.OnFail(func(error) { nc.SetReadDeadline(aLongTimeAgo) })
	c.log = c.log.With("stream_id", c.id)
	return c, nil
}

// handshake runs XEP-0114 §3 as the component, writing directly to the
// connection (the Writer starts afterwards).
func (c *Conn) handshake(secret string) error {
	hdr := xmlstream.AppendHeader(nil, xmlstream.Header{NS: NS, To: c.domain}, false)
	if _, err := c.nc.Write(hdr); err != nil {
		return err
	}
	h, err := c.r.ReadHeader()
	if err != nil {
		return c.fail(err)
	}
	if h.NS != NS {
		return c.fail(stream.Errorf(stream.InvalidNamespace, "the server answered in %s", h.NS))
	}
	if h.ID == "" {
		// Without an id there is nothing to hash, and a stream error may
		// follow (host-unknown): read it first.
		el, err := c.r.Next()
		if err == nil && isStreamError(el) {
			return parseStreamError(el, h.Context())
		}
		return c.fail(stream.New(stream.InvalidXML, "the stream header has no id"))
	}
	c.id = h.ID
	d := make([]byte, 0, 64)
	d = append(d, "<handshake>"...)
	d = append(d, handshakeDigest(h.ID, secret)...)
	d = append(d, "</handshake>"...)
	if _, err := c.nc.Write(d); err != nil {
		// The server may have refused the domain and closed already.
		if el, rerr := c.r.Next(); rerr == nil && isStreamError(el) {
			return parseStreamError(el, h.Context())
		}
		return err
	}
	el, err := c.r.Next()
	switch {
	case err != nil:
		return c.fail(err)
	case isStreamError(el):
		return parseStreamError(el, h.Context())
	case el.Space == NS && el.Local == "handshake":
		return nil
	}
	return c.fail(stream.Errorf(stream.UnsupportedStanzaType, "expected <handshake/>, got {%s}%s", el.Space, el.Local))
}

// fail sends a local stream error to the server during the handshake and
// returns err.
func (c *Conn) fail(err error) error {
	var se *stream.Error
	if errors.As(err, &se) && !se.Remote {
		c.nc.SetWriteDeadline(time.Now().Add(closeTimeout))
		c.nc.Write(xmlstream.AppendStreamError(nil, se))
	}
	return err
}

// ID returns the stream id the server chose.
func (c *Conn) ID() string { return c.id }

// Domain returns the component's domain.
func (c *Conn) Domain() string { return c.domain }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the server's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Send queues raw, which must be one complete message, presence or iq
// stanza in the component namespace (an unprefixed stanza is in it; one
// that declares jabber:client is moved to it). It never blocks on the
// network: it fails with xmlstream.ErrPendingFull when MaxPending bytes
// are queued, and with ErrClosed after Close or the end of the stream. The
// server closes the stream if 'from' or 'to' is missing or 'from' is not
// at the component's domain.
func (c *Conn) Send(raw []byte) error {
	el, err := xmlstream.ParseElement(raw, streamCtx)
	if err != nil {
		return fmt.Errorf("component: Send: %w", err)
	}
	if !isStanza(el) {
		return fmt.Errorf("component: Send: {%s}%s is not a stanza", el.Space, el.Local)
	}
	return c.write(len(el.Raw)+xmlstream.ReframeRoom, func(b []byte) []byte { return el.AppendTo(b, streamCtx, streamCtx) })
}

// SendStanza queues st, reframed for the component stream (see Send).
func (c *Conn) SendStanza(st *route.Stanza) error {
	return c.write(len(st.El.Raw)+xmlstream.ReframeRoom, func(b []byte) []byte { return st.AppendTo(b, streamCtx) })
}

func (c *Conn) write(size int, f func([]byte) []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	if err := c.w.AppendFunc(size, f); err != nil {
		if errors.Is(err, xmlstream.ErrPendingFull) {
			return fmt.Errorf("component: %w", err)
		}
		return ErrClosed
	}
	return nil
}

// Next returns the next stanza from the server, with Origin
// route.FromRemote and its Ctx the server's stream. Whitespace keepalives and
// top-level elements that are not stanzas are skipped, and so is a stanza
// whose addresses are not JIDs (with a log line). When the server ends the
// stream, Next answers </stream:stream>, closes the connection and returns
// ErrClosed, or the *stream.Error the server sent (with Remote set). A
// violation of the stream by the server (bad XML, a limit) is sent to it as
// a stream error and returned. After Close, Next returns ErrClosed.
func (c *Conn) Next() (*route.Stanza, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		el, err := c.r.Next()
		if err != nil {
			var se *stream.Error
			switch {
			case c.isClosing():
				// Close is ending the stream; it reads the rest.
				return nil, ErrClosed
			case errors.Is(err, xmlstream.ErrStreamEnd):
				if c.begin(nil) {
					c.end(false)
				}
				return nil, ErrClosed
			case errors.As(err, &se):
				if c.begin(se) {
					c.end(true)
				}
				return nil, err
			}
			// Only the first to begin closing ends the stream: Close may
			// have begun since isClosing, and waits for readMu to end it.
			if c.begin(nil) {
				c.end(false)
			}
			if werr := c.w.Err(); werr != nil {
				// What woke the read: the server stopped reading.
				err = werr
			}
			return nil, fmt.Errorf("component: %w", err)
		}
		if isStreamError(el) {
			se := parseStreamError(el, c.r.Header().Context())
			if c.begin(nil) {
				c.end(true)
			}
			return nil, se
		}
		if !isStanza(el) {
			c.log.Debug("component: skipping a top-level element that is not a stanza", "name", el.Local, "ns", el.Space)
			continue
		}
		st, err := route.NewStanza(el, c.r.Header().Context(), route.FromRemote)
		if err != nil {
			c.log.Info("component: skipping a stanza", "err", err)
			continue
		}
		return st, nil
	}
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Close ends the stream with </stream:stream>, waits up to two seconds for
// the server's (a concurrent Next returns ErrClosed then), and closes the
// connection. Later calls wait for the first and return nil.
func (c *Conn) Close() error {
	if !c.begin(nil) {
		<-c.done
		return nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.end(true)
	if c.werr != nil {
		return fmt.Errorf("component: %w", c.werr)
	}
	return nil
}

// begin starts closing the stream: it sends se (if set) and
// </stream:stream>, flushes, half-closes the connection and sets the linger
// deadline for reading the server's end. Only the first call does anything
// and returns true; the caller must then call end.
func (c *Conn) begin(se *stream.Error) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	_ = c.w.AppendFunc(1024, func(b []byte) []byte {
		if se != nil {
			return xmlstream.AppendStreamError(b, se)
		}
		return append(b, xmlstream.StreamEnd...)
	})
	c.mu.Unlock()
	c.wc.Fix(time.Now().Add(closeTimeout))
	c.werr = c.w.Close()
	closeWrite(c.nc)
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	return true
}

// end finishes what begin started: with drain, it reads until the server's
// end or the linger deadline, so that its last bytes are not lost to a
// reset; then it closes the connection. The caller holds readMu.
func (c *Conn) end(drain bool) {
	if drain {
		for {
			if _, err := c.r.Next(); err != nil {
				break
			}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, 64<<10))
	}
	c.nc.Close()
	close(c.done)
}

package component

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// Defaults of Component.
const (
	DefaultMinBackoff           = time.Second
	DefaultMaxBackoff           = time.Minute
	DefaultDialHandshakeTimeout = 20 * time.Second
)

// ErrRunning is returned by Component.Run when it is already running.
var ErrRunning = errors.New("component: already running")

// Component keeps a component connected to a server: Run dials, runs the
// handshake, hands every stanza to Handler, and when the stream ends
// reconnects after an exponential backoff with jitter. Set the fields before
// Run.
type Component struct {
	// Addr is the server's component port, host:port.
	Addr string
	// Addrs are more servers that accept the component (the other nodes
	// of an s2sd cluster): an attempt that fails, or a stream that ends,
	// moves on to the next address, Addr first.
	Addrs []string
	// Domain and Secret are the component's domain and shared secret.
	Domain, Secret string

	// Handler receives each stanza from the server, on the reading
	// goroutine, with a context that ends with the stream. A *stanza.Error
	// it returns is sent back as the error reply; other errors are logged
	// and answered with internal-server-error. nil answers every stanza
	// with service-unavailable.
	Handler route.Handler

	// MinBackoff and MaxBackoff bound the wait between attempts (defaults
	// DefaultMinBackoff and DefaultMaxBackoff). The wait doubles after each
	// failure, is drawn at random from its upper half, and falls back to
	// MinBackoff once a stream has stayed up for MaxBackoff.
	MinBackoff, MaxBackoff time.Duration

	// HandshakeTimeout bounds each dial and handshake (default
	// DefaultDialHandshakeTimeout).
	HandshakeTimeout time.Duration

	// Options are passed to Dial.
	Options []Option

	// Logger receives connection events (keys domain, remote, stream_id);
	// nil means slog.Default(). The secret is never logged.
	Logger *slog.Logger

	// OnConnect, if set, is called after each successful handshake, before
	// stanzas are read; OnDisconnect when that stream has ended, with the
	// error that ended it (nil when Run's context ended it).
	OnConnect    func(*Conn)
	OnDisconnect func(error)

	mu      sync.Mutex
	running bool
	conn    *Conn
	next    int // index in Addr+Addrs of the next server to try (Run's goroutine)
}

func (c *Component) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Conn returns the current stream, or nil while disconnected.
func (c *Component) Conn() *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Send sends raw on the current stream (see Conn.Send). Nothing is queued
// across reconnections: while disconnected Send fails with
// route.ErrNotConnected at once, so the caller knows the stanza was not
// sent and decides whether to retry, drop or bounce it.
func (c *Component) Send(raw []byte) error {
	conn := c.Conn()
	if conn == nil {
		return route.ErrNotConnected
	}
	if err := conn.Send(raw); err != nil {
		if errors.Is(err, ErrClosed) {
			return route.ErrNotConnected
		}
		return err
	}
	return nil
}

// SendStanza is Send for a route.Stanza.
func (c *Component) SendStanza(st *route.Stanza) error {
	conn := c.Conn()
	if conn == nil {
		return route.ErrNotConnected
	}
	if err := conn.SendStanza(st); err != nil {
		if errors.Is(err, ErrClosed) {
			return route.ErrNotConnected
		}
		return err
	}
	return nil
}

// Run keeps the component connected until ctx ends, then closes the stream
// with </stream:stream> and returns ctx.Err(). Every failure, a refused
// handshake included (the server's configuration may be reloaded), is
// logged and retried.
func (c *Component) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrRunning
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	minB, maxB := c.MinBackoff, c.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB <= 0 {
		maxB = DefaultMaxBackoff
	}
	maxB = max(maxB, minB)
	backoff := minB
	log := c.logger().With("domain", c.Domain, "remote", c.Addr)
	for {
		up, err := c.session(ctx, log)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if up >= maxB {
			backoff = minB
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Warn("component: stream ended; reconnecting", "err", err, "up", up, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxB)
	}
}

// session runs one stream; it returns how long the stream was up (0 if the
// handshake failed) and the error that ended it.
func (c *Component) session(ctx context.Context, log *slog.Logger) (time.Duration, error) {
	hto := c.HandshakeTimeout
	if hto <= 0 {
		hto = DefaultDialHandshakeTimeout
	}
	addrs := append([]string{c.Addr}, c.Addrs...)
	var conn *Conn
	var err error
	for range addrs {
		addr := addrs[c.next%len(addrs)]
		dctx, cancel := context.WithTimeout(ctx, hto)
		conn, err = Dial(dctx, addr, c.Domain, c.Secret, c.Options...)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		log.Info("component: cannot connect", "addr", addr, "err", err)
		c.next++
	}
	if err != nil {
		return 0, err
	}
	// The next session starts with the next server: when this stream
	// ends, its server is likely going away.
	c.next++
	start := time.Now()
	log.Info("component: connected", "stream_id", conn.ID())
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	if c.OnConnect != nil {
		c.OnConnect(conn)
	}
	sctx, scancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	for {
		var st *route.Stanza
		st, err = conn.Next()
		if err != nil {
			break
		}
		c.handle(sctx, conn, st, log)
	}
	scancel()
	stop()
	c.mu.Lock()
	c.conn = nil
	c.mu.Unlock()
	conn.Close()
	if ctx.Err() != nil {
		err = nil
	}
	if c.OnDisconnect != nil {
		c.OnDisconnect(err)
	}
	return time.Since(start), err
}

func (c *Component) handle(ctx context.Context, conn *Conn, st *route.Stanza, log *slog.Logger) {
	var err error
	if c.Handler == nil {
		err = stanza.New(stanza.ServiceUnavailable, "")
	} else {
		err = c.Handler.Deliver(ctx, st)
	}
	if err == nil {
		return
	}
	var se *stanza.Error
	if !errors.As(err, &se) {
		log.Warn("component: handler failed", "stanza", st.String(), "err", err)
		se = stanza.New(stanza.InternalServerError, "")
	}
	if r := route.ErrorReply(st, se); r != nil {
		_ = conn.SendStanza(r)
	}
}

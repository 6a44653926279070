package component

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2sd/s2sd/internal/deadline"
	"github.com/s2sd/s2sd/internal/fifo"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// DefaultAddr is where ListenAndServe listens when given no address: the
// conventional component port, on loopback only, because XEP-0114 streams
// are neither encrypted nor authenticated beyond the shared secret.
const DefaultAddr = "127.0.0.1:5347"

// DefaultHandshakeTimeout is the default of Server.HandshakeTimeout.
const DefaultHandshakeTimeout = 10 * time.Second

// DefaultWriteTimeout is the default of Server.WriteTimeout.
const DefaultWriteTimeout = 30 * time.Second

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("component: server closed")

// errClosing stops a handshake whose stream was closed from elsewhere.
var errClosing = errors.New("component: stream closing")

// ConflictPolicy says what happens when a component authenticates for a
// domain that already has a stream.
type ConflictPolicy uint8

// Conflict policies. Either way the loser receives the conflict stream
// error (RFC 6120 §4.9.3.3) and is closed.
const (
	// Replace closes the old stream and routes the domain to the new one:
	// a component that lost its connection without noticing (a NAT timeout)
	// reconnects at once instead of waiting for the old stream to time out.
	Replace ConflictPolicy = iota
	// Refuse keeps the old stream and closes the new one after its
	// handshake, as Prosody does by default (its
	// component_conflict_resolve option; Replace is its "kick_old").
	Refuse
)

func (p ConflictPolicy) String() string {
	if p == Refuse {
		return "refuse"
	}
	return "replace"
}

// ConnState is the state of a component connection, for Server.ConnState.
type ConnState uint8

// Connection states.
const (
	// StateNew: accepted, handshake not completed.
	StateNew ConnState = iota
	// StateActive: authenticated; stanzas for the domain go to it.
	StateActive
	// StateClosed: closed. Reported once per connection.
	StateClosed
)

func (s ConnState) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateClosed:
		return "closed"
	}
	return "new"
}

// Server accepts XEP-0114 component streams. Set the fields before calling
// Serve; the zero value refuses every component (no Secret).
//
// A Server is also the route.Handler of its components' domains: Deliver
// writes a stanza to the component connected for the stanza's 'to' domain.
type Server struct {
	// Secret returns the shared secret of a component domain, or false if
	// the domain is not a component of ours (the stream is then closed with
	// host-unknown). It is called for each new stream, so a configuration
	// reload applies to the next connection. nil refuses every domain.
	Secret func(domain string) (secret string, ok bool)

	// Handler receives each stanza a component sends, as a route.Stanza with
	// Origin route.FromComponent, on the connection's goroutine: a slow
	// handler slows that component down. Its context ends when the stream
	// does. A *stanza.Error it returns is sent back to the component as the
	// error reply (route.ErrNotConnected as service-unavailable, anything
	// else as internal-server-error). nil answers every stanza with
	// service-unavailable.
	Handler route.Handler

	// Lend hands stanzas to Handler in the stream's read buffer rather
	// than in a copy of their own, as s2s.Server.Lend does: each is valid
	// only until Deliver returns, and a handler that keeps one calls its
	// Own method first (route.Handler). The stream reuses the stanzas,
	// and their elements, that were not kept. Set it when every handler
	// the stanzas reach does so.
	Lend bool

	// Conflict is the policy for a second stream for a connected domain
	// (default Replace).
	Conflict ConflictPolicy

	// Limits bound what one component may make the server buffer; zero
	// fields take the xmlstream defaults. A violation is a policy-violation
	// stream error.
	Limits xmlstream.Limits

	// HandshakeTimeout bounds the time from accepting a connection to a
	// successful handshake (default DefaultHandshakeTimeout). A peer that
	// is slower, or that opens connections and sends nothing, is closed
	// with connection-timeout.
	HandshakeTimeout time.Duration

	// IdleTimeout, when positive, closes with connection-timeout a
	// component stream that sends nothing (not even a whitespace
	// keepalive) for that long. Zero means never.
	IdleTimeout time.Duration

	// WriteTimeout bounds each write to a component (default
	// DefaultWriteTimeout): a component that takes nothing of what waits
	// for it for that long is disconnected, and the stanzas it was not
	// given are bounced with service-unavailable. The value in force when
	// a component connects applies to its stream.
	WriteTimeout time.Duration

	// MaxPending is the most bytes queued for one component that does not
	// read fast enough (default 4 MiB); Deliver then fails with the
	// resource-constraint stanza error.
	MaxPending int
	// RateLimit paces each component to this many stanzas a second, with
	// bursts of RateBurst: past it, reading stops and TCP pushes back
	// (0, the default, means no limit).
	RateLimit float64
	RateBurst int

	// Logger receives connection events with the keys domain, remote and
	// stream_id. nil means slog.Default(). Secrets are never logged.
	Logger *slog.Logger

	// OnConnect, if set, is called when a component has authenticated and
	// its domain is routed to it; OnDisconnect once for each OnConnect,
	// after it, when the domain stops being routed to that stream. Under
	// Replace the old stream's OnDisconnect comes before the new one's
	// OnConnect. They run on connection goroutines and should not block.
	OnConnect    func(domain string)
	OnDisconnect func(domain string)

	// ConnState, if set, is called when a connection changes state, as in
	// net/http.Server: for counting connections in metrics.
	ConnState func(net.Conn, ConnState)

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	domains   map[string]*serverConn
	// routes is a copy of domains for Deliver (publishRoutes)
	routes atomic.Pointer[map[string]*serverConn]
	wg     sync.WaitGroup
}

var _ route.Handler = (*Server)(nil)

// Update changes a Server that may be serving: f may set Conflict, which
// applies to the next handshake, and Limits, RateLimit and RateBurst,
// which apply to connections accepted afterwards. Other fields must not
// change once the Server serves.
func (s *Server) Update(f func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Info describes a connected component (Components).
type Info struct {
	Domain     string
	RemoteAddr net.Addr
	StreamID   string
	// Since is when the component authenticated.
	Since time.Time
	// In counts the stanzas it sent, Out those written to it.
	In, Out uint64
}

// Components returns the components connected now, sorted by domain.
func (s *Server) Components() []Info {
	s.mu.Lock()
	out := make([]Info, 0, len(s.domains))
	for d, c := range s.domains {
		out = append(out, Info{Domain: d, RemoteAddr: c.nc.RemoteAddr(), StreamID: c.id, Since: c.since, In: c.in.Load(), Out: c.out.Load()})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.Domain, b.Domain) })
	return out
}

// CloseDomain ends the stream of the component connected for domain, if any,
// with the stream error e, and reports whether there was one.
func (s *Server) CloseDomain(domain string, e *stream.Error) bool {
	s.mu.Lock()
	c := s.domains[domain]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	c.close(e, true)
	return true
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (s *Server) setState(nc net.Conn, st ConnState) {
	if s.ConnState != nil {
		s.ConnState(nc, st)
	}
}

// ListenAndServe listens on the TCP address addr (DefaultAddr if empty) and
// calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	if s.shuttingDown() {
		return ErrServerClosed
	}
	if addr == "" {
		addr = DefaultAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Serve accepts component connections on l, each served by its own
// goroutine, until l fails or the server is shut down; it then returns
// ErrServerClosed. Serve closes l.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			// Out of file descriptors and the like: wait, as net/http does.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("component: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops the server gracefully: it closes the listeners, ends every
// component stream with the system-shutdown stream error and
// </stream:stream>, and waits until every connection is closed or ctx ends;
// in the latter case the remaining connections are closed at once and
// ctx.Err() is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	lerr, conns := s.stop()
	for _, c := range conns {
		c.close(stream.New(stream.SystemShutdown, "the server is shutting down"), true)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return lerr
	case <-ctx.Done():
		for _, c := range conns {
			c.wc.Close()
		}
		return ctx.Err()
	}
}

// CloseListeners stops accepting new components; those connected stay.
// A daemon that stops calls it first, then drains, then Shutdown.
func (s *Server) CloseListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
}

// Close closes the listeners and every connection at once, without ending
// the streams. Use Shutdown to end them properly.
func (s *Server) Close() error {
	lerr, conns := s.stop()
	for _, c := range conns {
		c.close(nil, false)
		c.wc.Close()
	}
	return lerr
}

// stop marks the server closed, closes its listeners and returns its
// connections.
func (s *Server) stop() (error, []*serverConn) {
	s.mu.Lock()
	s.closed = true
	var lerr error
	for l := range s.listeners {
		if err := l.Close(); err != nil && lerr == nil && !errors.Is(err, net.ErrClosed) {
			lerr = err
		}
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	return lerr, conns
}

// Connected returns the domains of the components connected now, sorted.
func (s *Server) Connected() []string {
	s.mu.Lock()
	l := make([]string, 0, len(s.domains))
	for d := range s.domains {
		l = append(l, d)
	}
	s.mu.Unlock()
	slices.Sort(l)
	return l
}

// Deliver writes st to the component connected for st.To's domain,
// reframed for the component's stream (its namespace; the xml:lang and
// prefixes of the stream st was read on made explicit). It never blocks on
// the network. It returns route.ErrNotConnected when no component is
// connected for the domain, and a *stanza.Error resource-constraint when
// the component does not read fast enough.
func (s *Server) Deliver(_ context.Context, st *route.Stanza) error {
	var c *serverConn
	if m := s.routes.Load(); m != nil {
		c = (*m)[st.ToDomain()]
	}
	if c == nil {
		return route.ErrNotConnected
	}
	return c.send(st)
}

// AfterWritten calls done once every stanza delivered so far to a
// connected component has been written to its connection, or with the
// error of the first connection that fails before. It never blocks: done
// runs on a connection's writer goroutine, or at once. s2s uses it to
// acknowledge stanzas to a remote server (XEP-0198) without stopping
// its stream, so that an acknowledged stanza is not only in this
// process's memory.
func (s *Server) AfterWritten(done func(error)) { s.AfterWrittenFrom(nil, done) }

// AfterWrittenFrom is AfterWritten for a caller on the goroutine that
// reads src (an s2s stream), handling one of its elements: the
// connections' writers are not woken for it while src has more buffered,
// and done runs once what is queued goes out with the rest of src's
// batch (xmlstream.Writer.AfterWrittenFrom). src may be nil.
func (s *Server) AfterWrittenFrom(src xmlstream.Source, done func(error)) {
	// The connected components as Deliver sees them: a copy no one
	// changes, read without s.mu.
	var conns map[string]*serverConn
	if m := s.routes.Load(); m != nil {
		conns = *m
	}
	if len(conns) == 0 {
		done(nil)
		return
	}
	var left atomic.Int32
	var failed atomic.Bool
	left.Store(int32(len(conns)))
	for _, c := range conns {
		c.w.AfterWrittenFrom(src, func(err error) {
			if err != nil {
				if !failed.Swap(true) {
					done(err)
				}
				return
			}
			// A connection that failed never counts down.
			if left.Add(-1) == 0 {
				done(nil)
			}
		})
	}
}

func (s *Server) newConn(nc net.Conn) *serverConn {
	id := newStreamID()
	s.mu.Lock()
	lim, rate, burst := s.Limits, s.RateLimit, s.RateBurst
	wt := cmp.Or(s.WriteTimeout, DefaultWriteTimeout)
	s.mu.Unlock()
	c := &serverConn{
		s:         s,
		nc:        nc,
		wc:        deadline.New(nc, wt),
		id:        id,
		rate:      rate,
		burst:     burst,
		r:         xmlstream.NewReader(nc, lim),
		canPark:   xmlstream.CanWait(nc),
		flushed:   make(chan struct{}),
		connected: make(chan struct{}),
		log:       s.logger().With("remote", nc.RemoteAddr().String(), "stream_id", id),
	}
	// Until its first stanza (readLoop), the stream reads with the
	// Reader's small idle buffer and a shared one for what comes: a
	// component that stays quiet never holds a read buffer of its own.
	c.r.SetIdleRelease(true)
	// Stanzas handled on the goroutine reading them may be written there
	// too (xmlstream.Writer.Direct), without blocking; the writer
	// goroutine's writes are bounded by the write timeout.
	if sp := xmlstream.NewSpill(c.wc); sp != nil {
		c.w = xmlstream.NewWriter(sp, cmp.Or(s.MaxPending, 4<<20))
		c.w.Direct(sp)
	} else {
		c.w = xmlstream.NewWriter(c.wc, cmp.Or(s.MaxPending, 4<<20))
	}
	c.w.OnFail(c.writeFailed)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.cancel()
		c.w.Close()
		return nil
	}
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.setState(nc, StateNew)
	return c
}

// register routes c's domain to c after a successful handshake, queueing
// the <handshake/> reply first so that no stanza can precede it. It
// returns the stream c replaces, if any.
func (s *Server) register(c *serverConn) (*serverConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, stream.New(stream.SystemShutdown, "the server is shutting down")
	}
	old := s.domains[c.domain]
	if old != nil && s.Conflict == Refuse {
		return nil, stream.New(stream.Conflict, "a component is already connected for this domain")
	}
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return nil, errClosing
	}
	err := c.w.Write([]byte("<handshake/>"))
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.domains == nil {
		s.domains = make(map[string]*serverConn)
	}
	s.domains[c.domain] = c
	s.publishRoutes()
	c.registered = true
	c.since = time.Now()
	return old, nil
}

// publishRoutes makes Deliver see s.domains as it is now; s.mu is held.
// Deliver reads a copy, made at each change (components come and go
// rarely), without a lock: a stanza costs no lock that connecting,
// disconnecting and AfterWritten share.
func (s *Server) publishRoutes() {
	m := maps.Clone(s.domains)
	s.routes.Store(&m)
}

// unregister stops routing c's domain to c, once. It reports whether c
// was routed.
func (s *Server) unregister(c *serverConn) bool {
	s.mu.Lock()
	was := c.registered
	if was && s.domains[c.domain] == c {
		// c.domain is only read once registered: the handshake sets it
		// before registering.
		delete(s.domains, c.domain)
		s.publishRoutes()
	}
	c.registered = false
	s.mu.Unlock()
	if was {
		// OnConnect comes first, even when c is replaced or shut down
		// before its handshake goroutine reaches it.
		<-c.connected
		if s.OnDisconnect != nil {
			s.OnDisconnect(c.domain)
		}
	}
	return was
}

func (s *Server) forget(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serverConn is one accepted component connection.
type serverConn struct {
	s  *Server
	nc net.Conn
	// wc is nc with its writes bounded in time, which the writer writes
	// to; read deadlines and Close go through it too, as they must end a
	// park (deadline.Conn.Park).
	wc  *deadline.Conn
	id  string
	r   *xmlstream.Reader
	w   *xmlstream.Writer
	ctx context.Context // ends with the stream; for the Handler
	// cancel ends ctx.
	cancel  context.CancelFunc
	flushed chan struct{} // closed when the last bytes are written
	// connected is closed once OnConnect has returned.
	connected chan struct{}

	// Set by the handshake before the domain is registered, then constant.
	domain string
	inCtx  xmlstream.StreamContext

	registered bool      // under s.mu
	since      time.Time // when registered; under s.mu

	// Constant, from the Server when the connection was accepted.
	rate    float64
	burst   int
	canPark bool // the socket can be waited on (run)

	// The reading goroutine's, kept across parks (run).
	lim     *xmlstream.Limiter
	quiet   bool      // no stanza for releaseAfter: reads without a buffer, parks
	dlSet   bool      // a read deadline is set
	idleAt  time.Time // when the stream idles out, if IdleTimeout is set; zero: from the next read
	resumed bool      // the socket is readable: read, do not park
	// spare is the last stanza lent to the Handler (Server.Lend) and let
	// go, for the next: dropped when the stream parks.
	spare *route.Stanza
	// Stanzas read from the component and written to it.
	in, out atomic.Uint64

	// graceful: the stream is closing by our choice (system-shutdown or
	// </stream:stream>): what the component sent before it knew is still
	// handled while the stream drains.
	graceful atomic.Bool

	mu  sync.Mutex
	log *slog.Logger
	// closing is set once, under mu; the reading goroutine reads it for
	// each stanza, without mu.
	closing    atomic.Bool
	headerSent bool
	// inflight are the stanzas queued on w and not yet taken by the
	// connection, with where each ends in w's byte count: those still here
	// when the connection fails are bounced. It is consumed from its
	// front in flights, an array it reuses (fifo.Push).
	inflight []flight
	flights  []flight
}

// flight is a stanza queued on w: its bytes as queued, which the Writer
// keeps in place until the connection takes them (for good once it
// failed), and where they end in w's byte count. The stanza itself is
// not kept: it may borrow the buffer of the stream it came from
// (s2s.Server.Lend, Server.Lend).
type flight struct {
	raw []byte
	end int64
}

// serve runs the connection: handshake, then stanzas until the stream ends.
func (c *serverConn) serve() {
	if err := c.handshake(); err != nil {
		c.stop(err)
		return
	}
	c.lim = xmlstream.NewLimiter(c.rate, c.burst)
	c.r.SetBorrow(c.s.Lend) // stanzas alone from now on
	c.quiet = true
	c.run()
}

// run reads stanzas until the stream ends, or parks it. A goroutine's
// stack only grows, and the collector shrinks it only while it uses less
// than a quarter: the handshake and stanza handling leave the reading
// goroutine with a stack of 4 KiB or more, which a component that then
// idles would hold. So a quiet stream parks (readLoop): its goroutine
// ends, nothing waits but the process's epoll goroutine (internal/netpoll)
// until the socket is readable, and a fresh goroutine, with the smallest
// stack, goes on. Where there is no epoll, the fresh goroutine waits; a
// stream whose socket cannot be waited on (xmlstream.CanWait) keeps its
// goroutine.
func (c *serverConn) run() {
	err := c.readLoop()
	if err == errPark {
		c.spare = nil
		// No goroutine waits where there is epoll (deadline.Conn.Park):
		// a read deadline (idle, closing) or closing ends the park as
		// the socket's readiness does.
		if !c.wc.Park(c.resume) {
			go c.resume()
		}
		return
	}
	c.stop(err)
}

// resume waits for a parked stream's socket to be readable, or its read
// deadline (idle, closing), then reads on.
func (c *serverConn) resume() {
	xmlstream.WaitReadable(c.nc)
	c.resumed = true
	c.run()
}

// stop ends the stream after its reads stopped with err.
func (c *serverConn) stop(err error) {
	defer c.s.wg.Done()
	c.end(err)
	c.finish()
}

// errPark is returned by readLoop when the stream is quiet and parks.
var errPark = errors.New("component: park")

func (c *serverConn) logger() *slog.Logger {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log
}

// setReadDeadline sets the read deadline unless the stream is closing
// (which sets its own).
func (c *serverConn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing.Load() {
		c.wc.SetReadDeadline(t)
	}
}

func (c *serverConn) isClosing() bool { return c.closing.Load() }

// handshake runs XEP-0114 §3 as the server.
func (c *serverConn) handshake() error {
	c.setReadDeadline(time.Now().Add(c.s.handshakeTimeout()))
	h, err := c.r.ReadHeader()
	if err != nil {
		return err
	}
	c.inCtx = h.Context()
	if h.NS != NS {
		return stream.Errorf(stream.InvalidNamespace, "component streams are in the %s namespace", NS)
	}
	if h.To == "" {
		return stream.New(stream.HostUnknown, "the stream header has no 'to'")
	}
	j, err := route.ParseJID(h.To)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return stream.New(stream.HostUnknown, "'to' is not a domain")
	}
	domain := j.Domainpart()
	c.mu.Lock()
	c.log = c.log.With("domain", domain)
	c.mu.Unlock()
	var secret string
	ok := false
	if c.s.Secret != nil {
		secret, ok = c.s.Secret(domain)
	}
	if !ok {
		return stream.New(stream.HostUnknown, "no component is configured for this domain")
	}
	c.domain = domain
	if err := c.writeHeader(domain); err != nil {
		return err
	}
	el, err := c.r.Next()
	if err != nil {
		return err
	}
	if el.Space != NS || el.Local != "handshake" {
		// RFC 6120 §4.9.3.12: data before authentication.
		return stream.New(stream.NotAuthorized, "handshake expected")
	}
	if !checkHandshake(el.Inner(), c.id, secret) {
		return stream.New(stream.NotAuthorized, "handshake failed")
	}
	old, err := c.s.register(c)
	if err != nil {
		return err
	}
	if old != nil {
		old.logger().Info("component: stream replaced by a new one")
		old.close(stream.New(stream.Conflict, "replaced by a new stream for the same domain"), true)
	}
	c.setReadDeadline(time.Time{})
	c.s.setState(c.nc, StateActive)
	c.logger().Info("component: connected")
	if c.s.OnConnect != nil {
		c.s.OnConnect(domain)
	}
	close(c.connected)
	return nil
}

func (c *serverConn) writeHeader(domain string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.Load() {
		return errClosing
	}
	c.headerSent = true
	return c.w.Write(xmlstream.AppendHeader(nil, xmlstream.Header{NS: NS, From: domain, ID: c.id}, false))
}

// readLoop reads stanzas until the stream ends, or returns errPark when
// it is quiet (run).
func (c *serverConn) readLoop() error {
	// Whatever ends the loop, elements handled here go out.
	defer c.r.Wake()
	// A stream quiet for releaseAfter (or since its handshake) waits for
	// its next bytes without a read buffer of its own
	// (xmlstream.Reader.SetIdleRelease), and parks: an idle component then
	// holds 4 KiB less, and a goroutine with the smallest stack. A busy
	// one keeps its buffer, as waiting that way splits the first read of
	// each burst in two.
	for {
		release := !c.quiet && c.r.Buffered() == 0
		var dl time.Time
		if c.s.IdleTimeout > 0 || release {
			now := time.Now()
			if c.s.IdleTimeout > 0 && c.idleAt.IsZero() {
				c.idleAt = now.Add(c.s.IdleTimeout)
			}
			dl = c.idleAt
			if release && (dl.IsZero() || dl.Sub(now) > releaseAfter) {
				dl = now.Add(releaseAfter)
			}
		}
		if !dl.IsZero() || c.dlSet {
			c.setReadDeadline(dl)
			c.dlSet = !dl.IsZero()
		}
		if c.quiet && c.canPark && !c.resumed && c.r.Buffered() == 0 && !c.isClosing() {
			c.r.Park()
			return errPark
		}
		c.resumed = false
		el, err := c.r.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !c.isClosing() && (c.idleAt.IsZero() || time.Now().Before(c.idleAt)) {
				// The quiet deadline, not the idle one: the reader
				// keeps what it has and goes on (in the middle of an
				// element, from its start).
				if c.r.Buffered() == 0 {
					c.r.Release()
					c.r.SetIdleRelease(true)
					c.quiet = true
				}
				continue
			}
			return err
		}
		c.idleAt = time.Time{} // counted again from this element
		if c.quiet {
			c.r.SetIdleRelease(false)
			c.quiet = false
		}
		if c.isClosing() && !c.graceful.Load() {
			continue // drain until the peer's end or the linger deadline
		}
		// Closing gracefully (our </stream:stream> or system-shutdown):
		// what the component sent before it saw that is handled.
		st, err := c.stanza(el)
		if err != nil {
			var se *stanza.Error
			if !errors.As(err, &se) {
				return err
			}
			c.reply(st, se)
			continue
		}
		st.Source = c.r // handled here, on the reading goroutine
		st.At = c.r.ReadAt()
		c.in.Add(1)
		c.handle(st)
		if st.LetGo(el) {
			c.spare = st // for the next stanza
		}
		c.lim.Wait(c.r)
	}
}

// releaseAfter is how long a component stream is quiet before it waits
// without a read buffer (readLoop); a variable for tests.
var releaseAfter = time.Second

// bounceUnwritten returns to their senders the stanzas the connection never
// took: a component that goes away with stanzas in flight loses none
// silently.
func (c *serverConn) bounceUnwritten() {
	c.mu.Lock()
	_, written := c.w.Progress()
	var lost [][]byte
	for _, f := range c.inflight {
		if f.end > written {
			lost = append(lost, f.raw)
		}
	}
	c.inflight = nil
	c.mu.Unlock()
	if len(lost) == 0 || c.s.Handler == nil {
		return
	}
	c.logger().Info("component: connection lost with stanzas not written; bouncing them", "count", len(lost))
	for _, raw := range lost {
		// The writer has stopped (finish waits for it): the bytes are
		// as queued. They were checked on the way in.
		el, err := xmlstream.ParseElement(raw, streamCtx)
		var st *route.Stanza
		if err == nil {
			st, err = route.NewStanza(el, streamCtx, route.FromLocal)
		}
		if err != nil {
			c.logger().Error("component: a stanza not written does not parse; not bounced", "err", err)
			continue
		}
		if reply := route.ErrorReply(st, stanza.New(stanza.ServiceUnavailable, "the component disconnected before receiving it")); reply != nil {
			c.s.Handler.Deliver(context.Background(), reply)
		}
	}
}

// stanza checks an element from the component. A stream error ends the
// stream; a *stanza.Error is answered, with the stanza built from the
// envelope alone.
func (c *serverConn) stanza(el *xmlstream.Element) (*route.Stanza, error) {
	if !isStanza(el) {
		if el.Space == NS && el.Local == "handshake" {
			return nil, stream.New(stream.UnsupportedStanzaType, "already authenticated")
		}
		return nil, stream.Errorf(stream.UnsupportedStanzaType, "{%s}%s is not a stanza", el.Space, el.Local)
	}
	from, _ := el.AttrBytes("from")
	to, _ := el.AttrBytes("to")
	if len(from) == 0 || len(to) == 0 {
		// RFC 6120 §4.9.3.7; XEP-0114 streams are addressed like s2s.
		return nil, stream.New(stream.ImproperAddressing, "stanzas from a component need 'from' and 'to'")
	}
	// The stanza is made first, which parses both addresses once; a
	// bad 'from' ends the stream, a bad 'to' gets jid-malformed.
	st := c.spare
	if st == nil {
		st = new(route.Stanza)
	}
	c.spare = nil
	err := st.Init(el, c.inCtx, route.FromComponent)
	if err == nil {
		if st.FromDomain() != c.domain {
			return nil, errNotFromDomain()
		}
		return st, nil
	}
	c.spare = st // not handed out
	fj, ferr := route.ParseJIDBytes(from)
	if ferr != nil {
		return nil, stream.New(stream.ImproperAddressing, "'from' is not a JID")
	}
	if fj.Domainpart() != c.domain {
		return nil, errNotFromDomain()
	}
	// Only 'to' can be malformed now: answer jid-malformed.
	var se *stanza.Error
	if !errors.As(err, &se) {
		return nil, err
	}
	env := &route.Stanza{El: el, Ctx: c.inCtx, Kind: el.Local, From: fj, Type: el.Attr("type"), ID: el.Attr("id"), Origin: route.FromComponent}
	return env, se
}

// errNotFromDomain: RFC 6120 §4.9.3.9; Prosody closes the stream the same
// way.
func errNotFromDomain() error {
	return stream.New(stream.InvalidFrom, "'from' is not at the component's domain")
}

// handle passes st to the Handler and answers its stanza error.
func (c *serverConn) handle(st *route.Stanza) {
	h := c.s.Handler
	var err error
	if h == nil {
		err = stanza.New(stanza.ServiceUnavailable, "")
	} else {
		err = h.Deliver(c.ctx, st)
	}
	if err == nil {
		return
	}
	var se *stanza.Error
	switch {
	case errors.As(err, &se):
	case errors.Is(err, route.ErrNotConnected):
		se = stanza.New(stanza.ServiceUnavailable, "")
	default:
		c.logger().Warn("component: handler failed", "stanza", st.String(), "err", err)
		se = stanza.New(stanza.InternalServerError, "")
	}
	c.reply(st, se)
}

// reply sends the error reply to st, unless st is an error itself.
func (c *serverConn) reply(st *route.Stanza, se *stanza.Error) {
	r := route.ErrorReply(st, se)
	if r == nil {
		c.logger().Debug("component: error stanza dropped", "stanza", st.String(), "condition", se.Condition)
		return
	}
	if err := c.send(r); err != nil {
		c.logger().Debug("component: error reply not sent", "err", err)
	}
}

// send queues st on the stream.
func (c *serverConn) send(st *route.Stanza) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.Load() {
		return route.ErrNotConnected
	}
	var raw []byte
	queued, written, err := c.w.AppendFromProgress(st.Source, len(st.El.Raw)+xmlstream.ReframeRoom, func(b []byte) []byte {
		n := len(b)
		b = st.AppendTo(b, streamCtx)
		raw = b[n:len(b):len(b)]
		return b
	})
	switch {
	case err == nil:
		i := 0
		for i < len(c.inflight) && c.inflight[i].end <= written {
			i++
		}
		clear(c.inflight[:i])
		c.inflight = fifo.Push(c.inflight[i:], &c.flights, flight{raw: raw, end: queued})
		c.out.Add(1)
		return nil
	case errors.Is(err, xmlstream.ErrPendingFull):
		return &stanza.Error{Condition: stanza.ResourceConstraint, Text: "the component does not read fast enough"}
	}
	return route.ErrNotConnected
}

// end closes the stream after the read side stopped with err.
func (c *serverConn) end(err error) {
	var se *stream.Error
	switch {
	case err == nil, errors.Is(err, xmlstream.ErrStreamEnd):
		c.close(nil, true)
	case errors.As(err, &se):
		c.close(se, true)
	case isTimeout(err):
		c.close(stream.New(stream.ConnectionTimeout, ""), true)
	default:
		// The peer is gone (or the stream was closed from elsewhere, in
		// which case this does nothing).
		if !c.isClosing() {
			c.logger().Debug("component: connection lost", "err", err)
		}
		c.close(nil, false)
	}
}

// close ends the stream: with se when set, then </stream:stream> when send
// is true, preceded by a stream header if none was sent yet (RFC 6120
// §4.9.1.2). It unroutes the domain at once; the bytes are flushed in the
// background. Only the first call does anything.
func (c *serverConn) close(se *stream.Error, send bool) {
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return
	}
	c.closing.Store(true)
	c.graceful.Store(send && (se == nil || se.Condition == stream.SystemShutdown))
	if send {
		_ = c.w.AppendFunc(1024, func(b []byte) []byte {
			if !c.headerSent {
				b = xmlstream.AppendHeader(b, xmlstream.Header{NS: NS, ID: c.id}, false)
			}
			if se != nil {
				return xmlstream.AppendStreamError(b, se)
			}
			return append(b, xmlstream.StreamEnd...)
		})
	}
	log := c.log
	c.mu.Unlock()
	reason := "connection lost"
	switch {
	case se != nil:
		log.Info("component: stream error", "condition", se.Condition, "text", se.Text)
		reason = "stream error " + string(se.Condition)
	case send:
		reason = "stream ended"
	}
	if c.s.unregister(c) {
		log.Info("component: disconnected", "reason", reason)
	}
	c.cancel()
	go c.flush(send)
}

// writeFailed ends the stream after a write failed: the component stopped
// reading for the write timeout, or its connection broke. Nothing more can
// go out on the stream; finish bounces the stanzas the component did not
// take.
func (c *serverConn) writeFailed(err error) {
	if c.isClosing() {
		return
	}
	if isTimeout(err) {
		c.logger().Warn("component: not reading; closing the stream", "write_timeout", c.wc.Timeout())
	} else {
		c.logger().Debug("component: write failed", "err", err)
	}
	c.close(nil, false)
}

// flush writes what is queued, half-closes the connection and gives the
// peer lingerTimeout to end its side.
func (c *serverConn) flush(send bool) {
	defer close(c.flushed)
	wd := time.Now().Add(closeTimeout)
	if !send {
		wd = aLongTimeAgo
	}
	c.wc.Fix(wd)
	c.w.Close()
	c.mu.Lock()
	if send {
		closeWrite(c.nc)
		c.wc.SetReadDeadline(time.Now().Add(lingerTimeout))
	} else {
		c.wc.SetReadDeadline(aLongTimeAgo)
	}
	c.mu.Unlock()
}

// finish waits for the flush and the peer's end, then closes the
// connection.
func (c *serverConn) finish() {
	<-c.flushed
	c.bounceUnwritten()
	// Read what the peer still sends until it closes or the linger ends, so
	// that closing with unread data does not reset the connection and lose
	// our stream error on the way.
	var buf [512]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			break
		}
	}
	c.wc.Close()
	c.s.forget(c)
	c.s.setState(c.nc, StateClosed)
	c.logger().Debug("component: connection closed")
}

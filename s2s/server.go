package s2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("s2s: server closed")

// Server accepts server-to-server streams for the domains it hosts
// (RFC 6120 as the receiving entity): STARTTLS or direct TLS (XEP-0368),
// SASL EXTERNAL for peers with a valid certificate, Server Dialback
// (XEP-0220) otherwise, checked with the authoritative server through the
// Dialer. Authenticated stanzas go to Handler.
type Server struct {
	// Hosted reports whether a domain is ours (local or a component's).
	Hosted func(domain string) bool
	// Handler receives stanzas read from remote servers.
	Handler route.Handler
	// Lend hands stanzas to Handler in the stream's read buffer rather
	// than in a copy of their own: each is valid only until Deliver
	// returns, and a handler that keeps one calls its Own method first
	// (route.Handler). The stream reuses the stanzas, and their elements,
	// that were not kept. It spares, per stanza, the copy of its bytes
	// and the allocation of its Element and of its route.Stanza.
	// Set it when every handler the stanzas reach does so.
	Lend bool
	// GetCertificate returns our certificate for a domain (TLS SNI).
	GetCertificate func(domain string) (*tls.Certificate, error)
	// TLSConfig is the base TLS configuration. It is cloned once, when the
	// first stream needs it, and the clone serves every stream; assign a new
	// one to change it.
	TLSConfig *tls.Config
	// Roots verify peer certificates; nil means the system roots.
	Roots *x509.CertPool
	// Policy says how each remote domain may authenticate.
	Policy PolicyFunc
	// Secret is the dialback secret (XEP-0185), shared with the Dialer.
	Secret []byte
	// Dialer verifies dialback keys with authoritative servers.
	Dialer *Dialer
	// Limits bound what a peer may send.
	Limits xmlstream.Limits
	// NegotiationTimeout closes a stream not authenticated in time
	// (default 30s), counted from the accept whatever the peer does
	// meanwhile (TLS, restarts, dialback): slow peers do not hold resources.
	NegotiationTimeout time.Duration
	// IdleTimeout closes an authenticated stream on which the peer sent
	// nothing for that long, whitespace keepalives included (default 10
	// minutes), counted from authentication when it sent nothing since.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write on a stream (default 30s): a peer
	// that does not read what it asked for loses its stream.
	WriteTimeout time.Duration
	// MaxDialbackPending bounds the dialback verifications under way for
	// one stream (default 4), and MaxDialbackTotal those of the whole
	// server (default 256): each is a connection we open to a server the
	// peer names. Past either, db:result is answered with a
	// resource-constraint error (XEP-0220 §2.4).
	MaxDialbackPending, MaxDialbackTotal int
	// MaxConns and MaxConnsPerIP bound inbound connections (defaults 10000
	// and 100).
	MaxConns, MaxConnsPerIP int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnStream, when set, is told when a stream becomes authenticated and
	// when it ends (metrics).
	OnStream func(c *Conn, up bool)
	// RateLimit paces each inbound stream to this many stanzas a second,
	// with bursts of RateBurst: past it, reading stops and TCP pushes back
	// (0, the default, means no limit).
	RateLimit float64
	RateBurst int
	// DisableSM turns off XEP-0198 acknowledgements on inbound streams.
	DisableSM bool
	// AfterWritten, when set, is called to acknowledge stanzas (XEP-0198):
	// it calls done once what was delivered so far is written out, or
	// with an error when it cannot be. It must not block, and done may
	// run on any goroutine: the stream reads on while it waits. src is
	// the stream's reader, as route.Stanza.Source is: destinations that
	// write a batch of its stanzas together write the acknowledged ones
	// with it (component.Server.AfterWrittenFrom), and src may be
	// ignored.
	AfterWritten func(src xmlstream.Source, done func(error))

	mu        sync.Mutex
	listeners map[net.Listener]bool
	conns     map[*Conn]bool
	perIP     map[string]int
	closing   atomic.Bool
	wg        sync.WaitGroup
	tlsCfg    atomic.Pointer[sharedTLS]
	verifying atomic.Int32 // dialback verifications under way
	draining  atomic.Bool  // see Drain
	parked    atomic.Int64 // see Parked
}

// Update changes a Server that may be serving: f may set Roots, Dialer,
// Limits, NegotiationTimeout, IdleTimeout, WriteTimeout, MaxConns,
// MaxConnsPerIP, RateLimit and RateBurst, which streams accepted
// afterwards use (Roots and Dialer: every certificate check and dialback
// verification from now on); streams already up keep their limits and
// timers. Other fields must not change once the Server serves.
func (s *Server) Update(f func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// serverLive are the fields Update may change, as one stream reads them.
type serverLive struct {
	limits                   xmlstream.Limits
	negotiation, idle, write time.Duration
	rate                     float64
	burst                    int
}

func (s *Server) live() serverLive {
	s.mu.Lock()
	defer s.mu.Unlock()
	return serverLive{limits: s.Limits, negotiation: s.NegotiationTimeout, idle: s.IdleTimeout, write: s.WriteTimeout, rate: s.RateLimit, burst: s.RateBurst}
}

// verifier returns Roots and Dialer, which Update may change.
func (s *Server) verifier() (*x509.CertPool, *Dialer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Roots, s.Dialer
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ListenAndServe listens on addr (default ":5269") and serves.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = ":5269"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts STARTTLS streams on l.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeDirectTLS accepts XEP-0368 direct TLS streams on l.
func (s *Server) ServeDirectTLS(l net.Listener) error { return s.serve(l, true) }

func (s *Server) serve(l net.Listener, direct bool) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]bool{}
	}
	s.listeners[l] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if !s.admit(nc) {
			continue
		}
		s.wg.Add(1)
		go s.handle(nc, direct)
	}
}

func (s *Server) admit(nc net.Conn) bool {
	ip, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP == nil {
		s.perIP = map[string]int{}
	}
	total := 0
	for _, n := range s.perIP {
		total += n
	}
	if total >= durInt(s.MaxConns, 10000) || s.perIP[ip] >= durInt(s.MaxConnsPerIP, 100) {
		s.logger().Warn("connection refused: too many connections", "remote", nc.RemoteAddr().String())
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		hdr := xmlstream.AppendHeader(nil, xmlstream.Header{NS: nsServer, ID: newStreamID(), Version: "1.0"}, false)
		nc.Write(xmlstream.AppendStreamError(hdr, stream.New(stream.PolicyViolation, "too many connections")))
		nc.Close()
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) release(nc net.Conn) {
	ip, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

func durInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// tlsConfig returns the configuration for inbound TLS, built once for each
// value of TLSConfig and shared by every stream: a clone per stream cost each
// idle stream about 600 bytes, and gave each its own session ticket keys.
func (s *Server) tlsConfig() *tls.Config {
	if c := s.tlsCfg.Load(); c != nil && c.base == s.TLSConfig {
		return c.cfg
	}
	c := &sharedTLS{base: s.TLSConfig, cfg: s.buildTLSConfig()}
	s.tlsCfg.Store(c)
	return c.cfg
}

// sharedTLS is the configuration built from base.
type sharedTLS struct {
	base, cfg *tls.Config
}

func (s *Server) buildTLSConfig() *tls.Config {
	var cfg *tls.Config
	if s.TLSConfig != nil {
		cfg = s.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	// Full-size records: streams carry many stanzas back to back.
	cfg.DynamicRecordSizingDisabled = true
	// The peer's certificate is checked by VerifyPeer against the domain it
	// claims; TLS only asks for it.
	cfg.ClientAuth = tls.RequestClientCert
	cfg.NextProtos = []string{alpnXMPPServer}
	if s.GetCertificate != nil {
		cfg.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.GetCertificate(hi.ServerName)
		}
	}
	return cfg
}

// onFreshStack runs f on a goroutine of its own and waits for it. TLS
// handshakes and certificate checks need deep stacks; run on the stream's
// own goroutine they would leave it holding a grown stack for as long as
// the stream idles, which for thousands of streams is most of their memory.
func onFreshStack(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return <-done
}

// Shutdown stops accepting, ends every stream with system-shutdown and waits
// until their handlers return or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Each stream ends on its reading goroutine, which acknowledges what
	// it handled first (XEP-0198): the peer must not send those stanzas
	// again. A stream whose reader does not come back in time (a handler
	// that blocks) is closed from here.
	for _, c := range conns {
		c.clk.interrupt(stream.New(stream.SystemShutdown, ""))
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.CloseWithError(stream.New(stream.SystemShutdown, ""))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain stops taking new stanzas from remote servers, for a daemon that
// stops: streams that authenticate from now on end with system-shutdown,
// while the streams already up go on and new ones may still verify
// dialback keys, as the authoritative server (XEP-0220 §2.3). The
// outbound streams a stopping daemon drains need that: their peers check
// their keys by connecting back. Shutdown follows.
func (s *Server) Drain() { s.draining.Store(true) }

// Close closes listeners and connections at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	return nil
}

// Streams returns the inbound streams that are up.
func (s *Server) Streams() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Parked returns how many inbound streams are parked: quiet, they hold
// no read buffer and, on Linux, no goroutine until the peer writes
// (park.go).
func (s *Server) Parked() int { return int(s.parked.Load()) }

// in is the state of one inbound stream.
type in struct {
	s       *Server
	c       *Conn
	pending sync.WaitGroup
	// The dialback verifications under way (pending): how many, and
	// their context, which the stream's end cancels: made for the first,
	// dropped after the last, so that a stream keeps nothing of
	// verifications that are over.
	vmu     sync.Mutex
	vn      int
	vctx    context.Context
	vstop   context.CancelFunc
	ended   bool
	sasl    bool
	sm      bool
	addr    string
	handled uint32 // stanzas handled, for XEP-0198 acknowledgements
	// ackMu orders the acknowledgements, which AfterWritten may call
	// back from several goroutines; acked is the last h sent.
	ackMu  sync.Mutex
	acked  uint32
	ackSet bool

	// Reading state, kept across parks (serve).
	lim      *xmlstream.Limiter
	inStream bool // the stream header is read: elements come next
	park     parking
	// spare is the last stanza lent to the Handler (Server.Lend) and let
	// go, for the next: dropped when the stream parks.
	spare *route.Stanza
}

// handle serves one accepted connection, for which s.wg was incremented.
func (s *Server) handle(nc net.Conn, direct bool) {
	addr := nc.RemoteAddr().String()
	log := newStreamLog(s.logger(), addr)
	live := s.live()
	// The negotiation deadline counts from now, TLS handshake included.
	raw := newTimedConn(nc, live.write)
	clk := newClock(raw, live.negotiation, live.idle)
	nc = raw
	if direct {
		tc := tls.Server(nc, s.tlsConfig())
		ctx, cancel := context.WithDeadline(context.Background(), clk.negotiationDeadline())
		err := onFreshStack(func() error { return tc.HandshakeContext(ctx) })
		cancel()
		if err != nil {
			log.Info("direct TLS handshake failed", "err", err)
			clk.stop()
			nc.Close()
			s.release(nc)
			s.wg.Done()
			return
		}
		nc = tc
	}
	c := newConn(nc, raw, clk, live.limits, log)
	c.r.SetBorrow(s.Lend)
	c.setState(Received)
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*Conn]bool{}
	}
	s.conns[c] = true
	s.mu.Unlock()
	st := &in{s: s, c: c, addr: addr, park: parking{can: xmlstream.CanWait(raw)}}
	st.lim = xmlstream.NewLimiter(live.rate, live.burst)
	st.serve()
}

// serve runs the stream until it ends or parks (park.go): then it serves
// on, on a fresh goroutine, once the socket is readable.
func (st *in) serve() {
	err := st.run()
	if err == errPark {
		st.spare = nil
		park(st.c, &st.s.parked, st.serve)
		return
	}
	s, c := st.s, st.c
	// Dialback verifications end with the stream.
	st.endVerifications()
	st.pending.Wait()
	switch {
	case err == nil || errorIsEOF(err):
		c.log.Info("stream closed")
		c.close()
	default:
		c.log.Info("stream failed", "err", err)
		st.lastAck(err)
		c.fail(err)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if s.OnStream != nil && c.State()&Authn != 0 {
		s.OnStream(c, false)
	}
	s.release(c.nc)
	s.wg.Done()
}

// run negotiates, then reads stanzas until the stream ends, expires
// (its clock wakes the read with a deadline in the past) or parks.
func (st *in) run() error {
	c := st.c
	// Whatever ends the loop, elements handled here go out.
	defer c.r.Wake()
	for {
		if e := c.clk.expired(); e != nil {
			return e
		}
		// About to wait for the peer: park if it stays quiet.
		if err := st.park.arm(c); err != nil {
			return err
		}
		var el *xmlstream.Element
		var err error
		if !st.inStream {
			err = st.header()
			st.inStream = err == nil
		} else {
			el, err = c.r.Next()
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if err := st.park.timedOut(c); err != nil {
				if err == errPark {
					// After the wait, the reader reads into a buffer of
					// the shared pool.
					c.r.SetIdleRelease(true)
				}
				return err
			}
			continue // in the middle of an element
		}
		if el == nil {
			continue
		}
		if st.park.can {
			// A busy stream keeps its read buffer between elements:
			// giving it up whenever the reader caught up with the peer
			// cost a pooled buffer, a read split in two and, for
			// elements larger than a pooled buffer, a new one every
			// time. Parking gives it up.
			c.r.SetIdleRelease(false)
		}
		restart, err := st.element(el)
		if err != nil {
			return err
		}
		if el.Space == xmlstream.NSServer {
			st.lim.Wait(c.r)
		}
		if restart {
			st.inStream = false
		}
	}
}

// header reads a stream header and answers with ours and the features.
func (st *in) header() error {
	s, c := st.s, st.c
	h, err := c.r.ReadHeader()
	if err != nil {
		return err
	}
	// Answer before checking, so that a stream error has a stream to go on
	// (RFC 6120 §4.9.1.2).
	id := newStreamID()
	reply := xmlstream.Header{NS: nsServer, ID: id, Version: "1.0", From: h.To, To: h.From}
	if err := c.write(xmlstream.AppendHeader(nil, reply, true)); err != nil {
		return err
	}
	c.hdrSent = true
	if h.NS != nsServer {
		return stream.Errorf(stream.InvalidNamespace, "default namespace must be jabber:server")
	}
	if h.To == "" || s.Hosted == nil || !s.Hosted(h.To) {
		return stream.Errorf(stream.HostUnknown, "%s is not served here", h.To)
	}
	if c.local != "" && c.local != h.To {
		return stream.New(stream.HostUnknown, "the restarted stream names another domain")
	}
	c.mu.Lock()
	c.local, c.id = h.To, id
	c.mu.Unlock()
	if h.From != "" {
		if _, err := route.ParseJID(h.From); err != nil {
			return stream.New(stream.InvalidFrom, "malformed 'from' domain")
		}
		if c.remote == "" {
			c.mu.Lock()
			c.remote = h.From
			c.mu.Unlock()
		}
	}
	// One logger per stream, made once per header: idle streams are many.
	c.log = headerLog(s.logger(), st.addr, c.local, h.From, id)
	return c.write(st.features(h))
}

func (st *in) features(h xmlstream.Header) []byte {
	s, c := st.s, st.c
	b := []byte("<stream:features>")
	secure := c.State()&Secure != 0
	policy := s.Policy.of(h.From)
	switch {
	case st.sasl:
		// Authenticated by SASL: nothing more to negotiate.
	case !secure:
		b = append(b, "<starttls xmlns='"+nsTLS+"'>"...)
		if policy != AllowPlaintext {
			b = append(b, "<required/>"...)
		}
		b = append(b, "</starttls>"...)
		if policy == AllowPlaintext {
			b = append(b, "<dialback xmlns='"+nsDialbackFeature+"'><errors/></dialback>"...)
		}
	default:
		if h.From != "" && s.verifyPeer(c, h.From) == nil {
			c.setState(Verified)
			b = append(b, "<mechanisms xmlns='"+nsSASL+"'><mechanism>EXTERNAL</mechanism></mechanisms>"...)
		}
		b = append(b, "<dialback xmlns='"+nsDialbackFeature+"'><errors/></dialback>"...)
		if !s.DisableSM {
			b = append(b, "<sm xmlns='"+nsSM+"'/>"...)
		}
	}
	if st.sasl && !s.DisableSM {
		b = append(b, "<sm xmlns='"+nsSM+"'/>"...)
	}
	return append(b, "</stream:features>"...)
}

// element handles one top-level element. It reports whether the stream
// restarts.
func (st *in) element(el *xmlstream.Element) (bool, error) {
	s, c := st.s, st.c
	if el.Space != xmlstream.NSServer {
		// Only stanzas are lent (Server.Lend); negotiation keeps what
		// it reads, on other goroutines too (dialback).
		el.Own()
	}
	switch el.Space {
	case nsTLS:
		if el.Local != "starttls" || c.State()&Secure != 0 {
			return false, stream.New(stream.PolicyViolation, "unexpected STARTTLS")
		}
		if err := c.write([]byte("<proceed xmlns='" + nsTLS + "'/>")); err != nil {
			return false, err
		}
		tc := tls.Server(c.nc, s.tlsConfig())
		ctx, cancel := context.WithDeadline(context.Background(), c.clk.negotiationDeadline())
		defer cancel()
		// The handshake reads with the stream's deadline, not parkAfter.
		st.park.clear(c)
		if e := c.clk.expired(); e != nil {
			return false, e
		}
		if err := onFreshStack(func() error { return tc.HandshakeContext(ctx) }); err != nil {
			c.nc.Close()
			return false, err
		}
		// RFC 6120 §5.3.3: data sent before the handshake is discarded;
		// Reset refuses it.
		if err := c.r.Reset(tc); err != nil {
			return false, err
		}
		c.r.SetIdleRelease(true)
		c.mu.Lock()
		c.nc, c.tls = tc, tc
		c.mu.Unlock()
		c.setState(Secure)
		c.hdrSent = false
		return true, nil
	case nsSASL:
		return st.sasl_(el)
	case nsDialback:
		return false, st.dialback(el)
	case nsSM:
		return false, st.streamManagement(el)
	case stream.NS:
		if el.Local == "error" {
			se, _ := stream.Parse(el.Raw)
			if se != nil {
				return false, se
			}
		}
		return false, stream.New(stream.UnsupportedStanzaType, "unexpected "+el.Local)
	case xmlstream.NSServer:
		return false, st.stanza(el)
	}
	return false, stream.Errorf(stream.UnsupportedStanzaType, "unsupported element {%s}%s", el.Space, el.Local)
}

// sasl_ handles SASL EXTERNAL (RFC 6120 §6.4, XEP-0178 §3).
func (st *in) sasl_(el *xmlstream.Element) (bool, error) {
	c := st.c
	fail := func(cond string) (bool, error) {
		c.write([]byte("<failure xmlns='" + nsSASL + "'><" + cond + "/></failure>"))
		return false, nil
	}
	if el.Local != "auth" {
		return fail("aborted")
	}
	if st.s.draining.Load() {
		return false, stream.New(stream.SystemShutdown, "")
	}
	if c.State()&Secure == 0 || st.sasl {
		return fail("encryption-required")
	}
	if el.Attr("mechanism") != "EXTERNAL" {
		return fail("invalid-mechanism")
	}
	var body struct {
		Text string `xml:",chardata"`
	}
	el.Unmarshal(&body)
	authz := c.r.Header().From
	if t := body.Text; t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return fail("incorrect-encoding")
		}
		authz = string(b)
	}
	if from := c.r.Header().From; authz == "" || authz != from && from != "" {
		return fail("invalid-authzid")
	}
	if err := st.s.verifyPeer(c, authz); err != nil {
		c.log.Info("SASL EXTERNAL refused", "reason", err.Error())
		return fail("not-authorized")
	}
	if err := c.write([]byte("<success xmlns='" + nsSASL + "'/>")); err != nil {
		return false, err
	}
	if err := c.r.Reset(c.nc); err != nil {
		return false, err
	}
	st.sasl = true
	c.mu.Lock()
	c.remote = authz
	c.mu.Unlock()
	c.authenticate(authz, c.local, "sasl-external")
	c.log.Info("authenticated with SASL EXTERNAL", "remote", authz)
	if st.s.OnStream != nil {
		st.s.OnStream(c, true)
	}
	return true, nil
}

// dialback handles db:result (as receiving server) and db:verify (as
// authoritative server), XEP-0220 §2.
func (st *in) dialback(el *xmlstream.Element) error {
	s, c := st.s, st.c
	d, err := parseDB(el)
	if err != nil {
		return err
	}
	switch el.Local {
	case "verify":
		// We are the authoritative server for d.To: was this key ours?
		if !s.Hosted(d.To) {
			return c.write(appendDB(nil, "verify", dbElement{From: d.To, To: d.From, ID: d.ID, Type: "error", ErrCond: "item-not-found"}))
		}
		typ := "invalid"
		if checkDialbackKey(s.Secret, d.From, d.To, d.ID, d.Key) {
			typ = "valid"
		}
		c.log.Info("dialback verify request", "receiving", d.From, "originating", d.To, "result", typ)
		return c.write(appendDB(nil, "verify", dbElement{From: d.To, To: d.From, ID: d.ID, Type: typ}))
	case "result":
	default:
		return stream.New(stream.UnsupportedStanzaType, "unknown dialback element")
	}
	if d.Type != "" {
		return stream.New(stream.BadFormat, "db:result with a type on an inbound stream")
	}
	if s.draining.Load() {
		return stream.New(stream.SystemShutdown, "")
	}
	reply := func(typ, cond string) error {
		return c.write(appendDB(nil, "result", dbElement{From: d.To, To: d.From, Type: typ, ErrCond: cond}))
	}
	if !s.Hosted(d.To) {
		return reply("error", "item-not-found")
	}
	if _, err := route.ParseJID(d.From); err != nil || d.From == "" {
		return stream.New(stream.InvalidFrom, "malformed dialback 'from'")
	}
	secure := c.State()&Secure != 0
	policy := s.Policy.of(d.From)
	if !secure && policy != AllowPlaintext {
		return stream.New(stream.PolicyViolation, "TLS is required before dialback")
	}
	certOK := secure && s.verifyPeer(c, d.From) == nil
	if policy == RequireValidCert && !certOK {
		c.log.Info("dialback refused: certificate not valid and policy requires it", "originating", d.From)
		return reply("error", "not-authorized")
	}
	if certOK {
		// XEP-0344: the certificate already proves the identity.
		c.authenticate(d.From, d.To, "dialback")
		c.log.Info("authenticated with dialback (certificate valid)", "originating", d.From)
		if s.OnStream != nil {
			s.OnStream(c, true)
		}
		return reply("valid", "")
	}
	_, dialer := s.verifier()
	if dialer == nil {
		return reply("error", "remote-server-not-found")
	}
	// Each verification is a connection out, to a server the peer names:
	// bounded per stream and in all.
	if st.verifications() >= durInt(s.MaxDialbackPending, 4) || s.verifying.Load() >= int32(durInt(s.MaxDialbackTotal, 256)) {
		c.log.Info("dialback refused: too many verifications under way", "originating", d.From)
		return reply("error", "resource-constraint")
	}
	s.verifying.Add(1)
	id := c.id
	st.pending.Add(1)
	vctx, vdone := st.verification()
	go func() {
		defer st.pending.Done()
		defer vdone()
		defer s.verifying.Add(-1)
		// Within the stream's negotiation deadline (a domain added to
		// an authenticated stream gets a negotiation's time), and no
		// longer than the stream.
		dl := c.clk.negotiationDeadline()
		if c.State()&Authn != 0 {
			dl = time.Now().Add(c.clk.negotiation)
		}
		ctx, cancel := context.WithDeadline(vctx, dl)
		defer cancel()
		ok, err := dialer.Verify(ctx, d.To, d.From, id, d.Key)
		switch {
		case err != nil:
			c.log.Info("dialback verification failed", "originating", d.From, "err", err)
			reply("error", "remote-server-not-found")
		case !ok:
			c.log.Warn("dialback key refused by the authoritative server", "originating", d.From)
			reply("invalid", "")
			c.CloseWithError(stream.New(stream.NotAuthorized, "dialback key not valid"))
		default:
			c.authenticate(d.From, d.To, "dialback")
			c.log.Info("authenticated with dialback", "originating", d.From)
			if s.OnStream != nil {
				s.OnStream(c, true)
			}
			reply("valid", "")
		}
	}()
	return nil
}

// verification returns the context of a dialback verification that
// starts, which ends with the stream, and what to call when it is over.
func (st *in) verification() (context.Context, func()) {
	st.vmu.Lock()
	defer st.vmu.Unlock()
	if st.vctx == nil {
		st.vctx, st.vstop = context.WithCancel(context.Background())
		if st.ended {
			st.vstop()
		}
	}
	st.vn++
	return st.vctx, func() {
		st.vmu.Lock()
		defer st.vmu.Unlock()
		if st.vn--; st.vn == 0 {
			st.vstop()
			st.vctx, st.vstop = nil, nil
		}
	}
}

// verifications returns how many dialback verifications are under way.
func (st *in) verifications() int {
	st.vmu.Lock()
	defer st.vmu.Unlock()
	return st.vn
}

// endVerifications cancels the dialback verifications under way, and
// those that would start after: the stream has ended.
func (st *in) endVerifications() {
	st.vmu.Lock()
	defer st.vmu.Unlock()
	st.ended = true
	if st.vstop != nil {
		st.vstop()
	}
}

// verifyPeer checks the peer's certificate for domain against Roots, then,
// with DANE, against domain's TLSA records.
func (s *Server) verifyPeer(c *Conn, domain string) error {
	return onFreshStack(func() error {
		chain := c.peerChain()
		roots, dialer := s.verifier()
		err := VerifyPeer(chain, roots, domain, time.Now())
		if err != nil && dialer != nil && dialer.DANE {
			if dialer.verifyByDANE(chain, domain) == nil {
				c.log.Info("peer certificate verified with DANE", "domain", domain)
				c.setState(DANE)
				return nil
			}
		}
		return err
	})
}

// stanza checks a stanza's addresses against the authenticated pairs and
// hands it to the Handler (RFC 6120 §13.7.1.1 and §4.9.3.9).
func (st *in) stanza(el *xmlstream.Element) error {
	s, c := st.s, st.c
	if c.State()&Authn == 0 {
		return stream.New(stream.NotAuthorized, "stanza before authentication")
	}
	switch el.Local {
	case "message", "presence", "iq":
	default:
		return stream.Errorf(stream.UnsupportedStanzaType, "unsupported stanza %s", el.Local)
	}
	rs := st.spare
	if rs == nil {
		rs = new(route.Stanza)
	}
	st.spare = nil
	if err := rs.Init(el, c.r.Header().Context(), route.FromRemote); err != nil {
		if err := st.malformed(el, err); err != nil {
			return err
		}
		st.handled++ // answered: XEP-0198 counts it
		return nil
	}
	if rs.From.Domainpart() == "" || rs.To.Domainpart() == "" {
		return stream.New(stream.ImproperAddressing, "stanzas between servers need 'from' and 'to'")
	}
	fromDomain, toDomain := rs.FromDomain(), rs.ToDomain()
	if !s.Hosted(toDomain) {
		return stream.Errorf(stream.HostUnknown, "%s is not served here", toDomain)
	}
	if !c.Authenticated(fromDomain, toDomain) {
		return stream.Errorf(stream.InvalidFrom, "%s is not authenticated for %s on this stream", fromDomain, toDomain)
	}
	c.stanzas.Add(1)
	if s.Handler != nil {
		rs.Source = c.r // handled here, on the reading goroutine
		rs.At = c.r.ReadAt()
		if err := s.Handler.Deliver(context.Background(), rs); err != nil {
			return err
		}
		if rs.LetGo(el) {
			st.spare = rs // for the next stanza
		}
	}
	st.handled++
	return nil
}

// streamManagement answers XEP-0198 requests: enable once authenticated,
// and an acknowledgement of the stanzas handled for each <r/>. Before it
// answers, Flush lets the destinations of those stanzas write them out, so
// that an acknowledged stanza is never only in this process's memory.
func (st *in) streamManagement(el *xmlstream.Element) error {
	s, c := st.s, st.c
	switch el.Local {
	case "enable":
		if s.DisableSM || st.sm || c.State()&Authn == 0 {
			return c.write([]byte("<failed xmlns='" + nsSM + "'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
		}
		st.sm = true
		return c.write([]byte("<enabled xmlns='" + nsSM + "'/>"))
	case "r":
		if !st.sm {
			return stream.New(stream.UnsupportedStanzaType, "stream management is not enabled")
		}
		h := st.handled
		if s.AfterWritten == nil {
			return st.ack(h)
		}
		// The answer waits for the stanzas to be written out; reading
		// goes on meanwhile.
		s.AfterWritten(c.r, func(err error) {
			if err != nil {
				// Not written out: do not acknowledge; the peer sends
				// them again on its next stream.
				c.log.Warn("stanzas not written out: not acknowledged", "err", err)
				c.CloseWithError(stream.New(stream.ResourceConstraint, "cannot write out what was received"))
				return
			}
			st.ack(h)
		})
		return nil
	case "a":
		return nil
	}
	return stream.New(stream.UnsupportedStanzaType, "unknown stream management element")
}

// lastAck acknowledges, before a stream error of ours, the stanzas the
// stream handled (XEP-0198 lets a server send <a/> unasked): the peer
// then forgets them instead of sending them again on its next stream,
// where they would arrive twice. As for <r/>, they are written out
// first; when that fails, the peer sends them again.
func (st *in) lastAck(err error) {
	s, c := st.s, st.c
	var se *stream.Error
	if !st.sm || !errors.As(err, &se) || se.Remote || c.raw.broken.Load() {
		return
	}
	if s.AfterWritten != nil {
		done := make(chan error, 1)
		s.AfterWritten(nil, func(err error) { done <- err })
		t := time.NewTimer(closeTimeout)
		defer t.Stop()
		select {
		case err := <-done:
			if err != nil {
				return
			}
		case <-t.C:
			return
		}
	}
	st.ack(st.handled)
}

// ack sends <a h='h'/>, unless a later count went out already: answers
// whose stanzas were written out later than those of a later <r/> are
// covered by that one's.
func (st *in) ack(h uint32) error {
	st.ackMu.Lock()
	defer st.ackMu.Unlock()
	if st.ackSet && int32(h-st.acked) < 0 {
		return nil
	}
	st.acked, st.ackSet = h, true
	return st.c.write(fmt.Appendf(nil, "<a xmlns='%s' h='%d'/>", nsSM, h))
}

// malformed handles a stanza with an address that does not parse (err,
// from route.NewStanza). A bad 'from' could be answered with the stream
// error invalid-from (RFC 6120 §4.9.3.9) or with the stanza error
// jid-malformed (§8.3.3.8); a stream error also loses every stanza the
// peer sent behind this one, and the peer must reconnect and authenticate
// again. So when the sender is known, it gets the stanza error and the
// stream goes on: the raw 'from' splits (jid.SplitString) and its
// domainpart, normalized, is authenticated on this stream for the
// stanza's 'to' domain (the stream's when the 'to' is the bad address).
// The peer's server vouches for that address, and a bad one costs that
// stanza only. Otherwise (a 'from' that does not split, a domainpart that
// does not parse or is not authenticated) the sender cannot be trusted:
// the stream ends with invalid-from. A stanza without 'from' or 'to' ends
// it with improper-addressing, as it would with good addresses.
func (st *in) malformed(el *xmlstream.Element, err error) error {
	s, c := st.s, st.c
	var se *stanza.Error
	if !errors.As(err, &se) {
		return err
	}
	from, to := el.Attr("from"), el.Attr("to")
	if from == "" || to == "" {
		return stream.New(stream.ImproperAddressing, "stanzas between servers need 'from' and 'to'")
	}
	// The error comes from the 'to' when it parses, from the stream's
	// domain otherwise.
	local, replyFrom := c.local, c.local
	if tj, err := route.ParseJID(to); err == nil {
		local, replyFrom = tj.Domainpart(), tj.String()
		if !s.Hosted(local) {
			return stream.Errorf(stream.HostUnknown, "%s is not served here", local)
		}
	}
	remote, ok := domainOf(from)
	if !ok {
		return stream.New(stream.InvalidFrom, "malformed 'from'")
	}
	if !c.Authenticated(remote.Domainpart(), local) {
		return stream.Errorf(stream.InvalidFrom, "%s is not authenticated for %s on this stream", remote.Domainpart(), local)
	}
	return st.bounce(el, se, replyFrom, remote)
}

// domainOf returns the domain of a raw address that may not parse as a
// whole: its domainpart (jid.SplitString), normalized as route.ParseJID
// does.
func domainOf(addr string) (jid.JID, bool) {
	_, d, _, err := jid.SplitString(addr)
	if err != nil || d == "" {
		return jid.JID{}, false
	}
	// d holds neither '@' nor '/': it parses to a domain or fails.
	j, err := route.ParseJID(d)
	if err != nil {
		return jid.JID{}, false
	}
	return j, true
}

// bounce answers a stanza that cannot become a route.Stanza (a malformed
// address from an authenticated sender; see malformed) with e, never a
// stanza of type error (RFC 6120 §8.3.1). The error comes from from and
// goes to the stanza's raw 'from', unchanged, which remote (its domain)
// routes; it goes back through the Handler like any stanza of ours.
func (st *in) bounce(el *xmlstream.Element, e *stanza.Error, from string, remote jid.JID) error {
	c := st.c
	c.log.Info("stanza refused", "element", el.Local, "condition", e.Condition, "text", e.Text)
	if el.Attr("type") == "error" || st.s.Handler == nil {
		return nil
	}
	b := []byte("<" + el.Local + " type='error' from='")
	b = stanza.AppendEscaped(b, from)
	b = append(b, "' to='"...)
	b = stanza.AppendEscaped(b, el.Attr("from"))
	if id := el.Attr("id"); id != "" {
		b = append(b, "' id='"...)
		b = stanza.AppendEscaped(b, id)
	}
	b = append(b, "'>"...)
	b = e.AppendXML(b)
	b = append(b, "</"+el.Local+">"...)
	rel, err := xmlstream.ParseElement(b, outCtx)
	if err != nil {
		return nil
	}
	fj, err := route.ParseJID(from)
	if err != nil {
		return nil
	}
	// The envelope's 'to' is the address when it parses, its domain
	// otherwise: enough to route, while the element keeps the address
	// as the peer wrote it.
	to := remote
	if tj, err := route.ParseJID(el.Attr("from")); err == nil {
		to = tj
	}
	reply := &route.Stanza{El: rel, Ctx: outCtx, Kind: el.Local, To: to, From: fj, Type: "error", ID: el.Attr("id"), Origin: route.FromLocal}
	return st.s.Handler.Deliver(context.Background(), reply)
}

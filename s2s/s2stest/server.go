package s2stest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/stanza"
)

// Server is one federating domain on loopback: an s2s.Server on
// 127.0.0.1:0, a Pool for outbound stanzas, a Router, and a local handler
// that records what reaches the domain.
type Server struct {
	Domain   string
	Addr     netip.AddrPort
	S2S      *s2s.Server
	Pool     *s2s.Pool
	Dialer   *s2s.Dialer
	Router   *route.Router
	Cert     tls.Certificate
	Received chan *route.Stanza
	Listener net.Listener
	// Lent counts the stanzas that reached the server's local handler in
	// the buffer of the stream they were read on (Options.Lend).
	Lent atomic.Int64

	closeOnce sync.Once
}

// Options configure NewServer. The zero value gives a self-signed
// certificate and the DialbackOverTLS policy.
type Options struct {
	Cert     *tls.Certificate
	Roots    *x509.CertPool
	Policy   s2s.PolicyFunc
	RetryFor time.Duration
	// Register, when true, adds the server's SRV and A records to the DNS
	// (default true unless NoRegister).
	NoRegister bool
	Logger     *slog.Logger
	// Store keeps the outbound queue (nil: memory only).
	Store s2s.Store
	// DisableSM turns XEP-0198 off on the server's inbound streams.
	DisableSM bool
	// AckTimeout is the pool's (default 30s).
	AckTimeout time.Duration
	// Also are more local domains served by the same server (registered
	// in the DNS like the first).
	Also []string
	// DANE makes the server's resolver trust the AD bit (see DNS.Signed)
	// and its dialer use TLSA records.
	DANE bool
	// NegotiationTimeout, IdleTimeout, WriteTimeout and KeepAlive are the
	// server's, its dialer's and its pool's (defaults 5s, 10 minutes,
	// 30s and 60s).
	NegotiationTimeout, IdleTimeout, WriteTimeout, KeepAlive time.Duration
	// OnStream, when set, is told of every stream up and down, inbound
	// and outbound.
	OnStream func(c *s2s.Conn, up bool)
	// Lend is the server's s2s.Server.Lend.
	Lend bool
}

// NewServer starts a server for domain whose resolver asks dns.
func NewServer(t testing.TB, dns *DNS, domain string, o Options) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := SelfSigned(t, domain)
	if o.Cert != nil {
		cert = *o.Cert
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: logLevel()})).With("server", domain)
	}
	secret := s2s.NewSecret()
	getCert := func(string) (*tls.Certificate, error) { return &cert, nil }
	d := &s2s.Dialer{
		Resolver:           &s2s.Resolver{Servers: []string{dns.Addr()}, Timeout: 2 * time.Second, CacheSize: -1, TrustAD: o.DANE},
		DANE:               o.DANE,
		GetCertificate:     getCert,
		Roots:              o.Roots,
		Policy:             o.Policy,
		Secret:             secret,
		Logger:             log,
		AttemptTimeout:     2 * time.Second,
		NegotiationTimeout: or(o.NegotiationTimeout, 5*time.Second),
		WriteTimeout:       o.WriteTimeout,
	}
	srv := &Server{Domain: domain, Cert: cert, Dialer: d, Received: make(chan *route.Stanza, 1000), Listener: l}
	srv.Addr = netip.MustParseAddrPort(l.Addr().String())
	r := &route.Router{Logger: log}
	r.SetLocal(append([]string{domain}, o.Also...)...)
	r.Local = route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
		// A test that reads slowly holds the stream back, as a busy
		// local user would; it never turns stanzas into bounces, which
		// a test watching only Received would count as lost.
		if s.El.Borrowed() {
			srv.Lent.Add(1)
		}
		s.Own() // kept in Received
		select {
		case srv.Received <- s:
			return nil
		default:
		}
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case srv.Received <- s:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return stanza.New(stanza.ResourceConstraint, "test server full")
		}
	})
	p := &s2s.Pool{Dialer: d, Bouncer: r, Logger: log, RetryFor: o.RetryFor, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Store: o.Store, AckTimeout: o.AckTimeout,
		IdleTimeout: o.IdleTimeout, KeepAlive: o.KeepAlive, OnStream: o.OnStream}
	if p.RetryFor == 0 {
		p.RetryFor = 2 * time.Second
	}
	r.Remote = p
	s := &s2s.Server{
		Hosted:             r.Hosted,
		Handler:            r,
		Lend:               o.Lend,
		GetCertificate:     getCert,
		Roots:              o.Roots,
		Policy:             o.Policy,
		Secret:             secret,
		Dialer:             d,
		Logger:             log,
		NegotiationTimeout: or(o.NegotiationTimeout, 5*time.Second),
		IdleTimeout:        o.IdleTimeout,
		WriteTimeout:       o.WriteTimeout,
		DisableSM:          o.DisableSM,
		OnStream:           o.OnStream,
	}
	srv.S2S, srv.Pool, srv.Router = s, p, r
	go s.Serve(l)
	t.Cleanup(srv.Close)
	if !o.NoRegister {
		dns.AddServer(domain, srv.Addr)
		for _, d := range o.Also {
			dns.AddServer(d, srv.Addr)
		}
	}
	return srv
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Close shuts the server down: queued stanzas get a second to go out, then
// streams end with system-shutdown. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Pool.Shutdown(ctx)
		s.S2S.Shutdown(ctx)
		s.S2S.Close()
	})
}

// Send routes a raw stanza (jabber:server namespace) as if generated
// locally.
func (s *Server) Send(t testing.TB, raw string) {
	t.Helper()
	st, err := route.New([]byte(raw), "jabber:server")
	if err != nil {
		t.Fatalf("bad stanza %q: %v", raw, err)
	}
	s.Router.Deliver(context.Background(), st)
}

// Expect waits for the next stanza to reach the server's domain.
func (s *Server) Expect(t testing.TB, timeout time.Duration) *route.Stanza {
	t.Helper()
	select {
	case st := <-s.Received:
		return st
	case <-time.After(timeout):
		t.Fatalf("%s: no stanza within %v", s.Domain, timeout)
		return nil
	}
}

// testWriter sends logs to t.Log until the test ends.
type testWriter struct {
	t    testing.TB
	done *atomic.Bool
}

func newTestWriter(t testing.TB) testWriter {
	w := testWriter{t: t, done: new(atomic.Bool)}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func logLevel() slog.Level {
	if os.Getenv("S2S_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// FreeAddrs returns n loopback addresses (127.0.0.1:port) that were free
// a moment ago: for servers that must know each other's addresses before
// they listen (NATS routes between cluster nodes), and for a process that
// restarts on the address it had.
//
// The ports lie below the kernel's ephemeral range when it leaves room:
// a port from that range, free while a node is down, can be taken by any
// outgoing connection's local end, and the node's listener then fails to
// bind when it restarts. No port is handed out twice in one process.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, addr)
	}
	return out
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// fixedPorts is the range FreeAddrs draws from: [10000, start of the
// ephemeral range), or nothing when the range starts too low to leave
// room. Read once.
var fixedPorts = sync.OnceValues(func() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil {
			hi = a
		}
	}
	if hi-lo < 1000 {
		return 0, 0
	}
	return lo, hi
})

func freeAddr() (string, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	lo, hi := fixedPorts()
	for range 200 {
		if hi == 0 {
			break
		}
		port := lo + rand.IntN(hi-lo)
		if portsGiven[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return addr, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

package s2s_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	miekgdns "github.com/miekg/dns"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

const wait = 10 * time.Second

func msg(from, to, body string) string {
	return fmt.Sprintf("<message from='%s' to='%s' type='chat' id='%s'><body>%s</body></message>", from, to, body, body)
}

// exchange sends n messages each way between a and b and checks each
// arrives once, in order.
func exchange(t *testing.T, a, b *s2stest.Server, n int) {
	t.Helper()
	for i := range n {
		a.Send(t, msg("alice@"+a.Domain+"/x", "bob@"+b.Domain, fmt.Sprint("ab", i)))
		b.Send(t, msg("bob@"+b.Domain, "alice@"+a.Domain+"/x", fmt.Sprint("ba", i)))
	}
	for i := range n {
		got := b.Expect(t, wait)
		if got.ID != fmt.Sprint("ab", i) || got.From.String() != "alice@"+a.Domain+"/x" || got.Origin != route.FromRemote {
			t.Fatalf("b got %s, want ab%d", got, i)
		}
		if !strings.Contains(string(got.El.Raw), "<body>ab") {
			t.Fatalf("payload lost: %s", got.El.Raw)
		}
		got = a.Expect(t, wait)
		if got.ID != fmt.Sprint("ba", i) {
			t.Fatalf("a got %s, want ba%d", got, i)
		}
	}
	select {
	case s := <-a.Received:
		t.Fatalf("duplicate or extra stanza at a: %s", s)
	case s := <-b.Received:
		t.Fatalf("duplicate or extra stanza at b: %s", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func authMethods(s *s2stest.Server) []string {
	var m []string
	for _, c := range s.S2S.Streams() {
		m = append(m, c.AuthMethod())
	}
	return m
}

func TestDialbackSelfSigned(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	exchange(t, a, b, 20)
	for _, s := range []*s2stest.Server{a, b} {
		if m := authMethods(s); len(m) != 1 || m[0] != "dialback" {
			t.Errorf("%s inbound streams authenticated with %v, want [dialback]", s.Domain, m)
		}
		for _, c := range s.Pool.Streams() {
			if st, ok := c.TLSState(); !ok || st.Version < tls.VersionTLS12 {
				t.Errorf("%s: outbound stream without TLS 1.2+", s.Domain)
			}
		}
	}
}

func TestSASLExternal(t *testing.T) {
	dns := s2stest.NewDNS(t)
	ca := s2stest.LoadCA(t)
	ca1, ca2 := ca.Issue(t, "a.test"), ca.Issue(t, "b.test")
	policy := func(string) s2s.Policy { return s2s.RequireValidCert }
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{Cert: &ca1, Roots: ca.Pool(), Policy: policy})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{Cert: &ca2, Roots: ca.Pool(), Policy: policy})
	exchange(t, a, b, 5)
	for _, s := range []*s2stest.Server{a, b} {
		if m := authMethods(s); len(m) != 1 || m[0] != "sasl-external" {
			t.Errorf("%s inbound streams authenticated with %v, want [sasl-external]", s.Domain, m)
		}
	}
}

// TestDirectTLS: a domain with only an _xmpps-server record is reached with
// TLS from the first byte (XEP-0368).
func TestDirectTLS(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	directOnly(t, dns, b)
	// b answers a through a's ordinary SRV record.
	a.Send(t, msg("alice@a.test", "bob@b.test", "direct"))
	if got := b.Expect(t, wait); got.ID != "direct" {
		t.Fatalf("got %s", got)
	}
	for _, c := range a.Pool.Streams() {
		st, _ := c.TLSState()
		if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "xmpp-server" {
			t.Errorf("ALPN %q", st.NegotiatedProtocol)
		}
	}
}

// directOnly serves s with XEP-0368 direct TLS on a port of its own and
// publishes only that: an _xmpps-server record and an A record. It returns
// the port.
func directOnly(t *testing.T, zone *s2stest.DNS, s *s2stest.Server) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.S2S.ServeDirectTLS(l)
	port := netip.MustParseAddrPort(l.Addr().String()).Port()
	zone.AddRR(fmt.Sprintf("_xmpps-server._tcp.%s. 1 IN SRV 0 0 %d %s.", s.Domain, port, s.Domain))
	zone.AddA(s.Domain, "127.0.0.1")
	return port
}

// expectBounce waits for the error stanza that returns to alice@a.test.
func expectBounce(t *testing.T, a *s2stest.Server, id string, cond stanza.Condition) {
	t.Helper()
	got := a.Expect(t, wait)
	if got.Type != "error" || got.ID != id {
		t.Fatalf("got %s, want an error for %s", got, id)
	}
	var v struct {
		Error []byte `xml:",innerxml"`
	}
	_ = v
	raw := string(got.El.Raw)
	i := strings.Index(raw, "<error")
	if i < 0 {
		t.Fatalf("no error element in %s", raw)
	}
	e, err := stanza.ParseError([]byte(raw[i : strings.LastIndex(raw, "</error>")+len("</error>")]))
	if err != nil {
		t.Fatal(err)
	}
	if e.Condition != cond {
		t.Fatalf("bounce condition %s, want %s (%s)", e.Condition, cond, raw)
	}
	if !strings.Contains(raw, "<body>") {
		t.Errorf("bounce lacks the original payload: %s", raw)
	}
}

func TestUnreachable(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 500 * time.Millisecond})

	t.Run("no such domain", func(t *testing.T) {
		a.Send(t, msg("alice@a.test", "bob@nowhere.test", "nx"))
		expectBounce(t, a, "nx", stanza.RemoteServerNotFound)
	})
	t.Run("dot target", func(t *testing.T) {
		dns.AddRR("_xmpp-server._tcp.dot.test. 1 IN SRV 0 0 0 .")
		dns.AddA("dot.test", "127.0.0.1")
		dns.ResetQueries()
		a.Send(t, msg("alice@a.test", "bob@dot.test", "dot"))
		expectBounce(t, a, "dot", stanza.RemoteServerNotFound)
		for _, q := range dns.Queries() {
			if strings.Contains(q, " A") {
				t.Errorf("looked up an address despite the '.' target: %s", q)
			}
		}
	})
	t.Run("refused port", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		port := netip.MustParseAddrPort(l.Addr().String()).Port()
		l.Close()
		dns.AddServer("closed.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
		a.Send(t, msg("alice@a.test", "bob@closed.test", "refused1"))
		a.Send(t, msg("alice@a.test", "bob@closed.test", "refused2"))
		expectBounce(t, a, "refused1", stanza.RemoteServerNotFound)
		expectBounce(t, a, "refused2", stanza.RemoteServerNotFound)
	})
	t.Run("no bounce for errors", func(t *testing.T) {
		a.Send(t, "<message from='alice@a.test' to='bob@nowhere.test' type='error' id='e'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
		select {
		case s := <-a.Received:
			t.Fatalf("error answered with %s", s)
		case <-time.After(700 * time.Millisecond):
		}
	})
}

// TestFallbackA: with no SRV records, the domain's own address on 5269 is
// tried (RFC 6120 §3.2.2).
func TestFallbackA(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 300 * time.Millisecond})
	dns.AddA("noservice.test", "127.0.0.1")
	var tried []string
	a.Dialer.Trace = &s2s.Trace{Connect: func(tg s2s.Target, ap netip.AddrPort, err error) { tried = append(tried, ap.String()) }}
	a.Send(t, msg("alice@a.test", "bob@noservice.test", "fb"))
	a.Expect(t, wait) // bounce: nothing listens on 5269 here (or it is not XMPP)
	if len(tried) == 0 || tried[0] != "127.0.0.1:5269" {
		t.Fatalf("tried %v, want 127.0.0.1:5269 first", tried)
	}
}

func TestSecurePolicyRefusesSelfSigned(t *testing.T) {
	dns := s2stest.NewDNS(t)
	ca := s2stest.LoadCA(t)
	policy := func(string) s2s.Policy { return s2s.RequireValidCert }
	ca1 := ca.Issue(t, "a.test")
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{Cert: &ca1, Roots: ca.Pool(), Policy: policy, RetryFor: 300 * time.Millisecond})
	s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	a.Send(t, msg("alice@a.test", "bob@b.test", "sec"))
	expectBounce(t, a, "sec", stanza.RemoteServerTimeout)
}

func TestWrongCertificateName(t *testing.T) {
	dns := s2stest.NewDNS(t)
	ca := s2stest.LoadCA(t)
	policy := func(string) s2s.Policy { return s2s.RequireValidCert }
	ca1, wrong := ca.Issue(t, "a.test"), ca.Issue(t, "other.test")
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{Cert: &ca1, Roots: ca.Pool(), Policy: policy, RetryFor: 300 * time.Millisecond})
	s2stest.NewServer(t, dns, "b.test", s2stest.Options{Cert: &wrong, Roots: ca.Pool(), Policy: policy})
	a.Send(t, msg("alice@a.test", "bob@b.test", "wrong"))
	expectBounce(t, a, "wrong", stanza.RemoteServerTimeout)
}

// TestForgedDialbackKey: a server that claims a.test without its secret is
// refused with type='invalid' after b asks a's authoritative server.
func TestForgedDialbackKey(t *testing.T) {
	dns := s2stest.NewDNS(t)
	s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	evil := &s2s.Dialer{
		Resolver:       &s2s.Resolver{Servers: []string{dns.Addr()}, CacheSize: -1},
		Secret:         []byte("not a.test's secret"),
		GetCertificate: func(string) (*tls.Certificate, error) { c := s2stest.SelfSigned(t, "a.test"); return &c, nil },
	}
	_, err := evil.DialContext(context.Background(), "a.test", "b.test")
	if err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("forged key accepted or wrong error: %v", err)
	}
	select {
	case s := <-b.Received:
		t.Fatalf("stanza leaked: %s", s)
	default:
	}
}

// rogue authenticates as evil.test (a real domain with its own server) and
// returns its raw stream to b.
func rogue(t *testing.T) (*s2stest.Server, *s2s.Conn) {
	dns := s2stest.NewDNS(t)
	s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	evil := s2stest.NewServer(t, dns, "evil.test", s2stest.Options{})
	c, err := evil.Dialer.DialContext(context.Background(), "evil.test", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func expectStreamError(t *testing.T, c *s2s.Conn, cond stream.Condition) {
	t.Helper()
	for {
		el, err := s2s.ReadNext(c)
		if err != nil {
			t.Fatalf("stream ended without %s: %v", cond, err)
		}
		if el.Local == "error" {
			se, _ := stream.Parse(el.Raw)
			if se == nil || se.Condition != cond {
				t.Fatalf("stream error %v, want %s", se, cond)
			}
			return
		}
	}
}

func TestSpoofedFrom(t *testing.T) {
	b, c := rogue(t)
	c.SendRaw([]byte(msg("mallory@a.test", "bob@b.test", "spoof")))
	expectStreamError(t, c, stream.InvalidFrom)
	select {
	case s := <-b.Received:
		t.Fatalf("spoofed stanza delivered: %s", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestUnknownTo(t *testing.T) {
	b, c := rogue(t)
	c.SendRaw([]byte(msg("mallory@evil.test", "bob@a.test", "relay")))
	expectStreamError(t, c, stream.HostUnknown)
	select {
	case s := <-b.Received:
		t.Fatalf("stanza delivered: %s", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestGoodStanzaAfterRogueAuth(t *testing.T) {
	b, c := rogue(t)
	c.SendRaw([]byte(msg("mallory@evil.test", "bob@b.test", "ok")))
	if got := b.Expect(t, wait); got.ID != "ok" {
		t.Fatalf("got %s", got)
	}
}

var _ = errors.Is

// TestMultiplexing: a server with two local domains reaches a remote one
// over a single stream: the second domain joins it with dialback
// (XEP-0220 §2.4).
func TestMultiplexing(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{Also: []string{"a2.test", "a3.test"}})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	for i := range 5 {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("one", i)))
		a.Send(t, msg("carol@a2.test", "bob@b.test", fmt.Sprint("two", i)))
		a.Send(t, msg("dave@a3.test", "bob@b.test", fmt.Sprint("three", i)))
	}
	seen := map[string]string{}
	for range 15 {
		s := b.Expect(t, wait)
		seen[s.ID] = s.From.Domainpart()
	}
	if len(seen) != 15 {
		t.Fatalf("got %v", seen)
	}
	if n := len(a.Pool.Streams()); n != 1 {
		t.Errorf("%d outbound streams from a, want 1", n)
	}
	in := b.S2S.Streams()
	if len(in) != 1 {
		t.Fatalf("%d inbound streams at b, want 1", len(in))
	}
	for _, d := range []string{"a.test", "a2.test", "a3.test"} {
		if !in[0].Authenticated(d, "b.test") {
			t.Errorf("%s not authenticated on the stream", d)
		}
	}
}

// TestMalformedTo: an authenticated peer's stanza with a malformed 'to' is
// answered with jid-malformed from our domain, and the stream stays up.
func TestMalformedTo(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	c, err := a.Dialer.DialContext(context.Background(), "a.test", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	c.SendRaw([]byte("<message from='alice@a.test' to='bob@@b.test' id='bad'><body>x</body></message>"))
	got := a.Expect(t, wait)
	if got.Type != "error" || got.ID != "bad" || got.From.String() != "b.test" || !strings.Contains(string(got.El.Raw), "jid-malformed") {
		t.Fatalf("got %s", got.El.Raw)
	}
	c.SendRaw([]byte(msg("alice@a.test", "bob@b.test", "after")))
	if s := b.Expect(t, wait); s.ID != "after" {
		t.Fatalf("got %s", s)
	}
}

// TestNoSuchDomainBouncesAtOnce: a remote domain that DNS says does not
// exist (NXDOMAIN) is not retried for RetryFor: its stanzas bounce at once
// with remote-server-not-found, as Prosody does.
func TestNoSuchDomainBouncesAtOnce(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: time.Hour})
	start := time.Now()
	a.Send(t, msg("alice@a.test", "bob@nowhere.test", "nx"))
	expectBounce(t, a, "nx", stanza.RemoteServerNotFound)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("bounced after %v: retried although the domain does not exist", d)
	}
}

// TestMultiplexRefused: when the peer refuses a second local domain on
// the stream (its dialback cannot be verified), each stanza queued for
// that domain bounces once and leaves the queue; the first domain's
// stanzas go on.
func TestMultiplexRefused(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{Also: []string{"a2.test"}, RetryFor: 5 * time.Second})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	// b cannot reach a2.test's authoritative server: its key is refused.
	dns.Remove("a2.test", miekgdns.TypeANY)
	dns.RemoveSRV("xmpp-server", "a2.test")
	a.Send(t, msg("alice@a.test", "bob@b.test", "first"))
	collect(t, b, 1, wait)
	for i := range 5 {
		a.Send(t, msg("x@a2.test", "bob@b.test", fmt.Sprint("r", i)))
	}
	a.Send(t, msg("alice@a.test", "bob@b.test", "second"))
	collect(t, b, 1, wait)
	bounced := map[string]int{}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		select {
		case s := <-a.Received:
			if s.Type != "error" {
				t.Fatalf("a got %s", s.El.Raw)
			}
			bounced[s.ID]++
		case <-time.After(100 * time.Millisecond):
		}
	}
	for i := range 5 {
		if n := bounced[fmt.Sprint("r", i)]; n != 1 {
			t.Errorf("r%d bounced %d times, want once", i, n)
		}
	}
	if q := a.Pool.Queued(); q != 0 {
		t.Errorf("%d stanzas still queued", q)
	}
}

package s2s_test

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// prosodyPair starts a Go server for go.test and a Prosody for
// prosody.test, both resolving through one loopback DNS zone, and logs
// alice@prosody.test in.
func prosodyPair(t *testing.T, goOpts s2stest.Options, pOpts interop.ProsodyOptions) (*s2stest.Server, *interop.Prosody, *interop.Client) {
	t.Helper()
	interop.Require(t, "prosody")
	dns := s2stest.NewDNS(t)
	g := s2stest.NewServer(t, dns, "go.test", goOpts)
	pOpts.Domain = "prosody.test"
	pOpts.DNS = dns.Addr()
	pOpts.Users = []string{"alice:pw"}
	p := interop.StartProsody(t, pOpts)
	dns.AddServer("prosody.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.S2S)))
	alice := interop.DialClient(t, p.C2SAddr(), jid.MustParse("alice@prosody.test"), "pw")
	return g, p, alice
}

// roundTrip: a message from alice at Prosody reaches the Go server, and the
// Go server's answer reaches alice.
func roundTrip(t *testing.T, g *s2stest.Server, alice *interop.Client) {
	t.Helper()
	for i := range 3 {
		body := fmt.Sprintf("Can't wait to see you tomorrow. %d", i)
		if err := alice.Send(fmt.Sprintf("<message to='bob@go.test' type='chat' id='p%d'><subject>Hello!</subject><body>%s</body></message>", i, body)); err != nil {
			t.Fatal(err)
		}
		got := g.Expect(t, 30*time.Second)
		if got.From.Bare().String() != "alice@prosody.test" || bodyOf(t, got.El.Raw) != body || !strings.Contains(string(got.El.Raw), "<subject>Hello!</subject>") {
			t.Fatalf("Go side got %s: %s", got, got.El.Raw)
		}
		g.Send(t, fmt.Sprintf("<message from='bob@go.test' to='%s' type='chat' id='g%d'><body>answer %d</body></message>", alice.JID, i, i))
		in := alice.Expect(t, 30*time.Second, func(s interop.Stanza) bool { return s.Name == "message" })
		if in.Attrs["from"] != "bob@go.test" || bodyOf(t, []byte(in.Raw)) != fmt.Sprintf("answer %d", i) || in.Attrs["type"] == "error" {
			t.Fatalf("alice got %s", in.Raw)
		}
	}
}

func TestProsodyDialback(t *testing.T) {
	g, p, alice := prosodyPair(t, s2stest.Options{}, interop.ProsodyOptions{})
	roundTrip(t, g, alice)
	log := p.Log()
	for _, want := range []string{
		"Stream encrypted",
		"connection go.test->prosody.test is now authenticated for go.test",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("prosody.log lacks %q", want)
		}
	}
	if m := authMethods(g); len(m) == 0 || m[0] != "dialback" {
		t.Errorf("Go inbound streams authenticated with %v, want dialback", m)
	}
}

func TestProsodySASLExternal(t *testing.T) {
	ca := s2stest.LoadCA(t)
	dir := t.TempDir()
	pc := ca.Issue(t, "prosody.test", "*.prosody.test")
	certFile, keyFile := s2stest.WritePEM(t, dir, "prosody.test", pc)
	caFile := dir + "/ca.crt"
	writeFile(t, caFile, ca.PEM)
	gc := ca.Issue(t, "go.test")
	secure := func(string) s2s.Policy { return s2s.RequireValidCert }
	g, p, alice := prosodyPair(t,
		s2stest.Options{Cert: &gc, Roots: ca.Pool(), Policy: secure},
		interop.ProsodyOptions{Cert: certFile, Key: keyFile, CAFile: caFile, SecureAuth: true})
	roundTrip(t, g, alice)
	if !strings.Contains(p.Log(), "SASL EXTERNAL with go.test succeeded") {
		t.Errorf("Prosody did not authenticate to go.test with SASL EXTERNAL")
	}
	if m := authMethods(g); len(m) == 0 || m[0] != "sasl-external" {
		t.Errorf("Go inbound streams authenticated with %v, want sasl-external", m)
	}
	for _, c := range g.Pool.Streams() {
		if c.AuthMethod() != "sasl-external" {
			t.Errorf("Go outbound stream authenticated with %s", c.AuthMethod())
		}
	}
}

// TestProsodyMultiplexing: two local domains reach Prosody over one
// stream, the second added with dialback.
func TestProsodyMultiplexing(t *testing.T) {
	g, p, alice := prosodyPair(t, s2stest.Options{Also: []string{"go2.test"}}, interop.ProsodyOptions{})
	for i, from := range []string{"bob@go.test", "carol@go2.test"} {
		g.Send(t, fmt.Sprintf("<message from='%s' to='%s' type='chat' id='mx%d'><body>hi %d</body></message>", from, alice.JID, i, i))
		in := alice.Expect(t, 30*time.Second, func(s interop.Stanza) bool { return s.Name == "message" })
		if in.Attrs["from"] != from || in.Attrs["type"] == "error" {
			t.Fatalf("alice got %s", in.Raw)
		}
	}
	if n := len(g.Pool.Streams()); n != 1 {
		t.Errorf("%d outbound streams, want 1", n)
	}
	if !strings.Contains(p.Log(), "go2.test") {
		t.Errorf("Prosody never saw go2.test")
	}
}

// TestProsodyDANE: Prosody's self-signed certificate, published in a
// validated TLSA record, satisfies require-valid-cert; with a record that
// names another key, the Go server does not talk to it.
func TestProsodyDANE(t *testing.T) {
	for _, match := range []bool{true, false} {
		t.Run(fmt.Sprintf("match=%v", match), func(t *testing.T) {
			interop.Require(t, "prosody")
			pc := s2stest.SelfSigned(t, "prosody.test")
			certFile, keyFile := s2stest.WritePEM(t, t.TempDir(), "prosody.test", pc)
			secure := func(string) s2s.Policy { return s2s.RequireValidCert }
			zone := s2stest.NewDNS(t)
			zone.Signed(true)
			g := s2stest.NewServer(t, zone, "go.test", s2stest.Options{DANE: true, Policy: secure, RetryFor: 2 * time.Second})
			p := interop.StartProsody(t, interop.ProsodyOptions{Domain: "prosody.test", DNS: zone.Addr(), Cert: certFile, Key: keyFile})
			zone.AddServer("prosody.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.S2S)))
			published := pc.Leaf
			if !match {
				published = s2stest.SelfSigned(t, "prosody.test").Leaf
			}
			addTLSA(zone, fmt.Sprintf("_%d._tcp.prosody.test.", p.S2S), tlsa(t, 3, 1, 1, published))
			g.Send(t, "<message from='bob@go.test' to='nobody@prosody.test' type='chat' id='d1'><body>dane</body></message>")
			// Prosody answers a message for an unknown user with an
			// error: proof that the stream came up. Without it, the Go
			// server bounces the message itself ("cannot reach").
			got := g.Expect(t, 30*time.Second)
			if got.Type != "error" {
				t.Fatalf("got %s", got.El.Raw)
			}
			raw := string(got.El.Raw)
			local := strings.Contains(raw, "cannot reach prosody.test")
			if match && local {
				t.Fatalf("matching TLSA record: the stream did not come up: %s", raw)
			}
			if !match && (!local || !strings.Contains(raw, "remote-server-timeout")) {
				t.Fatalf("mismatching TLSA record: want a local remote-server-timeout bounce, got %s", raw)
			}
			if match {
				streams := g.Pool.Streams()
				if len(streams) != 1 || streams[0].State()&s2s.Verified == 0 {
					t.Errorf("outbound stream to Prosody not verified by DANE")
				}
			}
		})
	}
}

// TestProsodyDirectTLS: with only _xmpps-server records (XEP-0368), each
// side reaches the other with TLS from the first byte: the Go server to
// Prosody's direct-TLS port, Prosody to the Go server's.
func TestProsodyDirectTLS(t *testing.T) {
	interop.Require(t, "prosody")
	zone := s2stest.NewDNS(t)
	g := s2stest.NewServer(t, zone, "go.test", s2stest.Options{NoRegister: true})
	directOnly(t, zone, g)
	p := interop.StartProsody(t, interop.ProsodyOptions{Domain: "prosody.test", DNS: zone.Addr(), Users: []string{"alice:pw"}, S2STLS: -1})
	zone.AddRR(fmt.Sprintf("_xmpps-server._tcp.prosody.test. 1 IN SRV 0 0 %d prosody.test.", p.S2STLS))
	zone.AddA("prosody.test", "127.0.0.1")
	var direct []bool
	var mu sync.Mutex
	g.Dialer.Trace = &s2s.Trace{Connect: func(tg s2s.Target, _ netip.AddrPort, err error) {
		mu.Lock()
		direct = append(direct, tg.DirectTLS)
		mu.Unlock()
	}}
	alice := interop.DialClient(t, p.C2SAddr(), jid.MustParse("alice@prosody.test"), "pw")
	roundTrip(t, g, alice)
	mu.Lock()
	defer mu.Unlock()
	if len(direct) == 0 || slices.Contains(direct, false) {
		t.Errorf("Go server's connections to Prosody, direct TLS: %v", direct)
	}
	for _, c := range g.S2S.Streams() {
		if st, ok := c.TLSState(); !ok || st.Version < tls.VersionTLS12 {
			t.Errorf("inbound stream from Prosody without TLS 1.2+")
		}
	}
}

// TestProsodyBurstsPastNegotiation: against Prosody, stanzas in bursts
// separated by quiet longer than the negotiation timeout go out on one
// authenticated stream each way, with no duplicate.
func TestProsodyBurstsPastNegotiation(t *testing.T) {
	var ups upCounter
	g, _, alice := prosodyPair(t, s2stest.Options{NegotiationTimeout: 2 * time.Second, IdleTimeout: 20 * time.Second, OnStream: ups.on}, interop.ProsodyOptions{})
	seen := map[string]int{}
	for burst := range 3 {
		for i := range 20 {
			g.Send(t, fmt.Sprintf("<message from='bob@go.test' to='%s' type='chat' id='g%d-%d'><body>burst</body></message>", alice.JID, burst, i))
		}
		for range 20 {
			in := alice.Expect(t, 30*time.Second, func(s interop.Stanza) bool { return s.Name == "message" })
			if in.Attrs["type"] == "error" {
				t.Fatalf("alice got an error: %s", in.Raw)
			}
			seen[in.Attrs["id"]]++
		}
		if err := alice.Send(fmt.Sprintf("<message to='bob@go.test' type='chat' id='p%d'><body>back</body></message>", burst)); err != nil {
			t.Fatal(err)
		}
		g.Expect(t, 30*time.Second)
		if burst < 2 {
			time.Sleep(5 * time.Second) // 2.5 negotiation timeouts
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s arrived %d times", id, n)
		}
	}
	if len(seen) != 60 {
		t.Errorf("%d distinct messages, want 60", len(seen))
	}
	if n := ups.out.Load(); n != 1 {
		t.Errorf("go.test opened %d outbound streams to Prosody, want 1", n)
	}
	if n := ups.in.Load(); n != 1 {
		t.Errorf("Prosody's stream to go.test authenticated %d times, want 1", n)
	}
	// Nothing else arrives: no duplicate on its way.
	time.Sleep(500 * time.Millisecond)
	select {
	case s := <-g.Received:
		t.Errorf("unexpected stanza at go.test: %s", s.El.Raw)
	default:
	}
}

package s2s_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
	"github.com/s2sd/s2sd/stanza"
)

// tlsa returns a TLSA record of the given usage, selector and matching type
// for cert.
func tlsa(t *testing.T, usage, selector, matching uint8, cert *x509.Certificate) *dns.TLSA {
	t.Helper()
	data, err := dns.CertificateToDANE(selector, matching, cert)
	if err != nil {
		t.Fatal(err)
	}
	return &dns.TLSA{Usage: usage, Selector: selector, MatchingType: matching, Certificate: data}
}

func leafOf(c tls.Certificate) *x509.Certificate { return c.Leaf }

// TestVerifyDANE: each TLSA usage accepts what RFC 7671 says and nothing
// else.
func TestVerifyDANE(t *testing.T) {
	ca := s2stest.LoadCA(t)
	good, other, atHost := ca.Issue(t, "b.test"), ca.Issue(t, "other.test"), ca.Issue(t, "xmpp.hosting.test")
	self := s2stest.SelfSigned(t, "b.test")
	chain := func(c tls.Certificate, withCA bool) []*x509.Certificate {
		ch := []*x509.Certificate{leafOf(c)}
		if withCA {
			ch = append(ch, ca.Cert)
		}
		return ch
	}
	wrong := tlsa(t, 3, 1, 1, leafOf(s2stest.SelfSigned(t, "b.test")))
	now := time.Now()
	cases := []struct {
		name  string
		chain []*x509.Certificate
		recs  []*dns.TLSA
		roots *x509.CertPool
		ok    bool
	}{
		{"DANE-EE SPKI SHA-256", chain(self, false), []*dns.TLSA{tlsa(t, 3, 1, 1, leafOf(self))}, nil, true},
		{"DANE-EE full certificate", chain(self, false), []*dns.TLSA{tlsa(t, 3, 0, 0, leafOf(self))}, nil, true},
		{"DANE-EE SHA-512", chain(self, false), []*dns.TLSA{tlsa(t, 3, 1, 2, leafOf(self))}, nil, true},
		{"DANE-EE ignores names", chain(other, false), []*dns.TLSA{tlsa(t, 3, 1, 1, leafOf(other))}, nil, true},
		{"DANE-EE other key", chain(self, false), []*dns.TLSA{wrong}, nil, false},
		{"second record matches", chain(self, false), []*dns.TLSA{wrong, tlsa(t, 3, 1, 1, leafOf(self))}, nil, true},
		{"DANE-TA", chain(good, true), []*dns.TLSA{tlsa(t, 2, 0, 1, ca.Cert)}, nil, true},
		{"DANE-TA, SRV target's name", chain(atHost, true), []*dns.TLSA{tlsa(t, 2, 1, 1, ca.Cert)}, nil, true},
		{"DANE-TA, wrong name", chain(other, true), []*dns.TLSA{tlsa(t, 2, 0, 1, ca.Cert)}, nil, false},
		{"DANE-TA not in the chain", chain(good, false), []*dns.TLSA{tlsa(t, 2, 0, 1, ca.Cert)}, nil, false},
		{"DANE-TA, leaf not issued by it", chain(self, true), []*dns.TLSA{tlsa(t, 2, 0, 1, ca.Cert)}, nil, false},
		{"PKIX-EE, trusted", chain(good, true), []*dns.TLSA{tlsa(t, 1, 1, 1, leafOf(good))}, ca.Pool(), true},
		{"PKIX-EE, not trusted", chain(good, true), []*dns.TLSA{tlsa(t, 1, 1, 1, leafOf(good))}, x509.NewCertPool(), false},
		{"PKIX-TA, trusted", chain(good, true), []*dns.TLSA{tlsa(t, 0, 0, 1, ca.Cert)}, ca.Pool(), true},
		{"PKIX-TA, leaf is no anchor", chain(good, true), []*dns.TLSA{tlsa(t, 0, 0, 1, leafOf(good))}, ca.Pool(), false},
		{"no certificate", nil, []*dns.TLSA{tlsa(t, 3, 1, 1, leafOf(self))}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s2s.VerifyDANE(tc.chain, tc.recs, tc.roots, "b.test", "xmpp.hosting.test", now)
			if (err == nil) != tc.ok {
				t.Fatalf("VerifyDANE = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// daneZone returns a signed zone, a.test with DANE and the given policy,
// and b.test with a self-signed certificate, and the name of b's TLSA
// records.
func daneZone(t *testing.T, policy s2s.Policy) (zone *s2stest.DNS, a, b *s2stest.Server, name string) {
	t.Helper()
	zone = s2stest.NewDNS(t)
	zone.Signed(true)
	a = s2stest.NewServer(t, zone, "a.test", s2stest.Options{DANE: true, RetryFor: 500 * time.Millisecond, Policy: func(string) s2s.Policy { return policy }})
	b = s2stest.NewServer(t, zone, "b.test", s2stest.Options{})
	return zone, a, b, fmt.Sprintf("_%d._tcp.b.test.", b.Addr.Port())
}

func addTLSA(zone *s2stest.DNS, name string, r *dns.TLSA) {
	zone.AddRR(fmt.Sprintf("%s 1 IN TLSA %d %d %d %s", name, r.Usage, r.Selector, r.MatchingType, r.Certificate))
}

func queried(zone *s2stest.DNS, name string) bool {
	return slices.Contains(zone.Queries(), name+" TLSA")
}

// TestDANE: a validated TLSA record that matches makes a self-signed
// certificate good enough for require-valid-cert; one that matches nothing
// stops the connection even where dialback would do; records that are not
// validated are not even asked for.
func TestDANE(t *testing.T) {
	t.Run("match", func(t *testing.T) {
		zone, a, b, name := daneZone(t, s2s.RequireValidCert)
		addTLSA(zone, name, tlsa(t, 3, 1, 1, leafOf(b.Cert)))
		a.Send(t, msg("alice@a.test", "bob@b.test", "dane"))
		if got := b.Expect(t, wait); got.ID != "dane" {
			t.Fatalf("b got %s", got)
		}
		streams := a.Pool.Streams()
		if len(streams) != 1 || streams[0].State()&s2s.Verified == 0 {
			t.Fatalf("outbound stream not verified: %v", streams)
		}
		if !queried(zone, name) {
			t.Errorf("no TLSA query for %s: %v", name, zone.Queries())
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		zone, a, _, name := daneZone(t, s2s.DialbackOverTLS)
		addTLSA(zone, name, tlsa(t, 3, 1, 1, leafOf(s2stest.SelfSigned(t, "b.test"))))
		a.Send(t, msg("alice@a.test", "bob@b.test", "mitm"))
		expectBounce(t, a, "mitm", stanza.RemoteServerTimeout)
	})
	t.Run("not validated", func(t *testing.T) {
		for _, unsigned := range []string{"", "_xmpp-server._tcp.b.test.", "b.test."} {
			zone, a, b, name := daneZone(t, s2s.DialbackOverTLS)
			if unsigned == "" {
				zone.Signed(false)
			} else {
				zone.Unsigned(unsigned)
			}
			// A record that would fail, were it used.
			addTLSA(zone, name, tlsa(t, 3, 1, 1, leafOf(s2stest.SelfSigned(t, "b.test"))))
			a.Send(t, msg("alice@a.test", "bob@b.test", "plain"))
			if got := b.Expect(t, wait); got.ID != "plain" {
				t.Fatalf("unsigned %q: b got %s", unsigned, got)
			}
			if queried(zone, name) {
				t.Errorf("unsigned %q: asked for TLSA records: %v", unsigned, zone.Queries())
			}
		}
	})
	t.Run("both ways", func(t *testing.T) {
		// Inbound streams check the peer's certificate against the
		// TLSA records of the domain it claims, so two self-signed
		// servers with published keys authenticate with SASL EXTERNAL.
		zone := s2stest.NewDNS(t)
		zone.Signed(true)
		secure := func(string) s2s.Policy { return s2s.RequireValidCert }
		a := s2stest.NewServer(t, zone, "a.test", s2stest.Options{DANE: true, Policy: secure})
		b := s2stest.NewServer(t, zone, "b.test", s2stest.Options{DANE: true, Policy: secure})
		for _, s := range []*s2stest.Server{a, b} {
			addTLSA(zone, fmt.Sprintf("_%d._tcp.%s.", s.Addr.Port(), s.Domain), tlsa(t, 3, 1, 1, leafOf(s.Cert)))
		}
		exchange(t, a, b, 3)
		for _, s := range []*s2stest.Server{a, b} {
			if m := authMethods(s); len(m) != 1 || m[0] != "sasl-external" {
				t.Errorf("%s inbound streams authenticated with %v, want [sasl-external]", s.Domain, m)
			}
		}
	})
	t.Run("direct TLS", func(t *testing.T) {
		// XEP-0368: the TLSA records are those of the direct-TLS port.
		zone := s2stest.NewDNS(t)
		zone.Signed(true)
		a := s2stest.NewServer(t, zone, "a.test", s2stest.Options{DANE: true, Policy: func(string) s2s.Policy { return s2s.RequireValidCert }})
		b := s2stest.NewServer(t, zone, "b.test", s2stest.Options{NoRegister: true})
		port := directOnly(t, zone, b)
		addTLSA(zone, fmt.Sprintf("_%d._tcp.b.test.", port), tlsa(t, 3, 1, 1, leafOf(b.Cert)))
		a.Send(t, msg("alice@a.test", "bob@b.test", "direct"))
		if got := b.Expect(t, wait); got.ID != "direct" {
			t.Fatalf("b got %s", got)
		}
		if streams := a.Pool.Streams(); len(streams) != 1 || streams[0].State()&s2s.Verified == 0 {
			t.Fatalf("outbound direct-TLS stream not verified: %v", streams)
		}
	})
	t.Run("TLSA lookup fails", func(t *testing.T) {
		zone, a, _, name := daneZone(t, s2s.DialbackOverTLS)
		zone.ServFail(name)
		a.Send(t, msg("alice@a.test", "bob@b.test", "servfail"))
		got := a.Expect(t, wait)
		if got.Type != "error" || !strings.Contains(string(got.El.Raw), "remote-server-not-found") {
			t.Fatalf("got %s, want a remote-server-not-found bounce", got.El.Raw)
		}
	})
}

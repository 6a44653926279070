package diag_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/diag"
	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// TestProsody diagnoses a real Prosody (Debian's prosody 0.12, self-signed
// certificate, s2s_require_encryption = true, s2s_secure_auth = false) that
// resolves through the test DNS. Without Prosody it skips, or fails with
// CI=true (interop.Require).
func TestProsody(t *testing.T) {
	interop.Require(t, "prosody")
	dns := s2stest.NewDNS(t)
	// The s2sd serving go.test: Prosody checks our dialback key with it.
	local := s2stest.NewServer(t, dns, "go.test", s2stest.Options{})
	p := interop.StartProsody(t, interop.ProsodyOptions{
		Domain: "prosody.test",
		DNS:    dns.Addr(),
		// Bounds the standalone case, where Prosody waits for a dialback
		// check that cannot succeed.
		S2STimeout: 5 * time.Second,
	})
	dns.AddServer("prosody.test", netip.MustParseAddrPort(p.S2SAddr()))

	t.Run("dialback", func(t *testing.T) {
		r, text, back := run(t, local.Dialer, "go.test", "prosody.test")
		checkProsody(t, r, text, p)
		a := onlyAttempt(t, r)
		if a.Auth == nil || a.Auth.Method != diag.MethodDialback || a.Auth.Result != diag.AuthValid || !r.Authenticated {
			t.Errorf("auth = %+v, error %q", a.Auth, r.Error)
		}
		wantLines(t, text, "authentication dialback: valid",
			"Verdict: problems found (1): a stream from go.test to prosody.test authenticated with dialback")
		noErrors(t, r)
		if ba := onlyAttempt(t, back); ba.TLS == nil || ba.TLS.Version != "TLS 1.3" || !ba.Features[0].StartTLSRequired {
			t.Errorf("JSON round trip: %+v", ba)
		}
	})

	// Standalone: nothing serves lonely.test, so Prosody cannot check our
	// key.
	t.Run("standalone", func(t *testing.T) {
		d := &s2s.Dialer{
			Resolver:           &s2s.Resolver{Servers: []string{dns.Addr()}, Timeout: 2 * time.Second, CacheSize: -1},
			Secret:             s2s.NewSecret(),
			AttemptTimeout:     2 * time.Second,
			NegotiationTimeout: 20 * time.Second,
			Logger:             local.Dialer.Logger,
		}
		r, text, _ := run(t, d, "lonely.test", "prosody.test")
		checkProsody(t, r, text, p)
		a := onlyAttempt(t, r)
		if a.Auth == nil || a.Auth.Method != diag.MethodDialback || a.Auth.Result == diag.AuthValid || r.Authenticated {
			t.Errorf("auth = %+v", a.Auth)
		}
		wantProblem(t, r, diag.SevError, "dialback: the remote could not verify our key — is s2sd running for lonely.test and reachable?")
	})
}

// checkProsody checks what any diagnosis of Prosody shows.
func checkProsody(t *testing.T, r *diag.Report, text string, p *interop.Prosody) {
	t.Helper()
	if len(r.DNS.SRV) != 2 || len(r.DNS.SRV[1].Records) != 1 ||
		r.DNS.SRV[1].Records[0] != (diag.SRVRecord{Port: uint16(p.S2S), Target: "prosody.test."}) {
		t.Errorf("SRV = %+v", r.DNS.SRV)
	}
	a := onlyAttempt(t, r)
	if !a.Connected || a.Addr != p.S2SAddr() {
		t.Fatalf("attempt = %+v", a)
	}
	if f := features(t, a, diag.BeforeTLS); !f.StartTLS || !f.StartTLSRequired {
		t.Errorf("features before TLS = %+v", f)
	}
	if f := features(t, a, diag.AfterTLS); !f.Dialback {
		t.Errorf("features after TLS = %+v", f)
	}
	if a.TLS == nil {
		t.Fatal("no TLS")
	}
	if a.TLS.Version != "TLS 1.3" || a.TLS.Valid || a.TLS.Problem != diag.CertSelfSigned || !a.TLS.NamesDomain {
		t.Errorf("TLS = %+v", a.TLS)
	}
	if c := a.TLS.Chain[0]; !c.SelfSigned || !slices.Contains(c.DNSNames, "prosody.test") || !slices.Contains(c.SANs, "DNS:*.prosody.test") {
		t.Errorf("certificate = %+v", c)
	}
	wantProblem(t, r, diag.SevWarning, "certificate is self-signed: peers requiring valid certificates will refuse")
	wantLines(t, text,
		fmt.Sprintf("_xmpp-server._tcp.prosody.test. priority 0 weight 0 port %d target prosody.test.", p.S2S),
		fmt.Sprintf("#1 %s prosody.test:%d (_xmpp-server, STARTTLS) connected in", p.S2SAddr(), p.S2S),
		"features before TLS STARTTLS (required)",
		"TLS TLS 1.3, ",
		"certificate NOT valid: self-signed",
		"issuer CN=prosody.test (self-signed)",
		"features after TLS dialback",
	)
}

package diag_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/s2sd/s2sd/internal/diag"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// run diagnoses domain from local with d and returns the report, its text
// (each line's spaces collapsed, so that assertions do not depend on
// column widths) and its JSON decoded into a fresh Report.
func run(t *testing.T, d *s2s.Dialer, local, domain string) (*diag.Report, string, *diag.Report) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := diag.Run(ctx, d, local, domain)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	t.Logf("report:\n%s", buf.String())
	var lines []string
	for l := range strings.SplitSeq(buf.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var back diag.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal: %v\n%s", err, b)
	}
	return r, strings.Join(lines, "\n"), &back
}

func wantLines(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("text output lacks %q", w)
		}
	}
}

func wantProblem(t *testing.T, r *diag.Report, sev, text string) {
	t.Helper()
	for _, p := range r.Problems {
		if p.Severity == sev && strings.Contains(p.Text, text) {
			return
		}
	}
	t.Errorf("no %s problem containing %q in %+v", sev, text, r.Problems)
}

func noErrors(t *testing.T, r *diag.Report) {
	t.Helper()
	for _, p := range r.Problems {
		if p.Severity == diag.SevError {
			t.Errorf("unexpected error problem: %s", p.Text)
		}
	}
}

// onlyAttempt returns the single attempt of r.
func onlyAttempt(t *testing.T, r *diag.Report) *diag.Attempt {
	t.Helper()
	if len(r.Attempts) != 1 {
		t.Fatalf("%d attempts, want 1: %+v", len(r.Attempts), r.Attempts)
	}
	return &r.Attempts[0]
}

func features(t *testing.T, a *diag.Attempt, stage string) *diag.Features {
	t.Helper()
	for i := range a.Features {
		if a.Features[i].Stage == stage {
			return &a.Features[i]
		}
	}
	t.Fatalf("no stream features %s in %+v", stage, a.Features)
	return nil
}

func TestSelfSignedDialback(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})
	port := remote.Addr.Port()

	r, text, back := run(t, local.Dialer, "local.test", "remote.test")

	if len(r.DNS.SRV) != 2 || len(r.DNS.SRV[0].Records) != 0 || len(r.DNS.SRV[1].Records) != 1 {
		t.Fatalf("SRV = %+v", r.DNS.SRV)
	}
	if got, want := r.DNS.SRV[1].Records[0], (diag.SRVRecord{Port: port, Target: "remote.test."}); got != want {
		t.Errorf("SRV record = %+v, want %+v", got, want)
	}
	if r.DNS.Fallback || r.DNS.NoService || r.DNS.Error != "" {
		t.Errorf("DNS = %+v", r.DNS)
	}
	if len(r.DNS.Hosts) != 1 || !slices.Equal(r.DNS.Hosts[0].Addrs, []string{"127.0.0.1"}) {
		t.Errorf("hosts = %+v", r.DNS.Hosts)
	}
	a := onlyAttempt(t, r)
	if !a.Connected || !a.Authenticated || a.Addr != remote.Addr.String() || a.Error != "" {
		t.Errorf("attempt = %+v", a)
	}
	if a.Time <= 0 || a.ConnectTime <= 0 || a.ConnectTime > a.Time {
		t.Errorf("times: connect %v, whole %v", a.ConnectTime, a.Time)
	}
	if f := features(t, a, diag.BeforeTLS); !f.StartTLS || !f.StartTLSRequired || f.Dialback {
		t.Errorf("features before TLS = %+v", f)
	}
	if f := features(t, a, diag.AfterTLS); !f.Dialback || !f.DialbackErrors || len(f.SASLMechanisms) != 0 {
		t.Errorf("features after TLS = %+v", f)
	}
	if a.TLS == nil {
		t.Fatal("no TLS in report")
	}
	if a.TLS.Version != "TLS 1.3" || a.TLS.Valid || a.TLS.Problem != diag.CertSelfSigned || !a.TLS.NamesDomain || a.TLS.Direct {
		t.Errorf("TLS = %+v", a.TLS)
	}
	if len(a.TLS.Chain) != 1 || !a.TLS.Chain[0].SelfSigned || !slices.Equal(a.TLS.Chain[0].DNSNames, []string{"remote.test"}) {
		t.Errorf("chain = %+v", a.TLS.Chain)
	}
	if a.Auth == nil || *a.Auth != (diag.Auth{Method: diag.MethodDialback, Result: diag.AuthValid}) {
		t.Errorf("auth = %+v", a.Auth)
	}
	if !r.Authenticated || r.Method != "dialback" || r.OK {
		t.Errorf("authenticated %v, method %q, ok %v", r.Authenticated, r.Method, r.OK)
	}
	noErrors(t, r)
	wantProblem(t, r, diag.SevWarning, "certificate is self-signed: peers requiring valid certificates will refuse")

	wantLines(t, text,
		"\nDNS\n",
		"_xmpps-server._tcp.remote.test. no records",
		fmt.Sprintf("_xmpp-server._tcp.remote.test. priority 0 weight 0 port %d target remote.test.", port),
		"remote.test 127.0.0.1",
		fmt.Sprintf("#1 %s remote.test:%d (_xmpp-server, STARTTLS) connected in", remote.Addr, port),
		"features before TLS STARTTLS (required)",
		"TLS TLS 1.3, TLS_",
		", STARTTLS, no ALPN",
		"certificate NOT valid: self-signed",
		"[0] subject CN=remote.test",
		"issuer CN=remote.test (self-signed)",
		"names DNS:remote.test",
		"features after TLS dialback (with errors)",
		"authentication dialback: valid",
		"Verdict: problems found (1): a stream from local.test to remote.test authenticated with dialback",
		"warning certificate is self-signed: peers requiring valid certificates will refuse",
	)

	// JSON keeps what scripts need.
	ba := onlyAttempt(t, back)
	if back.Domain != "remote.test" || back.Local != "local.test" || !back.Authenticated ||
		ba.TLS == nil || ba.TLS.Version != "TLS 1.3" || ba.TLS.Problem != diag.CertSelfSigned ||
		len(ba.TLS.Chain) != 1 || !ba.TLS.Chain[0].NotAfter.Equal(a.TLS.Chain[0].NotAfter) ||
		ba.Auth == nil || ba.Auth.Result != diag.AuthValid || len(back.Problems) != 1 ||
		back.DNS.SRV[1].Records[0].Port != port {
		t.Errorf("JSON round trip lost fields: %+v", back)
	}
	if d := time.Duration(ba.Time - a.Time); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("time_ms round trip: %v, want %v", ba.Time, a.Time)
	}
}

// TestJSONFields pins the JSON names scripts rely on.
func TestJSONFields(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})
	r := diag.Run(context.Background(), local.Dialer, "local.test", "remote.test")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path ...any) any {
		var v any = m
		for _, p := range path {
			switch p := p.(type) {
			case string:
				v = v.(map[string]any)[p]
			case int:
				v = v.([]any)[p]
			}
		}
		return v
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"domain"}, "remote.test"},
		{[]any{"local"}, "local.test"},
		{[]any{"ok"}, false},
		{[]any{"authenticated"}, true},
		{[]any{"method"}, "dialback"},
		{[]any{"dns", "srv", 0, "service"}, "xmpps-server"},
		{[]any{"dns", "srv", 1, "records", 0, "target"}, "remote.test."},
		{[]any{"dns", "srv", 1, "records", 0, "priority"}, 0.0},
		{[]any{"dns", "fallback"}, false},
		{[]any{"dns", "hosts", 0, "addrs", 0}, "127.0.0.1"},
		{[]any{"attempts", 0, "connected"}, true},
		{[]any{"attempts", 0, "features", 0, "stage"}, "before-tls"},
		{[]any{"attempts", 0, "features", 0, "starttls_required"}, true},
		{[]any{"attempts", 0, "features", 1, "dialback"}, true},
		{[]any{"attempts", 0, "tls", "version"}, "TLS 1.3"},
		{[]any{"attempts", 0, "tls", "valid"}, false},
		{[]any{"attempts", 0, "tls", "problem"}, "self-signed"},
		{[]any{"attempts", 0, "tls", "chain", 0, "dns_names", 0}, "remote.test"},
		{[]any{"attempts", 0, "auth", "method"}, "dialback"},
		{[]any{"attempts", 0, "auth", "result"}, "valid"},
		{[]any{"problems", 0, "severity"}, "warning"},
	} {
		if got := get(c.path...); got != c.want {
			t.Errorf("%v = %#v, want %#v", c.path, got, c.want)
		}
	}
	for _, k := range []string{"time_ms", "connect_ms"} {
		if _, ok := get("attempts", 0).(map[string]any)[k].(float64); !ok {
			t.Errorf("attempts[0].%s is not a number", k)
		}
	}
	if _, ok := get("attempts", 0, "tls", "chain", 0, "not_after").(string); !ok {
		t.Error("chain[0].not_after is not a string")
	}
}

func TestCAExternal(t *testing.T) {
	ca := s2stest.LoadCA(t)
	from, until := time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour)
	lc := ca.IssueValid(t, from, until, "local.test")
	rc := ca.IssueValid(t, from, until, "remote.test")
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{Cert: &lc, Roots: ca.Pool()})
	s2stest.NewServer(t, dns, "remote.test", s2stest.Options{Cert: &rc, Roots: ca.Pool()})

	r, text, back := run(t, local.Dialer, "local.test", "remote.test")

	a := onlyAttempt(t, r)
	if a.TLS == nil || !a.TLS.Valid || a.TLS.Problem != "" || a.TLS.Chain[0].SelfSigned {
		t.Fatalf("TLS = %+v", a.TLS)
	}
	if f := features(t, a, diag.AfterTLS); !slices.Contains(f.SASLMechanisms, "EXTERNAL") || !f.Dialback {
		t.Errorf("features after TLS = %+v", f)
	}
	features(t, a, diag.AfterSASL)
	if a.Auth == nil || a.Auth.Method != diag.MethodSASLExternal || a.Auth.Result != diag.AuthValid {
		t.Errorf("auth = %+v", a.Auth)
	}
	if !r.OK || !r.Authenticated || r.Method != "sasl-external" || len(r.Problems) != 0 {
		t.Errorf("ok %v, method %q, problems %+v", r.OK, r.Method, r.Problems)
	}
	wantLines(t, text,
		"certificate valid for the domain",
		"issuer CN=s2sd test CA",
		"features after TLS SASL EXTERNAL, dialback (with errors), stream management (XEP-0198)",
		"authentication SASL EXTERNAL: valid",
		"features after SASL stream management (XEP-0198)",
		"Verdict: OK: a stream from local.test to remote.test authenticated with sasl-external",
	)
	if !back.OK || back.Attempts[0].Auth.Method != "SASL EXTERNAL" || !slices.Contains(back.Attempts[0].Features[1].SASLMechanisms, "EXTERNAL") {
		t.Errorf("JSON round trip: %+v", back)
	}
}

// TestCertProblems covers the reasons a certificate is not valid, each
// while dialback still works.
func TestCertProblems(t *testing.T) {
	ca := s2stest.LoadCA(t)
	now := time.Now()
	for _, c := range []struct {
		name    string
		cert    tls.Certificate
		roots   *x509.CertPool
		problem string
		text    string
	}{
		{"expired", ca.IssueValid(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "remote.test"), ca.Pool(), diag.CertExpired, "certificate expired on "},
		{"not-yet-valid", ca.IssueValid(t, now.Add(24*time.Hour), now.Add(48*time.Hour), "remote.test"), ca.Pool(), diag.CertNotYetValid, "certificate is not valid before "},
		{"wrong-name", ca.Issue(t, "other.test"), ca.Pool(), diag.CertWrongName, "certificate does not name remote.test (it names DNS:other.test)"},
		{"unknown-ca", ca.Issue(t, "remote.test"), x509.NewCertPool(), diag.CertUnknownCA, "certificate is issued by an unknown CA (CN=s2sd test CA"},
		{"expires-soon", ca.Issue(t, "remote.test"), ca.Pool(), "", "certificate expires soon"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dns := s2stest.NewDNS(t)
			local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
			s2stest.NewServer(t, dns, "remote.test", s2stest.Options{Cert: &c.cert})
			d := *local.Dialer
			d.Roots = c.roots
			r, _, _ := run(t, &d, "local.test", "remote.test")
			a := onlyAttempt(t, r)
			if a.TLS == nil || a.TLS.Problem != c.problem || a.TLS.Valid != (c.problem == "") {
				t.Errorf("TLS = %+v, want problem %q", a.TLS, c.problem)
			}
			if !r.Authenticated {
				t.Errorf("not authenticated: %s", r.Error)
			}
			wantProblem(t, r, diag.SevWarning, c.text)
			noErrors(t, r)
		})
	}
}

func TestNoRecords(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})

	r, text, back := run(t, local.Dialer, "local.test", "nothing.test")

	if !r.DNS.Fallback || len(r.DNS.SRV) != 2 || len(r.DNS.SRV[0].Records)+len(r.DNS.SRV[1].Records) != 0 {
		t.Errorf("DNS = %+v", r.DNS)
	}
	if len(r.DNS.Hosts) != 1 || r.DNS.Hosts[0].Name != "nothing.test" || r.DNS.Hosts[0].Error == "" {
		t.Errorf("hosts = %+v", r.DNS.Hosts)
	}
	if len(r.Targets) != 1 || r.Targets[0] != (diag.Target{Host: "nothing.test", Port: 5269}) {
		t.Errorf("targets = %+v", r.Targets)
	}
	if len(r.Attempts) != 0 || r.Authenticated || r.Error == "" || r.OK {
		t.Errorf("attempts %+v, error %q", r.Attempts, r.Error)
	}
	wantProblem(t, r, diag.SevWarning, "no SRV records: falling back to nothing.test:5269")
	wantProblem(t, r, diag.SevError, "target nothing.test has no address")
	wantLines(t, text,
		"_xmpps-server._tcp.nothing.test. no records",
		"_xmpp-server._tcp.nothing.test. no records",
		"fallback no SRV records: trying nothing.test:5269",
		"nothing.test error: ",
		"Connection attempts\nnone the dialer tried no address: s2s: nothing.test: ",
		"Verdict: problems found (2): no authenticated stream from local.test to nothing.test",
		"warning no SRV records: falling back to nothing.test:5269",
	)
	if !back.DNS.Fallback || back.DNS.Hosts[0].Error == "" || back.Error == "" {
		t.Errorf("JSON round trip: %+v", back)
	}
}

// TestFallbackConnect has no SRV records but an address: the fallback
// connects to port 5269 there.
func TestFallbackConnect(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	dns.AddA("bare.test", "127.0.0.1")

	r, text, _ := run(t, local.Dialer, "local.test", "bare.test")

	a := onlyAttempt(t, r)
	if a.Addr != "127.0.0.1:5269" || a.Target.Service != "" || a.Target.Port != 5269 {
		t.Errorf("attempt = %+v", a)
	}
	wantProblem(t, r, diag.SevWarning, "no SRV records: falling back to bare.test:5269")
	wantLines(t, text, "#1 127.0.0.1:5269 bare.test:5269 (fallback, STARTTLS)")
	if a.Connected {
		t.Skip("something listens on 127.0.0.1:5269; cannot check the refusal")
	}
	if a.FailedAt != "connect" || !strings.Contains(a.Error, "refused") {
		t.Errorf("attempt = %+v", a)
	}
	wantProblem(t, r, diag.SevError, "cannot connect to 127.0.0.1:5269 (bare.test:5269)")
}

func TestDotTarget(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	dns.AddSRV("xmpp-server", "dot.test", ".", 0, 0, 0)
	dns.AddA("dot.test", "127.0.0.1")

	r, text, back := run(t, local.Dialer, "local.test", "dot.test")

	if !r.DNS.NoService || r.DNS.Fallback || !r.DNS.SRV[1].NoService || r.DNS.SRV[1].Records[0].Target != "." {
		t.Errorf("DNS = %+v", r.DNS)
	}
	if len(r.Attempts) != 0 || len(r.Targets) != 0 || len(r.DNS.Hosts) != 0 {
		t.Errorf("attempts %+v, targets %+v, hosts %+v", r.Attempts, r.Targets, r.DNS.Hosts)
	}
	if !strings.Contains(r.Error, "service not available") {
		t.Errorf("error = %q", r.Error)
	}
	wantProblem(t, r, diag.SevError, `SRV target ".": dot.test says it offers no server-to-server service`)
	wantLines(t, text,
		`_xmpp-server._tcp.dot.test. priority 0 weight 0 port 0 target "." (no service)`,
		"Connection attempts\nnone the dialer tried no address",
		"Verdict: problems found (1): no authenticated stream",
	)
	if !back.DNS.NoService {
		t.Error("JSON: no_service lost")
	}
}

func TestRefused(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	dns.AddSRV("xmpp-server", "refused.test", "xmpp.refused.test", port, 5, 10)
	dns.AddA("xmpp.refused.test", "127.0.0.1")

	r, text, _ := run(t, local.Dialer, "local.test", "refused.test")

	a := onlyAttempt(t, r)
	if a.Connected || a.FailedAt != "connect" || !strings.Contains(a.Error, "refused") || a.TLS != nil || a.Features != nil {
		t.Errorf("attempt = %+v", a)
	}
	if r.Authenticated || r.OK {
		t.Error("report says OK")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wantProblem(t, r, diag.SevError, fmt.Sprintf("cannot connect to %s (xmpp.refused.test:%d)", addr, port))
	wantLines(t, text,
		fmt.Sprintf("_xmpp-server._tcp.refused.test. priority 5 weight 10 port %d target xmpp.refused.test.", port),
		"xmpp.refused.test 127.0.0.1",
		fmt.Sprintf("#1 %s xmpp.refused.test:%d (_xmpp-server, STARTTLS) failed after ", addr, port),
		"connection refused",
		"error cannot connect to "+addr,
	)
	if strings.Contains(text, "Stream #1") {
		t.Error("stream section for a connection that failed")
	}
}

// TestDialbackStandalone runs diag as local.test's s2sd would, but with no
// s2sd serving lonely.test: the remote cannot check our key.
func TestDialbackStandalone(t *testing.T) {
	dns := s2stest.NewDNS(t)
	s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})
	d := &s2s.Dialer{
		Resolver:           &s2s.Resolver{Servers: []string{dns.Addr()}, Timeout: 2 * time.Second},
		Secret:             s2s.NewSecret(),
		AttemptTimeout:     2 * time.Second,
		NegotiationTimeout: 10 * time.Second,
	}

	r, text, back := run(t, d, "lonely.test", "remote.test")

	a := onlyAttempt(t, r)
	if a.Auth == nil || a.Auth.Method != diag.MethodDialback || a.Auth.Result != diag.AuthError || a.Auth.Condition != "remote-server-not-found" {
		t.Fatalf("auth = %+v", a.Auth)
	}
	if a.FailedAt != "auth" || r.Authenticated {
		t.Errorf("attempt = %+v", a)
	}
	const plain = "dialback: the remote could not verify our key — is s2sd running for lonely.test and reachable?"
	wantProblem(t, r, diag.SevError, plain)
	wantLines(t, text,
		"authentication dialback: error (remote-server-not-found)",
		"hint the remote could not verify our key — is s2sd running for lonely.test and reachable?",
		"error "+plain,
	)
	if back.Attempts[0].Auth.Hint == "" {
		t.Error("JSON: hint lost")
	}
}

// TestDialbackInvalid runs diag with a secret that is not the one of the
// s2sd serving local.test.
func TestDialbackInvalid(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})
	d := *local.Dialer
	d.Secret = []byte("not the daemon's secret")

	r, text, _ := run(t, &d, "local.test", "remote.test")

	a := onlyAttempt(t, r)
	if a.Auth == nil || a.Auth.Result != diag.AuthInvalid || a.Authenticated {
		t.Fatalf("auth = %+v", a.Auth)
	}
	wantProblem(t, r, diag.SevError, "same configuration (dialback secret)")
	wantLines(t, text, "authentication dialback: invalid")
}

func TestDirectTLS(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{NoRegister: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go remote.S2S.ServeDirectTLS(l)
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	dns.AddSRV("xmpps-server", "remote.test", "remote.test", port, 0, 0)
	dns.AddSRV("xmpp-server", "remote.test", "remote.test", remote.Addr.Port(), 10, 0)
	dns.AddA("remote.test", "127.0.0.1")

	r, text, _ := run(t, local.Dialer, "local.test", "remote.test")

	a := onlyAttempt(t, r)
	if !a.Target.DirectTLS || a.Target.Service != "xmpps-server" || !a.Authenticated {
		t.Errorf("attempt = %+v", a)
	}
	if a.TLS == nil || !a.TLS.Direct || a.TLS.ALPN != "xmpp-server" {
		t.Errorf("TLS = %+v", a.TLS)
	}
	if len(a.Features) == 0 || a.Features[0].Stage != diag.AfterTLS {
		t.Errorf("features = %+v", a.Features)
	}
	wantLines(t, text,
		fmt.Sprintf("_xmpps-server._tcp.remote.test. priority 0 weight 0 port %d target remote.test.", port),
		fmt.Sprintf("_xmpp-server._tcp.remote.test. priority 10 weight 0 port %d target remote.test.", remote.Addr.Port()),
		"(_xmpps-server, direct TLS) connected in",
		", direct TLS, ALPN xmpp-server",
	)
}

// TestDirectTLSHandshakeFails points an _xmpps-server record at a STARTTLS
// port: the handshake fails, and the next target is tried.
func TestDirectTLSHandshakeFails(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})
	dns.AddSRV("xmpps-server", "remote.test", "remote.test", remote.Addr.Port(), 0, 0)
	dns.RemoveSRV("xmpp-server", "remote.test")
	dns.AddSRV("xmpp-server", "remote.test", "remote.test", remote.Addr.Port(), 10, 0)

	r, _, _ := run(t, local.Dialer, "local.test", "remote.test")

	if len(r.Attempts) != 2 {
		t.Fatalf("attempts = %+v", r.Attempts)
	}
	a := &r.Attempts[0]
	if !a.Connected || a.Authenticated || a.FailedAt != "tls" || !strings.Contains(a.Error, "TLS handshake") {
		t.Errorf("attempt 1 = %+v", a)
	}
	if !r.Attempts[1].Authenticated || !r.Authenticated {
		t.Errorf("attempt 2 = %+v", r.Attempts[1])
	}
	wantProblem(t, r, diag.SevWarning, "stream to "+a.Addr+" failed (during TLS): TLS handshake")
	noErrors(t, r)
}

func TestNilDialerIPLiteral(t *testing.T) {
	// An IP literal needs no DNS; port 5269 on 127.0.0.2 is normally closed.
	r := diag.Run(context.Background(), &s2s.Dialer{AttemptTimeout: time.Second}, "local.test", "127.0.0.2")
	if len(r.DNS.SRV) != 0 || len(r.DNS.Hosts) != 1 || r.DNS.Hosts[0].Addrs[0] != "127.0.0.2" {
		t.Errorf("DNS = %+v", r.DNS)
	}
	if len(r.Attempts) != 1 || r.Attempts[0].Addr != "127.0.0.2:5269" {
		t.Errorf("attempts = %+v", r.Attempts)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestWriteTextError(t *testing.T) {
	r := &diag.Report{Domain: "x.test", Local: "y.test"}
	if err := r.WriteText(failWriter{}); err == nil {
		t.Error("WriteText to a failing writer returned nil")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

// TestTLS12Only serves remote.test with TLS 1.2 at most.
func TestTLS12Only(t *testing.T) {
	dns := s2stest.NewDNS(t)
	local := s2stest.NewServer(t, dns, "local.test", s2stest.Options{})
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{NoRegister: true})
	srv := &s2s.Server{
		Hosted:         remote.Router.Hosted,
		Handler:        remote.Router,
		GetCertificate: func(string) (*tls.Certificate, error) { return &remote.Cert, nil },
		TLSConfig:      &tls.Config{MaxVersion: tls.VersionTLS12},
		Secret:         remote.Dialer.Secret,
		Dialer:         remote.Dialer,
		Logger:         remote.Dialer.Logger,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	dns.AddServer("remote.test", netip.MustParseAddrPort(l.Addr().String()))

	r, text, _ := run(t, local.Dialer, "local.test", "remote.test")

	a := onlyAttempt(t, r)
	if a.TLS == nil || a.TLS.Version != "TLS 1.2" || !r.Authenticated {
		t.Fatalf("TLS = %+v, error %q", a.TLS, r.Error)
	}
	wantProblem(t, r, diag.SevWarning, "TLS 1.2 only: "+l.Addr().String()+" did not negotiate TLS 1.3")
	wantLines(t, text, "TLS TLS 1.2, TLS_ECDHE_")

	// A dialer that itself stops at TLS 1.2 learns nothing about the
	// server's maximum.
	d := *local.Dialer
	d.TLSConfig = &tls.Config{MaxVersion: tls.VersionTLS12}
	r, _, _ = run(t, &d, "local.test", "remote.test")
	for _, p := range r.Problems {
		if strings.Contains(p.Text, "TLS 1.2 only") {
			t.Errorf("problem %q with a TLS 1.2 dialer", p.Text)
		}
	}
}

// TestDANE: with a validating resolver, the report marks validated
// answers, lists the target's TLSA records, and says whether the
// certificate matched them.
func TestDANE(t *testing.T) {
	for _, match := range []bool{true, false} {
		t.Run(fmt.Sprintf("match=%v", match), func(t *testing.T) {
			zone := s2stest.NewDNS(t)
			zone.Signed(true)
			local := s2stest.NewServer(t, zone, "local.test", s2stest.Options{DANE: true})
			remote := s2stest.NewServer(t, zone, "remote.test", s2stest.Options{})
			cert := remote.Cert.Leaf
			if !match {
				cert = s2stest.SelfSigned(t, "remote.test").Leaf
			}
			data, err := dns.CertificateToDANE(1, 1, cert)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("_%d._tcp.remote.test.", remote.Addr.Port())
			zone.AddRR(fmt.Sprintf("%s 1 IN TLSA 3 1 1 %s", name, data))

			r, text, back := run(t, local.Dialer, "local.test", "remote.test")
			if !r.DNS.SRV[1].DNSSEC || len(r.DNS.Hosts) != 1 || !r.DNS.Hosts[0].DNSSEC {
				t.Errorf("validated answers not marked: %+v", r.DNS)
			}
			want := []diag.TLSA{{Name: name, Records: []string{"3 1 1 " + data}}}
			if fmt.Sprint(back.DNS.TLSA) != fmt.Sprint(want) {
				t.Errorf("TLSA = %+v, want %+v", back.DNS.TLSA, want)
			}
			wantLines(t, text, name+" TLSA 3 1 1 "+data, "target remote.test. (DNSSEC)")
			a := r.Attempts[0]
			if a.TLS == nil || !a.TLS.DANE {
				t.Fatalf("TLS = %+v, want DANE checked", a.TLS)
			}
			if match {
				if !a.TLS.Valid || !r.Authenticated {
					t.Errorf("matching record: valid %v, authenticated %v", a.TLS.Valid, r.Authenticated)
				}
				wantLines(t, text, "certificate valid: matches a TLSA record (DANE)")
				return
			}
			if a.TLS.Valid || a.TLS.Problem != diag.CertDANE || r.Authenticated {
				t.Errorf("mismatching record: TLS %+v, authenticated %v", a.TLS, r.Authenticated)
			}
			wantProblem(t, r, diag.SevError, "matches none of the TLSA records")
			if a.FailedAt != "tls" || a.Auth != nil {
				t.Errorf("failed at %q with auth %+v; want the TLS step, before authentication", a.FailedAt, a.Auth)
			}
		})
	}
}

package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// has reports whether the report has a problem of severity sev whose key
// is key and whose text contains text.
func has(r *node.CheckReport, sev, key, text string) bool {
	for _, p := range r.Problems {
		if p.Severity == sev && p.Key == key && strings.Contains(p.Text, text) {
			return true
		}
	}
	return false
}

// TestCheck: one run reports every problem of a configuration, each
// with its key: certificates that do not cover a domain, expired, not yet
// valid, expiring soon, self-signed, with the wrong key; secret files
// others may read, files that cannot be read, a state directory that
// cannot be written, unknown keys and bad values.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	ca := s2stest.LoadCA(t)
	now := time.Now()
	good, goodKey := s2stest.WritePEM(t, dir, "good", ca.Issue(t, "a.test", "*.a.test"))
	wrong, wrongKey := s2stest.WritePEM(t, dir, "wrong", ca.Issue(t, "other.test"))
	expired, expiredKey := s2stest.WritePEM(t, dir, "expired", ca.IssueValid(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "old.test"))
	future, futureKey := s2stest.WritePEM(t, dir, "future", ca.IssueValid(t, now.Add(24*time.Hour), now.Add(48*time.Hour), "new.test"))
	soon, soonKey := s2stest.WritePEM(t, dir, "soon", ca.IssueValid(t, now.Add(-time.Hour), now.Add(10*24*time.Hour), "soon.test"))
	self, selfKey := s2stest.WritePEM(t, dir, "self", s2stest.SelfSigned(t, "self.test"))
	_, otherKey := s2stest.WritePEM(t, dir, "other", ca.Issue(t, "mismatch.test"))
	mismatch, _ := s2stest.WritePEM(t, dir, "mismatch", ca.Issue(t, "mismatch.test"))
	os.Chmod(goodKey, 0o644) // readable by everyone
	secret := filepath.Join(dir, "irc.secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o640)
	readOnly := filepath.Join(dir, "ro")
	os.Mkdir(readOnly, 0o500)
	cfg := filepath.Join(dir, "s2sd.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
[server]
domains = ["a.test", "old.test", "new.test", "soon.test", "self.test", "mismatch.test", "bad domain@"]
state_dir = %[1]q
typo = 1

[s2s]
listen = "127.0.0.1:5269"
policy = "trust-me"

[[certificate]]
domains = ["a.test", "*.a.test"]
cert = %[2]q
key = %[3]q

[[certificate]]
domains = ["b.test"]
cert = %[4]q
key = %[5]q

[[certificate]]
domains = ["old.test"]
cert = %[6]q
key = %[7]q

[[certificate]]
domains = ["new.test"]
cert = %[8]q
key = %[9]q

[[certificate]]
domains = ["soon.test"]
cert = %[10]q
key = %[11]q

[[certificate]]
domains = ["self.test"]
cert = %[12]q
key = %[13]q

[[certificate]]
domains = ["mismatch.test"]
cert = %[14]q
key = %[15]q

[[certificate]]
domains = ["gone.test"]
cert = "/nonexistent/gone.crt"
key = "/nonexistent/gone.key"

[[component]]
domain = "irc.a.test"
secret_file = %[16]q

[[component]]
domain = "bot.deep.a.test"
secret = "short"

[[component]]
domain = "c.test"
secret_file = "/nonexistent/c.secret"

[metrics]
listen = "0.0.0.0:9269"
`, filepath.Join(readOnly, "state"), good, goodKey, wrong, wrongKey, expired, expiredKey, future, futureKey, soon, soonKey, self, selfKey, mismatch, otherKey, secret), 0o644)

	r := node.Check(context.Background(), cfg, node.CheckOptions{})
	for _, p := range r.Problems {
		t.Log(p)
	}
	want := []struct{ sev, key, text string }{
		{"error", "server.typo", "unknown key"},
		{"error", "server.domains", "is not a domain"},
		{"error", "s2s.policy", "unknown policy"},
		{"warning", "s2s.listen", "loopback"},
		{"warning", "metrics.listen", "/status"},
		{"warning", "certificate[0].key", "readable by every user"},
		{"error", "certificate[1]", "does not cover b.test"},
		{"warning", "certificate[1]", "b.test is neither a served nor a component domain"},
		{"error", "certificate[2]", "expired on"},
		{"error", "certificate[3]", "is not valid before"},
		{"warning", "certificate[4]", "expires on"},
		{"warning", "certificate[5]", "self-signed"},
		{"error", "certificate[6]", "private key does not match public key"},
		{"error", "certificate[7]", "no such file or directory"},
		{"warning", "certificate", "no [[certificate]] for c.test"},
		{"warning", "certificate", "no [[certificate]] for bot.deep.a.test"}, // *.a.test covers one level
		{"warning", "component[0].secret_file", "readable by its group"},
		{"warning", "component[1]", "short"},
		{"warning", "component.secret", "readable by every user"},
		{"error", "component[2].secret_file", "no such file or directory"},
	}
	if os.Geteuid() != 0 {
		// root writes anywhere.
		want = append(want, struct{ sev, key, text string }{"error", "server.state_dir", "cannot be created"})
	}
	for _, w := range want {
		if !has(r, w.sev, w.key, w.text) {
			t.Errorf("no %s for %s containing %q", w.sev, w.key, w.text)
		}
	}
	if r.Errors() < 10 {
		t.Errorf("%d errors", r.Errors())
	}
}

// TestCheckClean: a production-like configuration with a certificate for
// every domain reports only that its CA is not the system's; the embedded
// default reports nothing.
func TestCheckClean(t *testing.T) {
	dir := t.TempDir()
	ca := s2stest.LoadCA(t)
	cert, key := s2stest.WritePEM(t, dir, "a", ca.IssueValid(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), "a.test", "*.a.test"))
	cfg := filepath.Join(dir, "s2sd.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
[server]
domains = ["a.test"]
state_dir = %q
[s2s]
listen = "[::]:5269"
[[certificate]]
domains = ["a.test", "*.a.test"]
cert = %q
key = %q
[[component]]
domain = "bot.a.test"
secret = "0123456789abcdef0123456789abcdef"
`, filepath.Join(dir, "state"), cert, key), 0o600)
	r := node.Check(context.Background(), cfg, node.CheckOptions{})
	if r.Errors() != 0 || r.Warnings() != 1 || !has(r, "warning", "certificate[0]", "not trusted by this host's CA roots") {
		t.Errorf("problems: %v", r.Problems)
	}
	if r := node.Check(context.Background(), "", node.CheckOptions{}); len(r.Problems) != 0 {
		t.Errorf("embedded default: %v", r.Problems)
	}
}

// TestCheckDNS: -dns finds a domain without SRV records, an SRV record on
// another port than s2s listens on, targets at addresses of other hosts,
// and a domain that does not exist.
func TestCheckDNS(t *testing.T) {
	dns := s2stest.NewDNS(t)
	dir := t.TempDir()
	dns.AddSRV("xmpp-server", "a.test", "xmpp.a.test", 5269, 0, 0)
	dns.AddA("xmpp.a.test", "192.0.2.1")
	dns.AddSRV("xmpp-server", "bot.a.test", "xmpp.a.test", 5270, 0, 0)
	dns.AddA("b.test", "127.0.0.1")
	cfg := filepath.Join(dir, "s2sd.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
[server]
domains = ["a.test", "b.test", "missing.test"]
state_dir = %q
[s2s]
listen = "[::]:5269"
dns = [%q]
[[component]]
domain = "bot.a.test"
secret = "0123456789abcdef0123456789abcdef"
`, filepath.Join(dir, "state"), dns.Addr()), 0o600)
	r := node.Check(context.Background(), cfg, node.CheckOptions{DNS: true, Resolver: &s2s.Resolver{Servers: []string{dns.Addr()}, CacheSize: -1}, LocalAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	for _, p := range r.Problems {
		t.Log(p)
	}
	for _, w := range []struct{ sev, key, text string }{
		{"warning", "dns a.test", "none of them an address of this host"},
		{"warning", "dns bot.a.test", "is not the port s2sd listens on (5269)"},
		{"warning", "dns b.test", "no _xmpp-server._tcp SRV record"},
		{"error", "dns missing.test", "remote servers cannot find missing.test"},
	} {
		if !has(r, w.sev, w.key, w.text) {
			t.Errorf("no %s for %s containing %q", w.sev, w.key, w.text)
		}
	}
	if has(r, "warning", "dns b.test", "address of this host") {
		t.Error("b.test is on this host")
	}
}

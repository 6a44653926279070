package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/internal/xmpptest"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

func daemonConfig(domain, dns, comp, secret, extra string) string {
	return fmt.Sprintf(`
[server]
domains = [%q]
state_dir = "STATE"
log_level = "debug"

[s2s]
listen = "127.0.0.1:0"
dns = [%q]
retry_for = "3s"

[components]
listen = "127.0.0.1:0"

[[component]]
domain = %q
secret = %q

[metrics]
listen = "127.0.0.1:0"

[shutdown]
grace = "5s"
%s`, domain, dns, comp, secret, extra)
}

// pair starts two daemons, a.test and b.test, each with a component, and
// registers both domains and both component domains in a loopback DNS.
func pair(t *testing.T) (*s2stest.DNS, *s2sdtest.Proc, *s2sdtest.Proc) {
	dns := s2stest.NewDNS(t)
	a := s2sdtest.Start(t, "a", daemonConfig("a.test", dns.Addr(), "bot.a.test", "sa", ""))
	b := s2sdtest.Start(t, "b", daemonConfig("b.test", dns.Addr(), "bot.b.test", "sb", ""))
	for _, x := range []struct {
		p *s2sdtest.Proc
		d string
	}{{a, "a.test"}, {a, "bot.a.test"}, {b, "b.test"}, {b, "bot.b.test"}} {
		dns.AddServer(x.d, x.p.S2S)
	}
	return dns, a, b
}

func dialComp(t *testing.T, p *s2sdtest.Proc, domain, secret string) *component.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := component.Dial(ctx, p.Comp, domain, secret)
	if err != nil {
		t.Fatalf("component %s: %v", domain, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestComponentsOverS2S(t *testing.T) {
	_, a, b := pair(t)
	ca := dialComp(t, a, "bot.a.test", "sa")
	cb := dialComp(t, b, "bot.b.test", "sb")
	for i := range 10 {
		if err := ca.Send([]byte(fmt.Sprintf("<message from='x@bot.a.test/r' to='y@bot.b.test' id='m%d'><body>hello %d</body></message>", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		s := next(t, cb, 15*time.Second)
		if s.ID != fmt.Sprintf("m%d", i) || s.From.String() != "x@bot.a.test/r" || !strings.Contains(string(s.El.Raw), fmt.Sprintf("<body>hello %d</body>", i)) {
			t.Fatalf("b's component got %s: %s", s, s.El.Raw)
		}
	}
	cb.Send([]byte("<message from='y@bot.b.test' to='x@bot.a.test/r' id='back'><body>and back</body></message>"))
	if s := next(t, ca, 15*time.Second); s.ID != "back" {
		t.Fatalf("a's component got %s", s)
	}
	// disco#items on b.test lists its component, asked from a's component.
	ca.Send([]byte("<iq from='x@bot.a.test/r' to='b.test' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"))
	s := next(t, ca, 15*time.Second)
	if s.Type != "result" || !strings.Contains(string(s.El.Raw), "jid='bot.b.test'") {
		t.Fatalf("disco#items: %s", s.El.Raw)
	}
	ca.Send([]byte("<iq from='x@bot.a.test/r' to='b.test' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"))
	if s := next(t, ca, 15*time.Second); s.Type != "result" || s.ID != "p1" {
		t.Fatalf("ping: %s", s.El.Raw)
	}
	ca.Send([]byte("<iq from='x@bot.a.test/r' to='b.test' type='get' id='u1'><unknown xmlns='urn:x'/></iq>"))
	if s := next(t, ca, 15*time.Second); s.Type != "error" || !strings.Contains(string(s.El.Raw), "service-unavailable") {
		t.Fatalf("unknown iq: %s", s.El.Raw)
	}
	// a's metrics saw the stream come up and the stanzas go out.
	metrics := func() string {
		resp, err := http.Get("http://" + a.Metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(body)
	}
	body := metrics()
	for _, want := range []string{
		`s2sd_dial_seconds_count{phase="connect"}`,
		`s2sd_dial_seconds_count{phase="dns"}`,
		`s2sd_stanzas_routed_total{from="component",kind="message",to="remote"} 10`,
		`s2sd_streams{dir="out"} 2`, // to bot.b.test and to b.test
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Quiet, both outbound streams park (after 100 ms), and so do the
	// inbound ones that carried the answers.
	deadline := time.Now().Add(10 * time.Second)
	parkedIn := regexp.MustCompile(`s2sd_streams_parked\{dir="in"\} [1-9]`)
	for !strings.Contains(body, `s2sd_streams_parked{dir="out"} 2`) || !parkedIn.MatchString(body) {
		if time.Now().After(deadline) {
			t.Fatalf("streams not parked after 10 s of quiet:\n%s", grepLines(body, "s2sd_streams"))
		}
		time.Sleep(100 * time.Millisecond)
		body = metrics()
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestComponentHandshakeFailures(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2sdtest.Start(t, "a", daemonConfig("a.test", dns.Addr(), "bot.a.test", "sa", ""))
	ctx := context.Background()
	if _, err := component.Dial(ctx, a.Comp, "bot.a.test", "wrong"); err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := component.Dial(ctx, a.Comp, "nobody.a.test", "sa"); err == nil || !strings.Contains(err.Error(), "host-unknown") {
		t.Errorf("unknown domain: %v", err)
	}
	if strings.Contains(a.Log(), "sa") && regexp.MustCompile(`secret.{0,3}sa\b`).MatchString(a.Log()) {
		t.Errorf("the component secret appears in the log")
	}
}

func TestSpoofedComponentFrom(t *testing.T) {
	_, a, _ := pair(t)
	ca := dialComp(t, a, "bot.a.test", "sa")
	ca.Send([]byte("<message from='x@b.test' to='y@bot.b.test' id='spoof'><body>x</body></message>"))
	_, err := ca.Next()
	if err == nil || !strings.Contains(err.Error(), "invalid-from") {
		t.Fatalf("spoofed from: %v", err)
	}
}

// TestReload: SIGHUP adds a component without dropping the s2s streams up;
// a broken file keeps the running config.
func TestReload(t *testing.T) {
	dns, a, b := pair(t)
	ca := dialComp(t, a, "bot.a.test", "sa")
	cb := dialComp(t, b, "bot.b.test", "sb")
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='before'/>"))
	next(t, cb, 15*time.Second)
	cfg, _ := os.ReadFile(b.CfgPath)
	newCfg := string(cfg) + "\n[[component]]\ndomain = \"new.b.test\"\nsecret = \"sn\"\n"
	os.WriteFile(b.CfgPath, []byte(newCfg), 0o600)
	b.Signal(syscall.SIGHUP)
	if !b.WaitLog("configuration reloaded", 5*time.Second) {
		t.Fatal("no reload")
	}
	dns.AddServer("new.b.test", b.S2S)
	cn := dialComp(t, b, "new.b.test", "sn")
	ca.Send([]byte("<message from='x@bot.a.test' to='z@new.b.test' id='after'/>"))
	if s := next(t, cn, 15*time.Second); s.ID != "after" {
		t.Fatalf("got %s", s)
	}
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='same'/>"))
	if s := next(t, cb, 15*time.Second); s.ID != "same" {
		t.Fatalf("got %s", s)
	}
	// The stream from a to b was not re-established by the reload.
	n := 0
	for _, l := range strings.Split(b.Log(), "\n") {
		if strings.Contains(l, "authenticated with dialback") && strings.Contains(l, "local=bot.b.test") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d dialback authentications at b, want 1 (streams dropped by reload?)", n)
	}
	os.WriteFile(b.CfgPath, []byte("[server\nbroken"), 0o600)
	b.Signal(syscall.SIGHUP)
	if !b.WaitLog("reload failed; keeping the running configuration", 5*time.Second) {
		t.Fatal("bad config not reported")
	}
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='still'/>"))
	if s := next(t, cb, 15*time.Second); s.ID != "still" {
		t.Fatalf("got %s", s)
	}
}

// TestGracefulShutdown: stanzas queued when SIGTERM arrives are delivered
// within the grace period.
func TestGracefulShutdown(t *testing.T) {
	_, a, b := pair(t)
	ca := dialComp(t, a, "bot.a.test", "sa")
	cb := dialComp(t, b, "bot.b.test", "sb")
	const n = 50
	for i := range n {
		ca.Send([]byte(fmt.Sprintf("<message from='x@bot.a.test' to='y@bot.b.test' id='q%d'/>", i)))
	}
	time.Sleep(20 * time.Millisecond) // let a read them; the stream to b is still coming up
	a.Signal(syscall.SIGTERM)
	for i := range n {
		if s := next(t, cb, 15*time.Second); s.ID != fmt.Sprintf("q%d", i) {
			t.Fatalf("got %s, want q%d", s, i)
		}
	}
	select {
	case <-a.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("s2sd did not exit after SIGTERM")
	}
	if a.ExitCode != 0 {
		t.Errorf("exit code %d", a.ExitCode)
	}
}

func TestCheckConfig(t *testing.T) {
	bin := s2sdtest.Binary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(daemonConfig("a.test", "127.0.0.1:53", "bot.a.test", "s", "")), 0o600)
	if out, err := exec.Command(bin, "-t", "-config", good).CombinedOutput(); err != nil {
		t.Errorf("good config refused: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[server]\ndomains = [\"a@b\"]\n"), 0o600)
	out, err := exec.Command(bin, "-t", "-config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "server.domains") {
		t.Errorf("bad config: %v %s", err, out)
	}
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("[server]\ndomains = [\"a.test\"]\ntypo = 1\n"), 0o600)
	out, err = exec.Command(bin, "-t", "-config", unknown).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "server.typo") {
		t.Errorf("unknown key: %v %s", err, out)
	}
	out, _ = exec.Command(bin, "-version").CombinedOutput()
	if !strings.HasPrefix(string(out), "s2sd ") {
		t.Errorf("-version: %s", out)
	}
}

// next reads the next stanza c receives within timeout.
func next(t *testing.T, c *component.Conn, timeout time.Duration) *route.Stanza {
	t.Helper()
	return xmpptest.Next(t, c, timeout)
}

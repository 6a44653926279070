package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// s2sdBinary builds cmd/s2sd once per test run.
func s2sdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "s2sd-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "s2sd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running s2sd process.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	dir      string
	cfgPath  string
	mu       sync.Mutex
	lines    []string
	S2S      netip.AddrPort
	Comp     string
	Metrics  string
	exited   chan struct{}
	exitCode int
}

var addrRE = regexp.MustCompile(`(\w+)=(?:http://)?(127\.0\.0\.1:\d+)`)

// startS2SD writes cfg to a file and runs s2sd on it until the test ends.
func startS2SD(t *testing.T, name, cfg string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, dir: dir, cfgPath: filepath.Join(dir, name+".toml"), exited: make(chan struct{})}
	cfg = strings.ReplaceAll(cfg, "STATE", filepath.Join(dir, "state"))
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(s2sdBinary(t), "-config", p.cfgPath)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if strings.Contains(line, "s2sd started") {
				for _, m := range addrRE.FindAllStringSubmatch(line, -1) {
					switch m[1] {
					case "s2s":
						p.S2S = netip.MustParseAddrPort(m[2])
					case "components":
						p.Comp = m[2]
					case "metrics":
						p.Metrics = m[2]
					}
				}
				once.Do(func() { close(started) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log())
		}
	})
	select {
	case <-started:
	case <-p.exited:
		t.Fatalf("s2sd %s exited: %s", name, p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("s2sd %s did not start: %s", name, p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLog waits until a log line contains s.
func (p *proc) waitLog(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.log(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (p *proc) signal(s os.Signal) { p.cmd.Process.Signal(s) }

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
func pair(t *testing.T) (*s2stest.DNS, *proc, *proc) {
	dns := s2stest.NewDNS(t)
	a := startS2SD(t, "a", daemonConfig("a.test", dns.Addr(), "bot.a.test", "sa", ""))
	b := startS2SD(t, "b", daemonConfig("b.test", dns.Addr(), "bot.b.test", "sb", ""))
	for _, x := range []struct {
		p *proc
		d string
	}{{a, "a.test"}, {a, "bot.a.test"}, {b, "b.test"}, {b, "bot.b.test"}} {
		dns.AddServer(x.d, x.p.S2S)
	}
	return dns, a, b
}

func dialComp(t *testing.T, p *proc, domain, secret string) *component.Conn {
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

// next reads stanzas from c until one is not presence.
func next(t *testing.T, c *component.Conn, timeout time.Duration) *route.Stanza {
	t.Helper()
	type res struct {
		s   *route.Stanza
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.Next()
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("component read: %v", r.err)
		}
		return r.s
	case <-time.After(timeout):
		t.Fatalf("no stanza within %v", timeout)
		return nil
	}
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
}

func TestComponentHandshakeFailures(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := startS2SD(t, "a", daemonConfig("a.test", dns.Addr(), "bot.a.test", "sa", ""))
	ctx := context.Background()
	if _, err := component.Dial(ctx, a.Comp, "bot.a.test", "wrong"); err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := component.Dial(ctx, a.Comp, "nobody.a.test", "sa"); err == nil || !strings.Contains(err.Error(), "host-unknown") {
		t.Errorf("unknown domain: %v", err)
	}
	if strings.Contains(a.log(), "sa") && regexp.MustCompile(`secret.{0,3}sa\b`).MatchString(a.log()) {
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
	cfg, _ := os.ReadFile(b.cfgPath)
	newCfg := string(cfg) + "\n[[component]]\ndomain = \"new.b.test\"\nsecret = \"sn\"\n"
	os.WriteFile(b.cfgPath, []byte(newCfg), 0o600)
	b.signal(syscall.SIGHUP)
	if !b.waitLog("configuration reloaded", 5*time.Second) {
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
	for _, l := range strings.Split(b.log(), "\n") {
		if strings.Contains(l, "authenticated with dialback") && strings.Contains(l, "local=bot.b.test") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d dialback authentications at b, want 1 (streams dropped by reload?)", n)
	}
	os.WriteFile(b.cfgPath, []byte("[server\nbroken"), 0o600)
	b.signal(syscall.SIGHUP)
	if !b.waitLog("reload failed; keeping the running configuration", 5*time.Second) {
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
	a.signal(syscall.SIGTERM)
	for i := range n {
		if s := next(t, cb, 15*time.Second); s.ID != fmt.Sprintf("q%d", i) {
			t.Fatalf("got %s, want q%d", s, i)
		}
	}
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("s2sd did not exit after SIGTERM")
	}
	if a.exitCode != 0 {
		t.Errorf("exit code %d", a.exitCode)
	}
}

func TestCheckConfig(t *testing.T) {
	bin := s2sdBinary(t)
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

// TestExampleConfig: the shipped example parses (its files do not exist
// here, so only the error about the first missing file is accepted).
func TestExampleConfig(t *testing.T) {
	_, err := loadConfig("../../dist/s2sd.example.toml")
	if err == nil || !strings.Contains(err.Error(), "certificate[0]") {
		t.Fatalf("example config: %v", err)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// s2sd runs the binary with args and returns its output and exit code.
func s2sd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(s2sdtest.Binary(t), args...)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func statusOf(t *testing.T, p *s2sdtest.Proc) *node.Status {
	t.Helper()
	out, code := s2sd(t, "status", "-json", "-config", p.CfgPath)
	if code != 0 {
		t.Fatalf("s2sd status -json: exit %d: %s", code, out)
	}
	var st node.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("s2sd status -json: %v\n%s", err, out)
	}
	return &st
}

// ready returns the ready streams of st.
func ready(st *node.Status) []node.StreamStatus {
	var out []node.StreamStatus
	for _, s := range st.Streams {
		if s.State == "ready" {
			out = append(out, s)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestStatusAndCtl runs two daemons, a.test with two components and
// b.test with one, and drives a through `s2sd status` and `s2sd ctl`:
// status -json lists exactly the federated stream (with its
// authentication) and the two components; ctl close ends the stream and
// the next stanza brings a new one; ctl bounce returns a queue to its
// sender; ctl reload says what changed.
func TestStatusAndCtl(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2sdtest.Start(t, "a", daemonConfig("a.test", dns.Addr(), "bot.a.test", "sa", "\n[[component]]\ndomain = \"irc.a.test\"\nsecret = \"si\"\n"))
	b := s2sdtest.Start(t, "b", daemonConfig("b.test", dns.Addr(), "bot.b.test", "sb", ""))
	for _, x := range []struct {
		p *s2sdtest.Proc
		d string
	}{{a, "a.test"}, {a, "bot.a.test"}, {a, "irc.a.test"}, {b, "b.test"}, {b, "bot.b.test"}} {
		dns.AddServer(x.d, x.p.S2S)
	}
	ca := dialComp(t, a, "bot.a.test", "sa")
	dialComp(t, a, "irc.a.test", "si")
	cb := dialComp(t, b, "bot.b.test", "sb")
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='m1'/>"))
	if s := next(t, cb, 15*time.Second); s.ID != "m1" {
		t.Fatalf("got %s", s)
	}

	var st *node.Status
	eventually(t, "a's status to show one stream and two components", func() bool {
		st = statusOf(t, a)
		// Acknowledged too: close would send again what is not.
		return len(ready(st)) == 1 && ready(st)[0].Unacked == 0 && len(st.Components) == 2
	})
	s := ready(st)[0]
	if s.Remote != "bot.b.test" || s.Direction != "out" || s.Auth != "dialback" || s.StanzasOut != 1 || fmt.Sprint(s.Local) != "[bot.a.test]" {
		t.Errorf("stream: %+v", s)
	}
	for i, want := range []string{"bot.a.test", "irc.a.test"} {
		if c := st.Components[i]; c.Domain != want || !c.Connected {
			t.Errorf("component %d: %+v, want %s connected", i, c, want)
		}
	}
	if st.Process.ConfigFile != a.CfgPath || st.Process.PID != a.Pid() {
		t.Errorf("process: %+v", st.Process)
	}
	out, code := s2sd(t, "status", "-config", a.CfgPath)
	if code != 0 || !strings.Contains(out, "STREAMS (") || !strings.Contains(out, "bot.b.test") || !strings.Contains(out, "irc.a.test") {
		t.Errorf("s2sd status: exit %d\n%s", code, out)
	}

	// close, and the next stanza brings up a new stream.
	out, code = s2sd(t, "ctl", "-config", a.CfgPath, "close", "bot.b.test")
	if code != 0 || !strings.Contains(out, "closed 1 stream ") {
		t.Errorf("ctl close: exit %d: %s", code, out)
	}
	if !a.WaitLog("control: closed the streams of a domain", 5*time.Second) || !strings.Contains(a.Log(), "uid=") {
		t.Error("ctl close not logged with the client's uid")
	}
	eventually(t, "the stream to end", func() bool {
		r := ready(statusOf(t, a))
		return len(r) == 0 || r[0].StreamID != s.StreamID
	})
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='m2'/>"))
	if s := next(t, cb, 15*time.Second); s.ID != "m2" {
		t.Fatalf("after close: got %s", s)
	}

	// bounce: a domain whose server accepts and hangs up.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dns.AddServer("down.test", netip.MustParseAddrPort(l.Addr().String()))
	ca.Send([]byte("<message from='x@bot.a.test' to='y@down.test' id='m3'/>"))
	eventually(t, "a queue for down.test", func() bool {
		for _, q := range statusOf(t, a).Queues {
			if q.Remote == "down.test" && q.Queued == 1 {
				return true
			}
		}
		return false
	})
	out, code = s2sd(t, "ctl", "-config", a.CfgPath, "bounce", "down.test")
	if code != 0 || !strings.Contains(out, "bounced 1 stanza ") {
		t.Errorf("ctl bounce: exit %d: %s", code, out)
	}
	if s := next(t, ca, 15*time.Second); s.ID != "m3" || s.Type != "error" || !strings.Contains(string(s.El.Raw), "remote-server-not-found") {
		t.Errorf("bounced: %s", s.El.Raw)
	}

	// reload says what changed.
	cfg, _ := os.ReadFile(a.CfgPath)
	os.WriteFile(a.CfgPath, []byte(strings.Replace(strings.Replace(string(cfg), `retry_for = "3s"`, `retry_for = "1h"`, 1), `listen = "127.0.0.1:0"`, `listen = "127.0.0.1:1"`, 1)), 0o600)
	out, code = s2sd(t, "ctl", "-config", a.CfgPath, "reload")
	if code != 0 || !strings.Contains(out, "in force now: s2s.retry_for") || !strings.Contains(out, "need a restart: s2s.listen") {
		t.Errorf("ctl reload: exit %d: %s", code, out)
	}

	// Usage errors.
	for _, args := range [][]string{{"ctl", "-config", a.CfgPath, "close"}, {"ctl", "-config", a.CfgPath, "frobnicate", "x"}, {"status", "extra"}, {"help-me"}} {
		if out, code := s2sd(t, args...); code != 2 || !strings.Contains(out, "usage") {
			t.Errorf("s2sd %v: exit %d: %s", args, code, out)
		}
	}
	if out, code := s2sd(t, "-h"); code != 0 && code != 2 || !strings.Contains(out, "s2sd status") || !strings.Contains(out, "s2sd ctl") || !strings.Contains(out, "s2sd check") {
		t.Errorf("s2sd -h: %s", out)
	}
}

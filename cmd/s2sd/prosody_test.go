package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// TestProsodyConversation is the example conversation of the XMPP specs, end
// to end: alice logs in to Prosody over c2s and writes to bob at the s2sd
// domain, where bob is served by a component; the component receives
// subject and body unchanged and answers; alice receives the answer; her
// unavailable presence reaches the component.
func TestProsodyConversation(t *testing.T) {
	interop.Require(t, "prosody")
	dns := s2stest.NewDNS(t)
	cfg := fmt.Sprintf(`
[server]
state_dir = "STATE"
log_level = "debug"

[s2s]
listen = "127.0.0.1:0"
dns = [%q]

[components]
listen = "127.0.0.1:0"

[[component]]
domain = "s2sd.test"
secret = "bobsecret"
`, dns.Addr())
	d := s2sdtest.Start(t, "s2sd", cfg)
	dns.AddServer("s2sd.test", d.S2S)
	p := interop.StartProsody(t, interop.ProsodyOptions{Domain: "prosody.test", DNS: dns.Addr(), Users: []string{"alice:pw"}})
	dns.AddServer("prosody.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.S2S)))

	bob := dialComp(t, d, "s2sd.test", "bobsecret")
	alice := interop.DialClient(t, p.C2SAddr(), jid.MustParse("alice@prosody.test"), "pw")

	alice.Send("<message to='bob@s2sd.test' type='chat' id='hello1'><subject>Hello!</subject><body>Can't wait to see you tomorrow.</body></message>")
	var got struct{ subject, body, from string }
	for got.body == "" {
		s := next(t, bob, 30*time.Second)
		if s.Kind != "message" {
			continue // alice's initial presence is not sent to bob (no subscription)
		}
		var m struct {
			Subject string `xml:"subject"`
			Body    string `xml:"body"`
		}
		if err := s.El.Unmarshal(&m); err != nil {
			t.Fatal(err)
		}
		got.subject, got.body, got.from = m.Subject, m.Body, s.From.String()
	}
	if got.subject != "Hello!" || got.body != "Can't wait to see you tomorrow." || !strings.HasPrefix(got.from, "alice@prosody.test/") {
		t.Fatalf("bob got %+v", got)
	}
	bob.Send([]byte(fmt.Sprintf("<message from='bob@s2sd.test' to='%s' type='chat' id='re1'><body>Me neither!</body></message>", got.from)))
	in := alice.Expect(t, 30*time.Second, func(s interop.Stanza) bool { return s.Name == "message" })
	if in.Attrs["from"] != "bob@s2sd.test" || !strings.Contains(in.Raw, "Me neither!") || in.Attrs["type"] == "error" {
		t.Fatalf("alice got %s", in.Raw)
	}
	alice.Send("<presence type='unavailable' to='bob@s2sd.test'><status>Logged out</status></presence>")
	for {
		s := next(t, bob, 30*time.Second)
		if s.Kind == "presence" && s.Type == "unavailable" {
			var pr struct {
				Status string `xml:"status"`
			}
			s.El.Unmarshal(&pr)
			if pr.Status != "Logged out" {
				t.Fatalf("status %q", pr.Status)
			}
			break
		}
	}
}

// TestDiag runs `s2sd diag` with the running daemon's configuration against
// the Prosody peer (dialback succeeds: the daemon answers Prosody's
// verification) and against a domain with no records.
func TestDiag(t *testing.T) {
	interop.Require(t, "prosody")
	dns := s2stest.NewDNS(t)
	cfg := fmt.Sprintf(`
[server]
domains = ["s2sd.test"]
state_dir = "STATE"

[s2s]
listen = "127.0.0.1:0"
dns = [%q]
`, dns.Addr())
	d := s2sdtest.Start(t, "s2sd", cfg)
	dns.AddServer("s2sd.test", d.S2S)
	p := interop.StartProsody(t, interop.ProsodyOptions{Domain: "prosody.test", DNS: dns.Addr()})
	dns.AddServer("prosody.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.S2S)))

	out, err := exec.Command(s2sdtest.Binary(t), "diag", "-config", d.CfgPath, "prosody.test").CombinedOutput()
	text := string(out)
	for _, want := range []string{
		fmt.Sprintf("_xmpp-server._tcp.prosody.test."),
		fmt.Sprintf("port %d", p.S2S),
		"TLS 1.3",
		"self-signed",
		"STARTTLS (required), dialback",
		"dialback: valid",
	} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("diag report lacks %q:\n%s", want, text)
		}
	}
	if err == nil {
		t.Errorf("diag exited 0 despite the self-signed certificate warning")
	}

	out, err = exec.Command(s2sdtest.Binary(t), "diag", "-json", "-config", d.CfgPath, "missing.test").CombinedOutput()
	var r struct {
		OK       bool `json:"ok"`
		Problems []struct{ Severity, Text string }
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("diag -json: %v\n%s", jerr, out)
	}
	if err == nil || r.OK || len(r.Problems) == 0 || !strings.Contains(string(out), "no SRV records") {
		t.Errorf("diag of a domain with no records: %s", out)
	}
}

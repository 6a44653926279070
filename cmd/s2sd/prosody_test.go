package main

import (
	"fmt"
	"net/netip"
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

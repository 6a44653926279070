package s2s_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/internal/xmpptest"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// TestProsodyNonASCIILocalpart (issue 19): 2ème@prosody.test, an account
// Prosody registers, writes to a component of the Go server; the message
// crosses the s2s stream to the component intact, and the component's
// answer gets back to her. golang.org/x/text's UsernameCaseMapped refuses
// "2ème" (the Bidi Rule applied to a left-to-right string); route.ParseJID
// does not.
func TestProsodyNonASCIILocalpart(t *testing.T) {
	interop.Require(t, "prosody")
	dns := s2stest.NewDNS(t)
	g := s2stest.NewServer(t, dns, "go.test", s2stest.Options{})
	// bot.go.test is a component of the Go server, as s2sd serves one.
	cs := &component.Server{
		Secret:  func(d string) (string, bool) { return "botsecret", d == "bot.go.test" },
		Handler: g.Router,
		Logger:  g.S2S.Logger,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go cs.Serve(l)
	t.Cleanup(func() { cs.Close() })
	g.Router.SetComponent("bot.go.test", cs)
	dns.AddServer("bot.go.test", g.Addr)

	p := interop.StartProsody(t, interop.ProsodyOptions{Domain: "prosody.test", DNS: dns.Addr()})
	dns.AddServer("prosody.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.S2S)))
	p.AddUser(t, "2ème", "pw")
	me, err := route.ParseJID("2ème@prosody.test")
	if err != nil {
		t.Fatal(err)
	}
	user := interop.DialClient(t, p.C2SAddr(), me, "pw")
	if user.JID.Bare().String() != "2ème@prosody.test" {
		t.Fatalf("bound as %s", user.JID)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bot, err := component.Dial(ctx, l.Addr().String(), "bot.go.test", "botsecret")
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Close()

	const body = "Deuxième essai : ça passe ?"
	if err := user.Send("<message to='bob@bot.go.test' type='chat' id='u1'><body>" + body + "</body></message>"); err != nil {
		t.Fatal(err)
	}
	var got *route.Stanza
	for got == nil {
		s := xmpptest.Next(t, bot, 30*time.Second)
		if s.Kind == "message" {
			got = s
		}
	}
	raw := string(got.El.Raw)
	if got.ID != "u1" || got.Type != "chat" || got.From.String() != user.JID.String() ||
		!strings.Contains(raw, "from='"+user.JID.String()+"'") && !strings.Contains(raw, `from="`+user.JID.String()+`"`) ||
		bodyOf(t, got.El.Raw) != body {
		t.Fatalf("component got %s: %s", got, raw)
	}
	answer := "<message from='bob@bot.go.test' to='" + got.From.String() + "' type='chat' id='b1'><body>Très bien, merci.</body></message>"
	if err := bot.Send([]byte(answer)); err != nil {
		t.Fatal(err)
	}
	in := user.Expect(t, 30*time.Second, func(s interop.Stanza) bool { return s.Name == "message" })
	if in.Attrs["from"] != "bob@bot.go.test" || in.Attrs["type"] == "error" || in.Attrs["id"] != "b1" || bodyOf(t, []byte(in.Raw)) != "Très bien, merci." {
		t.Fatalf("user got %s", in.Raw)
	}
	// No stream was lost on the way.
	if log := p.Log(); strings.Contains(log, "invalid-from") || strings.Contains(log, "jid-malformed") {
		t.Errorf("prosody.log mentions an address refused")
	}
}

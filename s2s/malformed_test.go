package s2s_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// replyWatch serves b.test with a server like b's whose Handler also
// copies the errors b itself answers with to the returned channel, and
// returns a stream from a.test to it.
func replyWatch(t *testing.T) (a, b *s2stest.Server, c *s2s.Conn, replies chan *route.Stanza) {
	t.Helper()
	a, b, c, replies, _ = replyWatchServer(t)
	return a, b, c, replies
}

// replyWatchServer is replyWatch that also returns b's s2s server, to
// which it applies opts before it serves.
func replyWatchServer(t *testing.T, opts ...func(*s2s.Server)) (a, b *s2stest.Server, c *s2s.Conn, replies chan *route.Stanza, srv *s2s.Server) {
	t.Helper()
	dns := s2stest.NewDNS(t)
	a = s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	s2stest.NewServer(t, dns, "evil.test", s2stest.Options{})
	b = s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	replies = make(chan *route.Stanza, 10)
	h := route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
		if s.Origin == route.FromLocal && s.IsError() {
			replies <- s
		}
		return b.Router.Deliver(ctx, s)
	})
	srv = &s2s.Server{
		Hosted: b.S2S.Hosted, Handler: h, GetCertificate: b.S2S.GetCertificate,
		Policy: b.S2S.Policy, Secret: b.S2S.Secret, Dialer: b.S2S.Dialer, Logger: b.S2S.Logger,
	}
	for _, o := range opts {
		o(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	dns.AddServer("b.test", netip.MustParseAddrPort(l.Addr().String()))
	c, err = a.Dialer.DialContext(context.Background(), "a.test", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return a, b, c, replies, srv
}

func raw(from, to, typ, id string) string {
	return fmt.Sprintf("<message from='%s' to='%s' type='%s' id='%s'><body>%s</body></message>", from, to, typ, id, id)
}

// TestNonASCIILocalpart: an address whose localpart is left-to-right and
// starts with a digit (issue 19) crosses the stream intact, and one
// right-to-left too.
func TestNonASCIILocalpart(t *testing.T) {
	_, b, c, _ := replyWatch(t)
	for i, from := range []string{"2ème@a.test/tél", "1é@a.test", "שלום@a.test"} {
		c.SendRaw([]byte(raw(from, "bob@b.test", "chat", fmt.Sprint("m", i))))
		got := b.Expect(t, wait)
		if got.ID != fmt.Sprint("m", i) || got.From.String() != from || !strings.Contains(string(got.El.Raw), "from='"+from+"'") {
			t.Fatalf("b got %s: %s", got, got.El.Raw)
		}
	}
}

// TestMalformedFrom: a 'from' that does not parse, on a stream
// authenticated for its domain, is answered with jid-malformed to the
// address as written, and the stream carries on; anything else about it
// ends the stream with invalid-from.
func TestMalformedFrom(t *testing.T) {
	t.Run("authenticated", func(t *testing.T) {
		_, b, c, replies := replyWatch(t)
		for i, tc := range []struct{ from, to, replyFrom string }{
			{"x y@a.test/r", "bob@b.test/home", "bob@b.test/home"}, // a space: no PRECIS profile allows it
			{"1שלום@A.test", "bob@b.test", "bob@b.test"},           // Bidi Rule, domainpart normalized
			{"x y@a.test", "bob@@b.test", "b.test"},                // both bad: from the stream's domain
		} {
			id := fmt.Sprint("bad", i)
			c.SendRaw([]byte(raw(tc.from, tc.to, "chat", id)))
			var r *route.Stanza
			select {
			case r = <-replies:
			case <-time.After(wait):
				t.Fatalf("%s: no error reply", tc.from)
			}
			el := r.El
			if el.Attr("type") != "error" || el.Attr("id") != id || el.Attr("from") != tc.replyFrom || el.Attr("to") != tc.from ||
				!strings.Contains(string(el.Raw), "<jid-malformed xmlns='"+stanza.NS+"'/>") {
				t.Fatalf("%s: reply %s", tc.from, el.Raw)
			}
			if r.To.Domainpart() != "a.test" || r.From.Domainpart() != "b.test" {
				t.Fatalf("%s: reply routed from %s to %s", tc.from, r.From, r.To)
			}
			// The stream goes on.
			c.SendRaw([]byte(msg("alice@a.test", "bob@b.test", "after"+id)))
			if s := b.Expect(t, wait); s.ID != "after"+id {
				t.Fatalf("got %s", s)
			}
		}
		// An error is never answered with an error (RFC 6120 §8.3.1).
		c.SendRaw([]byte(raw("x y@a.test", "bob@b.test", "error", "e1")))
		c.SendRaw([]byte(msg("alice@a.test", "bob@b.test", "after-e1")))
		if s := b.Expect(t, wait); s.ID != "after-e1" {
			t.Fatalf("got %s", s)
		}
		select {
		case r := <-replies:
			t.Fatalf("an error was answered: %s", r.El.Raw)
		case <-time.After(100 * time.Millisecond):
		}
		// XEP-0198 counts the refused stanzas as handled: a sender
		// would otherwise send them again on its next stream.
		if !c.StreamManagement() {
			t.Fatal("stream management not enabled")
		}
		c.SendRaw([]byte("<r xmlns='urn:xmpp:sm:3'/>"))
		for {
			el, err := s2s.ReadNext(c)
			if err != nil {
				t.Fatal(err)
			}
			if el.Local == "a" {
				if h := el.Attr("h"); h != "8" {
					t.Fatalf("h=%s, want 8", h)
				}
				break
			}
		}
	})
	for _, tc := range []struct {
		name, from, to string
		cond           stream.Condition
	}{
		{"other domain", "x y@evil.test", "bob@b.test", stream.InvalidFrom},
		{"no localpart", "@a.test", "bob@b.test", stream.InvalidFrom},
		{"empty resource", "x y@a.test/", "bob@b.test", stream.InvalidFrom},
		{"bad domain", "x y@a..test", "bob@b.test", stream.InvalidFrom},
		{"to not hosted", "x y@a.test", "bob@c.test", stream.HostUnknown},
		{"no from", "", "bob@@b.test", stream.ImproperAddressing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b, c, replies := replyWatch(t)
			m := raw(tc.from, tc.to, "chat", "x")
			c.SendRaw([]byte(m))
			expectStreamError(t, c, tc.cond)
			select {
			case s := <-b.Received:
				t.Fatalf("delivered: %s", s)
			case r := <-replies:
				t.Fatalf("answered: %s", r.El.Raw)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestShutdownAcknowledges: a server that shuts down acknowledges the
// stanzas it handled before its system-shutdown stream error, unasked
// (XEP-0198), so that the peer does not send them again on its next
// stream, where they would arrive twice.
func TestShutdownAcknowledges(t *testing.T) {
	_, b, c, _, srv := replyWatchServer(t)
	if !c.StreamManagement() {
		t.Fatal("stream management not enabled")
	}
	for i := range 5 {
		c.SendRaw([]byte(msg("alice@a.test", "bob@b.test", fmt.Sprintf("m%d", i))))
	}
	for i := range 5 {
		if s := b.Expect(t, wait); s.ID != fmt.Sprintf("m%d", i) {
			t.Fatalf("got %s", s)
		}
	}
	go srv.Shutdown(context.Background())
	var got []string
	for {
		el, err := s2s.ReadNext(c)
		if err != nil {
			break
		}
		got = append(got, el.Local+" "+el.Attr("h"))
	}
	want := []string{"a 5", "error "}
	if !slices.Equal(got, want) {
		t.Fatalf("before the stream ended: %q, want %q", got, want)
	}
}

package route_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// recorder is a Handler that keeps what it gets.
type recorder struct {
	mu  sync.Mutex
	got []*route.Stanza
	err error
}

func (r *recorder) Deliver(_ context.Context, s *route.Stanza) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, s)
	return nil
}

func (r *recorder) take() []*route.Stanza {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.got
	r.got = nil
	return g
}

var _ route.Handler = (*route.Router)(nil)

func mustStanza(t *testing.T, raw string, o route.Origin) *route.Stanza {
	t.Helper()
	s, err := route.New([]byte(raw), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	s.Origin = o
	return s
}

func setup() (*route.Router, *recorder, *recorder, *recorder) {
	loc, rem, comp := &recorder{}, &recorder{}, &recorder{}
	r := &route.Router{Local: loc, Remote: rem}
	r.SetLocal("example.net")
	r.SetComponent("bot.example.net", comp)
	return r, loc, rem, comp
}

func TestRouting(t *testing.T) {
	tests := []struct {
		raw    string
		origin route.Origin
		want   string // "local", "remote", "component", or "bounce:<condition>", or "drop"
	}{
		0: {`<message from='a@remote.test' to='b@example.net'/>`, route.FromRemote, "local"},
		1: {`<message from='a@remote.test' to='x@bot.example.net'/>`, route.FromRemote, "component"},
		2: {`<message from='x@bot.example.net' to='a@remote.test'/>`, route.FromComponent, "remote"},
		// Never relayed; no bounce either, as it would come from a domain
		// that is not ours.
		3: {`<message from='a@remote.test' to='b@other.test'><body>relay?</body></message>`, route.FromRemote, "drop"},
		6: {`<message from='a@remote.test' to='b@example.net/res'/>`, route.FromRemote, "local"},
		4: {`<message from='a@remote.test' to='b@other.test' type='error'/>`, route.FromRemote, "drop"},
		5: {`<iq from='example.net' to='a@remote.test' type='result' id='1'/>`, route.FromLocal, "remote"},
	}
	for i, tc := range tests {
		r, loc, rem, comp := setup()
		s := mustStanza(t, tc.raw, tc.origin)
		r.Deliver(context.Background(), s)
		got := map[string][]*route.Stanza{"local": loc.take(), "remote": rem.take(), "component": comp.take()}
		switch {
		case strings.HasPrefix(tc.want, "bounce:"):
			// The bounce goes back to the remote sender.
			b := got["remote"]
			if len(b) != 1 {
				t.Fatalf("%d: want %s, got %v", i, tc.want, got)
			}
			if b[0].Type != "error" || !strings.Contains(string(b[0].El.Raw), strings.TrimPrefix(tc.want, "bounce:")) {
				t.Errorf("%d: want %s, got %v", i, tc.want, got)
			}
			if b[0].From.String() != s.To.String() || b[0].To.String() != s.From.String() {
				t.Errorf("%d: bounce addressed %s -> %s", i, b[0].From, b[0].To)
			}
		case tc.want == "drop":
			for k, v := range got {
				if len(v) > 0 {
					t.Errorf("%d: error stanza answered via %s", i, k)
				}
			}
		default:
			if len(got[tc.want]) != 1 || got[tc.want][0] != s {
				t.Errorf("%d: want %s, got %v", i, tc.want, got)
			}
		}
	}
}

// TestComponentDown: a component that is not connected bounces
// service-unavailable to the sender, with the original payload.
func TestComponentDown(t *testing.T) {
	r, _, rem, comp := setup()
	comp.err = route.ErrNotConnected
	r.Deliver(context.Background(), mustStanza(t, `<message from='a@remote.test/r' to='x@bot.example.net' id='m1'><body>hi</body></message>`, route.FromRemote))
	b := rem.take()
	if len(b) != 1 {
		t.Fatalf("got %d stanzas", len(b))
	}
	raw := string(b[0].El.Raw)
	for _, want := range []string{"type='error'", "id='m1'", "<body>hi</body>", "service-unavailable", "to='a@remote.test/r'", "from='x@bot.example.net'"} {
		if !strings.Contains(raw, want) {
			t.Errorf("bounce %s lacks %s", raw, want)
		}
	}
}

func TestHandlerStanzaError(t *testing.T) {
	r, loc, rem, _ := setup()
	loc.err = stanza.New(stanza.ItemNotFound, "no such node")
	r.Deliver(context.Background(), mustStanza(t, `<iq from='a@remote.test/r' to='example.net' type='get' id='q'><query xmlns='urn:x'/></iq>`, route.FromRemote))
	b := rem.take()
	if len(b) != 1 || !strings.Contains(string(b[0].El.Raw), "item-not-found") || !strings.Contains(string(b[0].El.Raw), "no such node") {
		t.Fatalf("got %v", b)
	}
}

func TestNewStanzaErrors(t *testing.T) {
	for i, raw := range []string{
		`<message to='a@b@c'/>`,
		`<message from='@x'/>`,
		`<foo/>`,
	} {
		el, err := xmlstream.ParseElement([]byte(raw), xmlstream.StreamContext{NS: xmlstream.NSServer})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := route.NewStanza(el, xmlstream.StreamContext{NS: xmlstream.NSServer}, route.FromRemote); err == nil {
			t.Errorf("%d: %s accepted", i, raw)
		}
	}
}

// TestStanzaAddresses: NewStanza's addresses, type and domains are those
// of the attributes, escaped or not; ToDomain and FromDomain follow To
// and From when a handler changes them; ParseJIDBytes agrees with
// ParseJID.
func TestStanzaAddresses(t *testing.T) {
	for i, tc := range []struct {
		raw, to, from, typ, toDom, fromDom string
		bad                                bool
	}{
		{`<message to='Juliet@Capulet.Example/Balcony' from='romeo@montague.example' type='chat' id='1'/>`,
			"juliet@capulet.example/Balcony", "romeo@montague.example", "chat", "capulet.example", "montague.example", false},
		{`<iq to='capulet.example' from='a&amp;b@montague.example' type='get' id='2'/>`,
			"", "", "", "", "", true}, // unescaped, '&' is forbidden in a localpart
		{`<presence to="x@[::1]" from="m&#x6F;ntague.example" type="unknown-type"/>`,
			"x@[::1]", "montague.example", "unknown-type", "[::1]", "montague.example", false},
		{`<message/>`, "", "", "", "", "", false},
	} {
		el, err := xmlstream.ParseElement([]byte(tc.raw), xmlstream.StreamContext{NS: xmlstream.NSServer})
		if err != nil {
			t.Fatal(err)
		}
		s, err := route.NewStanza(el, xmlstream.StreamContext{NS: xmlstream.NSServer}, route.FromRemote)
		if tc.bad {
			if err == nil {
				t.Errorf("%d: bad address accepted", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if s.To.String() != tc.to || s.From.String() != tc.from || s.Type != tc.typ {
			t.Errorf("%d: to %q from %q type %q", i, s.To, s.From, s.Type)
		}
		if s.ToDomain() != tc.toDom || s.FromDomain() != tc.fromDom {
			t.Errorf("%d: ToDomain %q FromDomain %q", i, s.ToDomain(), s.FromDomain())
		}
		for _, a := range []string{tc.to, tc.from} {
			if a == "" {
				continue
			}
			j1, err1 := route.ParseJID(a)
			j2, err2 := route.ParseJIDBytes([]byte(a))
			if err1 != nil || err2 != nil || !j1.Equal(j2) {
				t.Errorf("%d: %q: ParseJID %q (%v), ParseJIDBytes %q (%v)", i, a, j1, err1, j2, err2)
			}
		}
		// A handler that readdresses the stanza gets the new domains.
		s.To, _ = route.ParseJID("other@elsewhere.example")
		s.From, _ = route.ParseJID("montague.example.org")
		if s.ToDomain() != "elsewhere.example" || s.FromDomain() != "montague.example.org" {
			t.Errorf("%d: after a change: ToDomain %q FromDomain %q", i, s.ToDomain(), s.FromDomain())
		}
	}
	if _, err := route.ParseJIDBytes([]byte("a@b@c")); err == nil {
		t.Error("ParseJIDBytes accepted a@b@c")
	}
}

// TestNewStanzaAllocs: a stanza between addresses seen before allocates
// only the Stanza and its id (the element is the reader's).
func TestNewStanzaAllocs(t *testing.T) {
	ctx := xmlstream.StreamContext{NS: xmlstream.NSServer}
	el, err := xmlstream.ParseElement([]byte(`<message to='romeo@montague.example' from='juliet@capulet.example/balcony' type='chat' id='m1'><body>x</body></message>`), ctx)
	if err != nil {
		t.Fatal(err)
	}
	var s *route.Stanza
	var to, from string
	n := testing.AllocsPerRun(100, func() {
		s, _ = route.NewStanza(el, ctx, route.FromRemote)
		to, from = s.ToDomain(), s.FromDomain()
	})
	if to != "montague.example" || from != "capulet.example" {
		t.Fatalf("domains %q %q", to, from)
	}
	if n > 2 {
		t.Errorf("NewStanza: %v allocations, want at most 2", n)
	}
}

// counter counts the Router's decisions.
type counter struct {
	mu                       sync.Mutex
	routed, bounced, dropped int
}

func (c *counter) Routed(string, route.Origin, route.Origin) { c.mu.Lock(); c.routed++; c.mu.Unlock() }
func (c *counter) Bounced(stanza.Condition)                  { c.mu.Lock(); c.bounced++; c.mu.Unlock() }
func (c *counter) Dropped(string)                            { c.mu.Lock(); c.dropped++; c.mu.Unlock() }

// TestRouterConcurrentChanges: components come and go while stanzas are
// routed (go test -race): each stanza goes to the component or, when it
// is gone, is refused (a bounce, not sent when its domain is not ours to
// answer from at that moment); none goes anywhere else.
func TestRouterConcurrentChanges(t *testing.T) {
	r, loc, rem, comp := setup()
	cnt := &counter{}
	r.Counter = cnt
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			if i%2 == 0 {
				r.SetComponent("bot.example.net", nil)
			} else {
				r.SetComponent("bot.example.net", comp)
			}
			r.SetLocal("example.net")
		}
	}()
	for range 200 {
		r.Deliver(context.Background(), mustStanza(t, `<message from='a@remote.example' to='x@bot.example.net'/>`, route.FromRemote))
	}
	wg.Wait()
	got := len(comp.take())
	for _, s := range rem.take() {
		if !strings.Contains(string(s.El.Raw), "service-unavailable") {
			t.Fatalf("remote got %s", s.El.Raw)
		}
	}
	if n := len(loc.take()); n != 0 {
		t.Fatalf("local got %d", n)
	}
	// A bounce whose reply would come from a domain no longer ours is
	// counted bounced, then dropped.
	if got != cnt.routed || got+cnt.bounced != 200 || cnt.dropped > cnt.bounced {
		t.Fatalf("component got %d (routed %d), bounced %d, dropped %d, of 200", got, cnt.routed, cnt.bounced, cnt.dropped)
	}
	if l := r.Components(); len(l) != 1 || l[0] != "bot.example.net" {
		t.Fatalf("components %v", l)
	}
}

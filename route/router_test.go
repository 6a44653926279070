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

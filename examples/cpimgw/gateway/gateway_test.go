package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/s2sd/s2sd/cpim"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// recorder is a Sink that keeps what it is given and fails with err.
type recorder struct {
	objs []Object
	err  error
}

func (r *recorder) Put(_ context.Context, o Object) error {
	if r.err != nil {
		return r.err
	}
	r.objs = append(r.objs, o)
	return nil
}

func newGateway(t *testing.T, sink Sink) (*Gateway, *bytes.Buffer) {
	var log bytes.Buffer
	return &Gateway{Domain: "gw.test", Sink: sink, Logger: slog.New(slog.NewTextHandler(&log, nil))}, &log
}

func deliver(t *testing.T, g *Gateway, raw string) error {
	t.Helper()
	st, err := route.New([]byte(raw), cpim.NSComponent)
	if err != nil {
		t.Fatalf("bad stanza %s: %v", raw, err)
	}
	return g.Deliver(context.Background(), st)
}

func TestDeliverMessage(t *testing.T) {
	rec := &recorder{}
	g, _ := newGateway(t, rec)
	err := deliver(t, g, `<message from='romeo@remote.test/orchard' to='juliet@gw.test' type='chat' id='m1' xml:lang='en'><subject>Hello!</subject><subject xml:lang='cz'>Ahoj!</subject><body>Art thou not Romeo?
Speak.</body></message>`)
	if err != nil || len(rec.objs) != 1 {
		t.Fatalf("Deliver: %v, %d objects", err, len(rec.objs))
	}
	o := rec.objs[0]
	if o.MediaType != cpim.MediaType || o.Kind != "message" || o.From != "romeo@remote.test/orchard" || o.To != "juliet@gw.test" || o.ID != "m1" {
		t.Errorf("object %+v", o)
	}
	want := "From: <im:romeo@remote.test>\r\n" +
		"To: <im:juliet@gw.test>\r\n" +
		"Subject:;lang=en Hello!\r\n" +
		"Subject:;lang=cz Ahoj!\r\n" +
		"NS: XMPP <https://github.com/s2sd/s2sd/cpim/xmpp>\r\n" +
		"XMPP.Type: chat\r\n" +
		"XMPP.ID: m1\r\n" +
		"XMPP.Lang: en\r\n" +
		"XMPP.FromResource: orchard\r\n" +
		"\r\n" +
		"Content-type: text/plain; charset=utf-8\r\n" +
		"Content-Language: en\r\n" +
		"\r\n" +
		"Art thou not Romeo?\r\nSpeak."
	if string(o.Data) != want {
		t.Errorf("object:\n%s\nwant:\n%s", o.Data, want)
	}
	// And back: the same message, the inherited languages made explicit.
	g.Domain = "remote.test"
	ss, err := g.Stanzas(o.Data)
	if err != nil || len(ss) != 1 {
		t.Fatalf("Stanzas: %v", err)
	}
	back := `<message xmlns='jabber:component:accept' from='romeo@remote.test/orchard' to='juliet@gw.test' id='m1' type='chat' xml:lang='en'>` +
		`<subject xml:lang='en'>Hello!</subject><subject xml:lang='cz'>Ahoj!</subject><body xml:lang='en'>Art thou not Romeo?&#xA;Speak.</body></message>`
	if string(ss[0]) != back {
		t.Errorf("back:\n%s\nwant:\n%s", ss[0], back)
	}
}

func TestDeliverPresence(t *testing.T) {
	rec := &recorder{}
	g, _ := newGateway(t, rec)
	raw := `<presence from='romeo@remote.test/orchard' to='juliet@gw.test'><show>away</show><status>Climbing</status><priority>5</priority></presence>`
	if err := deliver(t, g, raw); err != nil || len(rec.objs) != 1 {
		t.Fatalf("Deliver: %v", err)
	}
	o := rec.objs[0]
	if o.MediaType != cpim.MediaTypePIDF || !strings.Contains(string(o.Data), "entity='pres:romeo@remote.test'") ||
		!strings.Contains(string(o.Data), "<note>Climbing</note>") || o.To != "juliet@gw.test" {
		t.Errorf("object %s %s", o.MediaType, o.Data)
	}

	// Wrapped in Message/CPIM, the recipient survives.
	g.PresenceAsCPIM = true
	if err := deliver(t, g, raw); err != nil || len(rec.objs) != 2 {
		t.Fatalf("Deliver: %v", err)
	}
	m, err := cpim.Parse(rec.objs[1].Data)
	if err != nil || rec.objs[1].MediaType != cpim.MediaType || m.ToURI != "im:juliet@gw.test" || !strings.HasPrefix(m.ContentType, cpim.MediaTypePIDF) {
		t.Errorf("wrapped: %v %+v", err, m)
	}
}

// A loss is accepted and logged by default, without message text; with
// AcceptLoss refusing it, the sender is told.
func TestDeliverLoss(t *testing.T) {
	rec := &recorder{}
	g, log := newGateway(t, rec)
	raw := `<presence from='romeo@remote.test/orchard' to='juliet@gw.test' id='p1'><status>Secret plans</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`
	if err := deliver(t, g, raw); err != nil || len(rec.objs) != 1 {
		t.Fatalf("Deliver: %v", err)
	}
	if l := log.String(); !strings.Contains(l, "mapped with loss") || !strings.Contains(l, "http://jabber.org/protocol/caps") || strings.Contains(l, "Secret plans") {
		t.Errorf("log: %s", l)
	}
	var asked []string
	g.AcceptLoss = func(kind string, lost []string) bool { asked = lost; return false }
	err := deliver(t, g, raw)
	if !errors.Is(err, stanza.New(stanza.NotAcceptable, "")) || len(rec.objs) != 1 || len(asked) == 0 {
		t.Errorf("refused loss: %v, lost %q", err, asked)
	}
}

func TestDeliverErrors(t *testing.T) {
	for i, tc := range []struct {
		raw     string
		sinkErr error
		want    stanza.Condition // "" means no answer
		put     int              // objects the sink receives
	}{
		0: {raw: `<iq from='r@remote.test/o' to='j@gw.test' type='get' id='1'><query xmlns='jabber:iq:version'/></iq>`, want: stanza.ServiceUnavailable},
		1: {raw: `<iq from='r@remote.test/o' to='j@gw.test' type='set' id='1'><query xmlns='jabber:iq:roster'/></iq>`, want: stanza.ServiceUnavailable},
		2: {raw: `<iq from='r@remote.test/o' to='j@gw.test' type='result' id='1'/>`},
		3: {raw: `<iq from='r@remote.test/o' to='j@gw.test' type='error' id='1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		4: {raw: `<message from='r@remote.test' to='j@gw.test'><body>x</body></message>`, sinkErr: errors.New("disk full"), want: stanza.ServiceUnavailable},
		5: {raw: `<message from='r@remote.test' to='j@gw.test'><body>x</body></message>`, sinkErr: context.DeadlineExceeded, want: stanza.RemoteServerTimeout},
		6: {raw: `<message from='r@remote.test' to='j@gw.test'><body>x</body></message>`, sinkErr: &HTTPError{StatusCode: 413, Status: "413 Request Entity Too Large"}, want: stanza.NotAcceptable},
		7: {raw: `<message from='r@remote.test' to='j@gw.test'><body>x</body></message>`, sinkErr: fmt.Errorf("wrapped: %w", stanza.New(stanza.ResourceConstraint, "quota")), want: stanza.ResourceConstraint},
		// An error message goes to the sink; a failing sink is not answered.
		8:  {raw: `<message from='r@remote.test' to='j@gw.test' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, put: 1},
		9:  {raw: `<message from='r@remote.test' to='j@gw.test' type='error'/>`, sinkErr: errors.New("down")},
		10: {raw: `<presence from='r@remote.test/o' to='j@gw.test' type='error'/>`},
		// Not mappable: a sender without a localpart, subscriptions, probes, e2e.
		11: {raw: `<message from='remote.test' to='j@gw.test'><body>x</body></message>`, want: stanza.NotAcceptable},
		12: {raw: `<presence from='r@remote.test' to='j@gw.test' type='subscribe'/>`, want: stanza.FeatureNotImplemented},
		13: {raw: `<presence from='r@remote.test' to='j@gw.test' type='probe'/>`, want: stanza.FeatureNotImplemented},
		14: {raw: `<message from='r@remote.test' to='j@gw.test'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>x</e2e></message>`, want: stanza.FeatureNotImplemented},
	} {
		rec := &recorder{err: tc.sinkErr}
		g, _ := newGateway(t, rec)
		err := deliver(t, g, tc.raw)
		var se *stanza.Error
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%d: answered %v", i, err)
		case tc.want != "" && (!errors.As(err, &se) || se.Condition != tc.want || se.By != "gw.test"):
			t.Errorf("%d: got %v, want %s by gw.test", i, err, tc.want)
		case tc.want != "" && se.Text == "":
			t.Errorf("%d: %s without text", i, se.Condition)
		}
		if len(rec.objs) != tc.put {
			t.Errorf("%d: sink got %d objects, want %d", i, len(rec.objs), tc.put)
		}
	}
	// No sink at all: nothing accepted, everything answered.
	g, _ := newGateway(t, nil)
	g.Sink = nil
	if err := deliver(t, g, `<message from='r@remote.test' to='j@gw.test'><body>x</body></message>`); !errors.Is(err, stanza.New(stanza.ServiceUnavailable, "")) {
		t.Errorf("no sink: %v", err)
	}
}

// The xml:lang of the stream header reaches the object.
func TestDeliverStreamLang(t *testing.T) {
	rec := &recorder{}
	g, _ := newGateway(t, rec)
	st, _ := route.New([]byte(`<message from='r@remote.test' to='j@gw.test'><subject>Hi</subject></message>`), cpim.NSComponent)
	st.Ctx.Lang = "fr"
	if err := g.Deliver(context.Background(), st); err != nil || len(rec.objs) != 1 {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec.objs[0].Data), "Subject:;lang=fr Hi\r\n") {
		t.Errorf("object:\n%s", rec.objs[0].Data)
	}
}

func TestStanzas(t *testing.T) {
	g, _ := newGateway(t, nil)
	obj := func(from, to, ct, body string, more ...string) []byte {
		s := "From: <" + from + ">\r\n"
		if to != "" {
			s += "To: <" + to + ">\r\n"
		}
		s += strings.Join(more, "") + "\r\nContent-type: " + ct + "\r\n\r\n" + body
		return []byte(s)
	}
	const pidf = `<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:juliet@gw.test'>` +
		`<tuple id='balcony'><status><basic>open</basic></status><note>Here</note></tuple>` +
		`<tuple id='chamber'><status><basic>closed</basic></status></tuple></presence>`
	for i, tc := range []struct {
		obj  []byte
		want []string
		err  string
	}{
		0: {obj: obj("im:juliet@gw.test", "im:romeo@remote.test", "text/plain; charset=utf-8", "hi"),
			want: []string{`<message xmlns='jabber:component:accept' from='juliet@gw.test' to='romeo@remote.test'><body>hi</body></message>`}},
		// With the MIME header of the Message/CPIM entity.
		1: {obj: append([]byte("Content-Type: Message/CPIM\r\n\r\n"), obj("im:juliet@gw.test", "im:romeo@remote.test", "text/plain; charset=utf-8", "hi")...),
			want: []string{`<message xmlns='jabber:component:accept' from='juliet@gw.test' to='romeo@remote.test'><body>hi</body></message>`}},
		// PIDF content: one presence per tuple, to the CPIM To.
		2: {obj: obj("im:juliet@gw.test", "im:romeo@remote.test", "application/pidf+xml", pidf),
			want: []string{
				`<presence xmlns='jabber:component:accept' from='juliet@gw.test/balcony' to='romeo@remote.test'><status>Here</status></presence>`,
				`<presence xmlns='jabber:component:accept' from='juliet@gw.test/chamber' to='romeo@remote.test' type='unavailable'/>`,
			}},
		// A loss is accepted.
		3: {obj: obj("im:juliet@gw.test", "im:romeo@remote.test", "text/plain; charset=utf-8", "hi", "DateTime: 2026-01-02T03:04:05Z\r\n"),
			want: []string{`<message xmlns='jabber:component:accept' from='juliet@gw.test' to='romeo@remote.test'><body>hi</body></message>`}},
		4: {obj: obj("im:juliet@elsewhere.test", "im:romeo@remote.test", "text/plain", "hi"), err: "not at the gateway's domain"},
		5: {obj: obj("im:juliet@sub.gw.test", "im:romeo@remote.test", "text/plain", "hi"), err: "not at the gateway's domain"},
		6: {obj: obj("im:juliet@gw.test", "", "text/plain", "hi"), err: "no To"},
		7: {obj: []byte("not cpim"), err: "syntax"},
		8: {obj: obj("im:juliet@gw.test", "im:romeo@remote.test", "application/pidf+xml", "<presence/>"), err: "not a PIDF document"},
	} {
		ss, err := g.Stanzas(tc.obj)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%d: %v, want an error containing %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		var got []string
		for _, s := range ss {
			got = append(got, string(s))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%d: got\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	g.AcceptLoss = func(string, []string) bool { return false }
	var un *cpim.UnmappedError
	if _, err := g.Stanzas(obj("im:juliet@gw.test", "im:romeo@remote.test", "text/plain", "hi", "DateTime: 2026-01-02T03:04:05Z\r\n")); !errors.As(err, &un) {
		t.Errorf("refused loss: %v", err)
	}
}

func TestSplitElements(t *testing.T) {
	ss, err := splitElements([]byte(`<a x='1'><b/></a><c>t</c>`))
	if err != nil || len(ss) != 2 || string(ss[0]) != `<a x='1'><b/></a>` || string(ss[1]) != `<c>t</c>` {
		t.Fatalf("%q %v", ss, err)
	}
}

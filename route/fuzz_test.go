package route_test

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// FuzzJID: addresses from the wire are parsed with the RFC 7622 profiles
// and IDNA;
// whatever parses re-encodes to a string that parses to the same JID, and
// whatever mellium.im/xmpp/jid.Parse accepts parses to the same value
// (unless its domainpart is one that ParseJID's own checks refuse).
func FuzzJID(f *testing.F) {
	for _, s := range []string{
		"juliet@example.com/balcony", "example.com", "Ἀχιλλεύς@example.com",
		"juliet@Bücher.example", "a@b@c", "@example.com", "x@[::1]", "x@127.0.0.1/r",
		"\u212Bngstr\u00F6m@example.com", "a@example.com/\u2167", "",
		// Issue 19: the Bidi Rule only for right-to-left strings.
		"2ème@example.fr", "1é@example.org", "1e@example.org", "2e\u0300me@example.fr/r",
		"שלום@example.org", "1שלום@example.org", "مرحبا1@example.org", "١٢٣@example.org",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := route.ParseJID(s)
		if mj, merr := jid.Parse(s); merr == nil && !errors.Is(err, route.ErrBadDomain) {
			if err != nil {
				t.Fatalf("%q: jid.Parse accepts it, ParseJID: %v", s, err)
			}
			if !j.Equal(mj) {
				t.Fatalf("%q: jid.Parse gives %q, ParseJID %q", s, mj, j)
			}
		}
		if err != nil {
			return
		}
		j2, err := route.ParseJID(j.String())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", s, j, err)
		}
		if !j.Equal(j2) {
			t.Fatalf("%q -> %q -> %q", s, j, j2)
		}
	})
}

// FuzzStanza: any element the stream reader accepts either becomes a
// stanza or is refused with an error; it never panics, and an error reply
// to it parses.
func FuzzStanza(f *testing.F) {
	for _, s := range []string{
		`<message from='a@b.test/r' to='c@d.test' id='1' type='chat'><body>x</body></message>`,
		`<iq from='b.test' to='d.test' type='get' id='2'><ping xmlns='urn:xmpp:ping'/></iq>`,
		`<presence from='a@b.test' to='c@d.test' xml:lang='en'/>`,
		`<message to='bad@@x'/>`,
	} {
		f.Add([]byte(s))
	}
	ctx := xmlstream.StreamContext{NS: xmlstream.NSServer}
	f.Fuzz(func(t *testing.T, raw []byte) {
		el, err := xmlstream.ParseElement(raw, ctx)
		if err != nil {
			return
		}
		s, err := route.NewStanza(el, ctx, route.FromRemote)
		if err != nil {
			return
		}
		_ = route.ErrorReply(s, stanza.New(stanza.ServiceUnavailable, ""))
	})
}

package stanza

import "testing"

// FuzzParseError: an <error/> from a peer never panics ParseError, and
// what it accepts writes back (AppendXML) to an element that parses the
// same, whatever the peer put in its attributes (an empty text, which is
// not written, loses its xml:lang).
func FuzzParseError(f *testing.F) {
	for _, s := range []string{
		`<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
		`<error type='wait' by='example.net'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>busy &amp; tired</text><too-many xmlns='urn:example:app'>3</too-many></error>`,
		`<error type="a'/&gt;&lt;x/&gt;" by='&apos;'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
		`<error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
		`<error type='modify'/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ParseError(raw)
		if err != nil {
			return
		}
		out := e.AppendXML(nil)
		back, err := ParseError(out)
		if err != nil {
			t.Fatalf("%s does not parse: %v", out, err)
		}
		if back.Type != e.typ() || back.By != e.By || back.Condition != e.Condition || back.Text != e.Text || e.Text != "" && back.Lang != e.Lang {
			t.Fatalf("%+v came back as %+v (%s)", e, back, out)
		}
	})
}

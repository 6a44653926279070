package stream

import "testing"

// FuzzParse: a stream error from a peer never panics Parse, and what Parse
// accepts writes back (AppendXML) to an element that parses the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
		`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'> [2001:db8::1]:5269 </see-other-host></stream:error>`,
		`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>bye &amp; thanks</text><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><app xmlns='urn:example'/></stream:error>`,
		`<stream:error><undefined/></stream:error>`,
		`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><!DOCTYPE x></stream:error>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Parse(raw)
		if err != nil {
			return
		}
		if !e.Remote || e.Condition == "" {
			t.Fatalf("parsed %+v", e)
		}
		out := e.AppendXML(nil)
		back, err := Parse(append([]byte("<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"), out[len("<stream:error>"):]...))
		if err != nil {
			t.Fatalf("%s does not parse: %v", out, err)
		}
		if back.Condition != e.Condition || back.Text != e.Text {
			t.Fatalf("%+v came back as %+v (%s)", e, back, out)
		}
	})
}

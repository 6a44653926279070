package s2s

import (
	"strings"
	"testing"

	"github.com/s2sd/s2sd/internal/xmlstream"
)

// peerCtx is the context of a stream from a peer: jabber:server, with the
// stream and dialback prefixes bound.
var peerCtx = xmlstream.StreamContext{NS: nsServer, Decls: []xmlstream.Decl{{Prefix: "stream", NS: xmlstream.NSStream}, {Prefix: "db", NS: nsDialback}}}

// FuzzDialback: a db:result or db:verify from a peer never panics parseDB,
// and what it reads writes back (appendDB) to an element that reads the
// same.
func FuzzDialback(f *testing.F) {
	for _, s := range []string{
		`<db:result from='a.example' to='b.example'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>`,
		`<db:verify from='a.example' to='b.example' id='417GAF25' type='valid'/>`,
		`<db:result from='a.example' to='b.example' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>`,
		`<db:result from='a&apos;b' to='&lt;'> key &amp; more </db:result>`,
		`<db:result xmlns:db='jabber:server:dialback' from='x'><error/></db:result>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		el, err := xmlstream.ParseElement(raw, peerCtx)
		if err != nil {
			return
		}
		d, err := parseDB(el)
		if err != nil {
			return
		}
		for _, v := range []string{d.From, d.To, d.ID, d.Type} {
			if strings.ContainsAny(v, "\t\n\r") {
				return // attribute values normalize these to spaces
			}
		}
		out := appendDB(nil, el.Local, d)
		el2, err := xmlstream.ParseElement(out, peerCtx)
		if err != nil {
			t.Fatalf("%s does not parse: %v", out, err)
		}
		back, err := parseDB(el2)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if d.ErrCond != "" {
			d.Key = "" // an error carries no key
		}
		if back != d {
			t.Fatalf("%+v came back as %+v (%s)", d, back, out)
		}
	})
}

// FuzzFeatures: stream features from a peer never panic parseFeatures.
func FuzzFeatures(f *testing.F) {
	for _, s := range []string{
		`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`,
		`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism><mechanism>PLAIN</mechanism></mechanisms><sm xmlns='urn:xmpp:sm:3'/></stream:features>`,
		`<stream:features/>`,
		`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism><x/>EXT</mechanism></mechanisms></stream:features>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		el, err := xmlstream.ParseElement(raw, peerCtx)
		if err != nil {
			return
		}
		ft, err := parseFeatures(el)
		if err != nil {
			return
		}
		if ft.StartTLSRequired && !ft.StartTLS {
			t.Fatalf("required STARTTLS without STARTTLS: %+v", ft)
		}
		if ft.Raw != string(el.Raw) {
			t.Fatalf("Raw %q, want %q", ft.Raw, el.Raw)
		}
	})
}

package cpim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedVectors adds every stored vector with one of the extensions.
func seedVectors(f *testing.F, exts ...string) {
	ents, err := os.ReadDir(vectorDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		for _, ext := range exts {
			if strings.HasSuffix(e.Name(), ext) {
				b, err := os.ReadFile(filepath.Join(vectorDir, e.Name()))
				if err != nil {
					f.Fatal(err)
				}
				switch ext {
				case ".hdr":
					b = append(crlf(b), textContent...)
				case ".content":
					b = append([]byte("\r\n"), crlf(b)...)
				}
				f.Add(b)
			}
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	seedVectors(f, ".cpim", ".hdr", ".content")
	f.Add([]byte(minimal))
	f.Add([]byte("Subject: \\uD83D\\uDE00 \\q\\\r\nNS: <urn:a>\r\nFrom: x\r\nX.y:;p=\"a b\";lang=en v\r\n\r\nContent-type: a/b\r\n c\r\n\r\n"))
	f.Add([]byte("Content-Type: Message/CPIM\n\nDateTime: 2001-02-02T10:48:54+00:00\n\nContent-type: text/plain\n\n\n"))
	// Issue 19: RFC 3339 forms, empty values, A-labels.
	f.Add([]byte("DateTime: 1990-12-31T15:59:60-08:00\r\n\r\nContent-type: text/plain\r\n\r\n"))
	f.Add([]byte("From: <im:juliet@xn--exmple-cua.example>\r\nTo: <im:romeo@exämple.example>\r\nDateTime: 2001-02-01t12:16:49.123456789123z\r\n\r\nContent-type: text/plain\r\nContent-ID:\r\n\r\n"))
	f.Add([]byte("Subject: \r\nSubject:;lang=fr \r\n\r\nContent-type: text/plain\r\n\r\n"))
	f.Add([]byte("NS: XMPP <" + NamespaceXMPP + ">\r\nXMPP.ExactBody: <body>a&#xD;</body>\r\n\r\nContent-type: text/plain\r\n\r\na\r\n"))
	p := Parser{MaxSize: 64 << 10, MaxHeaders: 64, MaxLineLength: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := p.Parse(b)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed message: %v\n%#v", err, m)
		}
		checkHeaderLines(t, out)
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v\n%q", err, out)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("re-encoded message differs:\n got %#v\nwant %#v", m2, m)
		}
		out2, err := m2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable: %q\n%q %v", out, out2, err)
		}
		// The mapping never panics on a parsed message.
		_, _ = m.Stanza(NSServer)
		_, _ = m.Presence(NSServer)
	})
}

func FuzzParsePIDF(f *testing.F) {
	seedVectors(f, ".pidf")
	f.Add([]byte(`<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'><tuple id='_x0041_'><status><basic>closed</basic></status><contact priority='0.5'>x</contact><note xml:lang=''>n</note></tuple></presence>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><presence/>`))
	f.Add([]byte(`<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:juliet@xn--exmple-cua.example'><tuple id='x_x0001F600_'><status><basic>open</basic></status><contact priority='1'>im:juliet@exämple.example</contact></tuple><tuple id='a_x3001_b'><status/></tuple></presence>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := PIDFToPresences(b, NSClient)
		var ue *UnmappedError
		if err != nil && !errors.As(err, &ue) {
			return
		}
		for _, s := range ss {
			pidf, err := PresenceToPIDF(s)
			if err != nil {
				t.Fatalf("presence %s from PIDF does not map back: %v", s, err)
			}
			again, err := PIDFToPresences(pidf, NSClient)
			if err != nil || len(again) != 1 || !bytes.Equal(again[0], s) {
				t.Fatalf("PIDF round trip: %s\n-> %s\n-> %q %v", s, pidf, again, err)
			}
		}
	})
}

func FuzzAddress(f *testing.F) {
	for _, s := range []string{
		"juliet@example.com", "romeo-montague@example.net/orchard", "o#27;malley@example.com",
		"at#26;t@example.com", "élise@example.com", "im:romeo%2Dmontague@example.net",
		"im:o%27malley@example.com", "im:%C3%A9lise@example.com", "pres:a%2326%3B@x", "example.com",
		// Issue 19: A-labels and U-labels; resources that are no XSD 1.0
		// NCName.
		"juliet@xn--exmple-cua.example", "im:juliet@exämple.example", "pres:a@XN--ZCA.de",
		"a@עברית.example/x😀", "x😀", "a、b", "a⁰", "_x0041_", "٣a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if j, err := IMToXMPP(s); err == nil {
			im, err := XMPPToIM(j)
			if err != nil {
				t.Fatalf("IMToXMPP(%q) = %q, which XMPPToIM rejects: %v", s, j, err)
			}
			if j2, err := IMToXMPP(im); err != nil || j2 != j {
				t.Fatalf("%q -> %q -> %q -> %q, %v", s, j, im, j2, err)
			}
		}
		if im, err := XMPPToPres(s); err == nil {
			if !isASCII(im) {
				t.Fatalf("XMPPToPres(%q) = %q, not ASCII", s, im)
			}
			j, err := PresToXMPP(im)
			if err != nil {
				t.Fatalf("XMPPToPres(%q) = %q, which PresToXMPP rejects: %v", s, im, err)
			}
			if im2, err := XMPPToPres(j); err != nil || im2 != im {
				t.Fatalf("%q -> %q -> %q -> %q, %v", s, im, j, im2, err)
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		id := TupleID(s)
		if r := TupleResource(id); r != s {
			t.Fatalf("tuple id of %q reads back as %q", s, r)
		}
		if !xsdNCName(id) {
			t.Fatalf("TupleID(%q) = %q is not an xs:ID", s, id)
		}
	})
}

// FuzzFromStanza: a message that maps to CPIM maps back to XMPP and again
// to the same CPIM object.
func FuzzFromStanza(f *testing.F) {
	seedVectors(f, ".xml")
	f.Add([]byte(`<message xmlns='jabber:client' from='a@b/c' to='d@e' id='x' type='chat' xml:lang='en'><subject xml:lang='cz'>s</subject><body>b</body><body xml:lang='de'>c</body><thread parent='p'>t</thread><x xmlns='urn:x' xmlns:y='urn:y' y:z='1'>q<r/></x></message>`))
	// Issue 19: empty parts, CR in bodies, A-labels.
	f.Add([]byte("<message xmlns='jabber:client' to='romeo@example.net'><body>line one&#xD;\nline two&#xD;</body></message>"))
	f.Add([]byte(`<message xmlns='jabber:client' from='juliet@xn--exmple-cua.example/b' type='' id=''><subject/><body></body><body xml:lang='fr'/><thread parent=''/></message>`))
	f.Add([]byte("<message xmlns='jabber:server'><body xml:lang='fr'>&#xD;a</body><body/><body>b<x xmlns='urn:x'/></body></message>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := FromStanza(b)
		var ue *UnmappedError
		if err != nil && !errors.As(err, &ue) {
			return
		}
		enc, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		checkHeaderLines(t, enc)
		s, err := m.Stanza(NSClient)
		if err != nil {
			t.Fatalf("Stanza: %v\n%s", err, enc)
		}
		m2, err := FromStanza(s)
		if err != nil {
			t.Fatalf("FromStanza(Stanza): %v\n%s", err, s)
		}
		enc2, _ := m2.Marshal()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("CPIM -> XMPP -> CPIM:\n%q\n%q\nstanza %s", enc, enc2, s)
		}
	})
}

// FuzzSubscription: whatever SubscriptionFromStanza accepts maps back to a
// stanza that reads as the same operation.
func FuzzSubscription(f *testing.F) {
	for _, s := range []string{
		`<presence xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net' type='subscribe' id='sub1'/>`,
		`<presence from='romeo@example.net' to='juliet@example.com' type='unsubscribed' id='u'/>`,
		`<presence from='o#27;malley@example.com' to='élise@example.com' type='unsubscribe' id='a&amp;b'/>`,
		`<presence from='romeo@example.net' to='juliet@example.com' type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, r, err := SubscriptionAnswer(b); err == nil {
			out, err := s.Answer(r, NSServer)
			if err != nil {
				t.Fatalf("%+v %v: %v", s, r, err)
			}
			if _, r2, err := SubscriptionAnswer(out); err != nil || r2 != r {
				t.Fatalf("answer %s read back as %v (%v)", out, r2, err)
			}
		}
		s, err := SubscriptionFromStanza(b)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNotMappable) && !errors.Is(err, ErrAddress) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := s.Stanza(NSServer)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		back, err := SubscriptionFromStanza(out)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if *back != *s {
			t.Fatalf("%+v came back as %+v", *s, *back)
		}
	})
}

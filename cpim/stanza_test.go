package cpim

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// XMPP -> CPIM -> XMPP keeps every field of a message.
func TestStanzaRoundTrip(t *testing.T) {
	for i, in := range []string{
		0: `<message xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net/orchard'><body>Wherefore art thou, Romeo?</body></message>`,
		1: `<message xmlns='jabber:server' from='juliet@example.com/balcony' to='romeo@example.net' id='abc-1' type='chat' xml:lang='en'>` +
			`<subject>Hi!</subject><subject xml:lang='cz'>Ahoj!</subject>` +
			`<body>line one` + "\n" + `line two</body><body xml:lang='cz'>Ahoj, Romeo</body>` +
			`<thread parent='p1'>t-42</thread>` +
			`<active xmlns='http://jabber.org/protocol/chatstates'/>` +
			`<x xmlns='jabber:x:oob' xmlns:foo='urn:foo' foo:attr='1'><url>http://example.com/a?b=1&amp;c=2</url></x>` +
			`</message>`,
		2: `<message xmlns='jabber:component:accept' from='o#27;malley@example.com' to='élise@example.com/Ré source' id='1@example.com' type='error'>` +
			`<body xml:lang='fr'>Où es-tu ?</body>` +
			`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		3: `<message xmlns='jabber:client' to='romeo@example.net'><thread>a</thread><subject> spaced </subject><thread>b</thread></message>`,
	} {
		ns := strings.Split(in, "'")[1]
		m, err := FromStanza([]byte(in))
		if err != nil {
			t.Fatalf("%d: FromStanza: %v", i, err)
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("%d: Marshal: %v", i, err)
		}
		m2, err := Parse(b)
		if err != nil {
			t.Fatalf("%d: Parse: %v\n%s", i, err, b)
		}
		out, err := m2.Stanza(ns)
		if err != nil {
			t.Fatalf("%d: Stanza: %v\n%s", i, err, b)
		}
		if got, want := canonXML(t, out, ""), canonXML(t, []byte(in), ""); got != want {
			t.Errorf("%d:\n got %s\nwant %s\nCPIM:\n%s", i, got, want, b)
		}
	}
}

// CPIM -> XMPP -> CPIM keeps every field RFC 3922 §4.2 maps.
func TestCPIMRoundTrip(t *testing.T) {
	for i, in := range []string{
		0: "From: <im:juliet@example.com>\r\nTo: <im:romeo@example.net>\r\nSubject: Imploring\r\n\r\n" +
			"Content-type: text/plain; charset=utf-8\r\nContent-ID: <1234567890@example.com>\r\n\r\nWherefore art thou, Romeo?",
		1: "From: <im:o%27malley@example.com>\r\nSubject:;lang=cz Ahoj!\r\nNS: XMPP <" + NamespaceXMPP + ">\r\n" +
			"XMPP.Type: chat\r\nXMPP.FromResource: pda\r\nXMPP.Thread: t1\r\n\r\n" +
			"Content-type: text/plain; charset=utf-8\r\nContent-Language: en\r\n\r\nline 1\r\nline 2",
	} {
		m, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.Stanza(NSClient)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		m2, err := FromStanza(s)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		b, _ := m2.Marshal()
		if string(b) != in {
			t.Errorf("%d:\n got %q\nwant %q\nstanza %s", i, b, in, s)
		}
	}
}

// What RFC 3922 does not map is named, not dropped.
func TestStanzaUnmapped(t *testing.T) {
	m, err := Parse(crlf(readVector(t, "c6-rfc3862-s5.1.cpim")))
	if err != nil {
		t.Fatal(err)
	}
	m.CC = []string{"<im:tigger@100akerwood.com>"}
	s, err := m.Stanza(NSServer)
	items := unmappedItems(t, err)
	containsAll(t, items, []string{
		"cc: <im:tigger@100akerwood.com>", "DateTime",
		"Require: MyFeatures.VitalMessageOption",
		"header MyFeatures.VitalMessageOption", "header MyFeatures.WackyMessageOption",
		"content text/xml; charset=utf-8",
	})
	// §4.2.9: other content types MUST NOT go into <body/>.
	if strings.Contains(string(s), "<body") || !strings.Contains(string(s), "<subject>the weather will be fine today</subject>") {
		t.Errorf("stanza %s", s)
	}

	// Charsets other than US-ASCII and UTF-8 are not mapped.
	m = &Message{ContentType: "text/plain; charset=iso-8859-1", Body: []byte("caf\xe9")}
	s, err = m.Stanza(NSClient)
	if items := unmappedItems(t, err); !slices.Contains(items, "content text/plain; charset=iso-8859-1") || strings.Contains(string(s), "body") {
		t.Errorf("latin-1: %s %q", s, items)
	}

	// Stanza parts FromStanza cannot carry.
	_, err = FromStanza([]byte(`<message xmlns='jabber:client' foo='bar' id=' x'>text</message>`))
	containsAll(t, unmappedItems(t, err), []string{"attribute foo", "text directly inside <message/>", `ID " x" (leading or trailing spaces)`})
}

func TestFromStanzaErrors(t *testing.T) {
	for i, tc := range []struct {
		in  string
		err error
	}{
		0: {`<presence xmlns='jabber:client'/>`, ErrSyntax},
		1: {`<message xmlns='urn:other'/>`, ErrSyntax},
		2: {`<message xmlns='jabber:client'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>x</e2e></message>`, ErrSecured},
		3: {`<!DOCTYPE message [<!ENTITY a 'b'>]><message xmlns='jabber:client'/>`, ErrSyntax},
		4: {`<message xmlns='jabber:client'>&a;</message>`, ErrSyntax},
		5: {`<message xmlns='jabber:client' from='@@'/>`, ErrAddress},
		6: {`<message xmlns='jabber:client' from='example.com'/>`, ErrAddress}, // no localpart for im:
		7: {strings.Repeat("<a>", maxXMLDepth+1), ErrTooLarge},
		8: {`<message xmlns='jabber:client'/><message xmlns='jabber:client'/>`, ErrSyntax},
		9: {`<?pi x?><message xmlns='jabber:client'/>`, ErrSyntax},
	} {
		if _, err := FromStanza([]byte(tc.in)); !errors.Is(err, tc.err) {
			t.Errorf("%d: error %v, want %v", i, err, tc.err)
		}
	}
	// A foreign XMPP.Extension cannot inject markup.
	m := &Message{
		NS:          []Namespace{{"XMPP", NamespaceXMPP}},
		Extensions:  []Header{{Name: "XMPP.Extension", Value: "<a/></message><message to='evil@example.com'><a/>"}},
		ContentType: "text/plain",
	}
	s, err := m.Stanza(NSClient)
	if len(unmappedItems(t, err)) != 1 || strings.Contains(string(s), "evil") {
		t.Errorf("injection: %s, %v", s, err)
	}
}

// roundTrip maps a stanza to Message/CPIM and back through the wire form,
// and fails t unless nothing was reported lost.
func roundTrip(t *testing.T, in string) (cpim []byte, out []byte) {
	t.Helper()
	m, err := FromStanza([]byte(in))
	if err != nil {
		t.Fatalf("FromStanza(%s): %v", in, err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	checkHeaderLines(t, b)
	m2, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v\n%q", err, b)
	}
	s, err := m2.Stanza(strings.Split(in, "'")[1])
	if err != nil {
		t.Fatalf("Stanza: %v\n%q", err, b)
	}
	return b, s
}

// Empty elements survive without empty header lines: they travel whole in
// XMPP.Extension; empty attributes are reported (issue 19, points 4 and 6).
func TestStanzaEmptyParts(t *testing.T) {
	for i, tc := range []struct {
		in string
		// want is the stanza that comes back, if not in.
		want string
		// ext: the XMPP.Extension values the CPIM object carries.
		ext []string
	}{
		// The inputs.
		0: {in: `<message xmlns='jabber:client' to='romeo@example.net'><subject/><body>hi</body></message>`,
			want: `<message xmlns='jabber:client' to='romeo@example.net'><body>hi</body><subject/></message>`,
			ext:  []string{"<subject/>"}},
		1: {in: `<message xmlns='jabber:client' to='romeo@example.net'><body>hi</body><body xml:lang='fr'/></message>`,
			ext: []string{"<body xml:lang='fr'/>"}},
		2: {in: `<message xmlns='jabber:client' to='romeo@example.net'><body></body></message>`,
			want: `<message xmlns='jabber:client' to='romeo@example.net'><body/></message>`,
			ext:  []string{"<body/>"}},
		// More of the same.
		3: {in: `<message xmlns='jabber:client' to='romeo@example.net'><body xml:lang='fr'/></message>`,
			ext: []string{"<body xml:lang='fr'/>"}},
		4: {in: `<message xmlns='jabber:server' to='romeo@example.net'><subject xml:lang='cz'></subject><body/><body xml:lang='de'>x</body><thread/></message>`,
			want: `<message xmlns='jabber:server' to='romeo@example.net'><body xml:lang='de'>x</body><subject xml:lang='cz'/><body/><thread/></message>`,
			ext:  []string{"<subject xml:lang='cz'/>", "<body/>", "<thread/>"}},
		5: {in: `<message xmlns='jabber:client' to='romeo@example.net'><thread parent=''>t</thread><body>a</body></message>`,
			want: `<message xmlns='jabber:client' to='romeo@example.net'><body>a</body><thread parent=''>t</thread></message>`,
			ext:  []string{"<thread parent=''>t</thread>"}},
		// A body with children stays whole, and no empty body is added.
		6: {in: `<message xmlns='jabber:client' to='romeo@example.net'><body>a<b xmlns='urn:x'/></body></message>`,
			ext: []string{"<body>a<b xmlns='urn:x'/></body>"}},
	} {
		b, out := roundTrip(t, tc.in)
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got := canonXML(t, out, ""); got != canonXML(t, []byte(want), "") {
			t.Errorf("%d:\n got %s\nwant %s\nCPIM %q", i, got, want, b)
		}
		m, _ := Parse(b)
		var ext []string
		for _, h := range m.Extensions {
			if h.Name == "XMPP.Extension" {
				ext = append(ext, h.Value)
			}
		}
		if !slices.Equal(ext, tc.ext) {
			t.Errorf("%d: XMPP.Extension %q, want %q", i, ext, tc.ext)
		}
	}

	// Empty attributes have no header and no element to travel in.
	m, err := FromStanza([]byte(`<message xmlns='jabber:client' to='romeo@example.net' type='' id='' xml:lang=''><body>hi</body></message>`))
	if items := unmappedItems(t, err); !slices.Equal(items, []string{`Type "" (empty)`, `ID "" (empty)`, `Lang "" (empty)`}) {
		t.Errorf("unmapped %q", items)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkHeaderLines(t, b)
}

// A body with CR characters comes back exactly: the text/plain content
// has canonical CRLF line ends, XMPP.ExactBody the exact text (issue 19,
// point 5).
func TestStanzaBodyCR(t *testing.T) {
	for i, tc := range []struct{ in, content, text string }{
		// The input.
		0: {"<message xmlns='jabber:client' to='romeo@example.net'><body>line one&#xD;\nline two&#xD;</body></message>",
			"line one\r\nline two\r\n", "line one\r\nline two\r"},
		1: {"<message xmlns='jabber:server' to='romeo@example.net'><body xml:lang='fr'>&#xD;&#xD;\n a&#xD;b </body><body xml:lang='de'>c&#xD;</body></message>",
			"\r\n\r\n a\r\nb ", "\r\r\n a\rb "},
		// Without CR, the content is enough.
		2: {"<message xmlns='jabber:client' to='romeo@example.net'><body>line one\nline two\n</body></message>",
			"line one\r\nline two\r\n", "line one\nline two\n"},
	} {
		m, err := FromStanza([]byte(tc.in))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if string(m.Body) != tc.content {
			t.Errorf("%d: content %q, want %q", i, m.Body, tc.content)
		}
		hasExact := slices.ContainsFunc(m.Extensions, func(h Header) bool { return h.Name == "XMPP.ExactBody" })
		if hasExact != strings.Contains(tc.text, "\r") {
			t.Errorf("%d: XMPP.ExactBody present: %v", i, hasExact)
		}
		b, out := roundTrip(t, tc.in)
		if got, want := canonXML(t, out, ""), canonXML(t, []byte(tc.in), ""); got != want {
			t.Errorf("%d:\n got %s\nwant %s\nCPIM %q", i, got, want, b)
		}
		n, err := parseXML(out)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := n.elems()[0].text(); got != tc.text {
			t.Errorf("%d: body %q, want %q", i, got, tc.text)
		}
	}

	// XMPP.ExactBody stands only for the content it was written with.
	m, err := FromStanza([]byte("<message xmlns='jabber:client'><body>a&#xD;</body></message>"))
	if err != nil {
		t.Fatal(err)
	}
	m.Body = []byte("changed")
	s, err := m.Stanza(NSClient)
	if items := unmappedItems(t, err); !slices.Equal(items, []string{"header XMPP.ExactBody (does not match the content)"}) || !strings.Contains(string(s), "<body>changed</body>") {
		t.Errorf("changed content: %s, %q", s, items)
	}
}

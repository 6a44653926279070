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

package cpim

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Every priority 0..127 survives XMPP -> PIDF -> XMPP; the RFC's sample
// values come out as printed (RFC 3922 §5.1.7).
func TestPriority(t *testing.T) {
	for p := 0; p <= 127; p++ {
		q, ok := PriorityToQ(p)
		if !ok {
			t.Fatalf("PriorityToQ(%d) not ok", p)
		}
		if back, ok := QToPriority(q); !ok || back != p {
			t.Errorf("priority %d -> %q -> %d, %v", p, q, back, ok)
		}
	}
	for p, q := range map[int]string{0: "0", 1: "0.007", 2: "0.015", 13: "0.102", 126: "0.992", 127: "1"} {
		if got, _ := PriorityToQ(p); got != q {
			t.Errorf("PriorityToQ(%d) = %q, want %q", p, got, q)
		}
	}
	if _, ok := PriorityToQ(-1); ok {
		t.Error("negative priority mapped")
	}
	for i, tc := range []struct {
		q  string
		p  int
		ok bool
	}{
		0: {"0.5", 64, true}, 1: {"1.000", 127, true}, 2: {"0.", 0, true}, 3: {"0.001", 1, true},
		4: {"1.5", 0, false}, 5: {"0.1234", 0, false}, 6: {"-0.1", 0, false}, 7: {"", 0, false}, 8: {"0.x", 0, false},
	} {
		if p, ok := QToPriority(tc.q); p != tc.p || ok != tc.ok {
			t.Errorf("%d: QToPriority(%q) = %d, %v", i, tc.q, p, ok)
		}
	}
}

func TestTupleID(t *testing.T) {
	for i, tc := range []struct{ res, id string }{
		0: {"balcony", "balcony"},
		1: {"", "_"},
		2: {"_hidden", "_x005F_hidden"},
		3: {"1st", "_x0031_st"},
		4: {"my phone", "my_x0020_phone"},
		5: {"a/b@c:d", "a_x002F_b_x0040_c_x003A_d"},
		6: {"a_xb", "a_x005F_xb"},
		7: {"a_b", "a_b"},
		// XML Schema 1.0 NCNames take their letters from XML 1.0 fourth
		// edition Appendix B: emoji, U+3001 and superscripts are not
		// letters there (issue 19).
		8:  {"😀\U000F0000", "_x0001F600__x000F0000_"},
		9:  {"Résumé-2.0", "Résumé-2.0"},
		10: {"x😀", "x_x0001F600_"},
		11: {"a、b", "a_x3001_b"},
		12: {"a⁰", "a_x2070_"},
		13: {"中文·ー", "中文·ー"},   // Ideographic, Extender U+00B7 and U+30FC
		14: {"٣a", "_x0663_a"}, // a Digit cannot lead
		15: {"é\u0301", "é\u0301"},
		16: {"\u0301", "_x0301_"}, // nor can a CombiningChar
		17: {"ǅ", "_x01C5_"},      // titlecase, not a BaseChar
	} {
		if got := TupleID(tc.res); got != tc.id {
			t.Errorf("%d: TupleID(%q) = %q, want %q", i, tc.res, got, tc.id)
		}
		if got := TupleResource(tc.id); got != tc.res {
			t.Errorf("%d: TupleResource(%q) = %q, want %q", i, tc.id, got, tc.res)
		}
		if !xsdNCName(tc.id) {
			t.Errorf("%d: TupleID(%q) = %q is not an xs:ID", i, tc.res, tc.id)
		}
	}
	// Foreign ids with stray "_x" are read literally.
	if got := TupleResource("a_xZZ_"); got != "a_xZZ_" {
		t.Errorf("TupleResource(a_xZZ_) = %q", got)
	}
}

// XMPP -> PIDF -> XMPP keeps every field of a presence notification.
func TestPresenceRoundTrip(t *testing.T) {
	for i, in := range []string{
		0: `<presence xmlns='jabber:client' from='juliet@example.com/balcony'/>`,
		1: `<presence xmlns='jabber:server' from='juliet@example.com/my phone #1' type='unavailable'><status>bye</status></presence>`,
		2: `<presence xmlns='jabber:client' from='o#27;malley@example.com/_x'><show>xa</show><status xml:lang='en'>out</status><status xml:lang='de'>weg</status><priority>127</priority></presence>`,
		3: `<presence xmlns='jabber:client' from='juliet@example.com'><show>chat</show><priority>0</priority></presence>`,
	} {
		ns := strings.Split(in, "'")[1]
		pidf, err := PresenceToPIDF([]byte(in))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		out, err := PIDFToPresence(pidf, ns)
		if err != nil {
			t.Fatalf("%d: %v\n%s", i, err, pidf)
		}
		if got, want := canonXML(t, out, ""), canonXML(t, []byte(in), ""); got != want {
			t.Errorf("%d:\n got %s\nwant %s\nPIDF %s", i, got, want, pidf)
		}
	}
}

func TestPresenceUnmapped(t *testing.T) {
	in := `<presence xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net' id='p1'>` +
		`<show>away</show><priority>-5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`
	pidf, err := PresenceToPIDF([]byte(in))
	containsAll(t, unmappedItems(t, err), []string{`id "p1"`, "negative priority -5", "extension {http://jabber.org/protocol/caps}c"})
	if !strings.Contains(string(pidf), "<im:im>away</im:im>") || strings.Contains(string(pidf), "contact") {
		t.Errorf("PIDF %s", pidf)
	}

	for i, tc := range []struct {
		in  string
		err error
	}{
		0: {`<presence xmlns='jabber:client' from='a@b/c' type='subscribe'/>`, ErrNotMappable},
		1: {`<presence xmlns='jabber:client' type='unavailable'/>`, ErrNotMappable},
		2: {`<presence xmlns='jabber:client' from='a@b'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></presence>`, ErrSecured},
		3: {`<message xmlns='jabber:client' from='a@b'/>`, ErrSyntax},
	} {
		if _, err := PresenceToPIDF([]byte(tc.in)); !errors.Is(err, tc.err) {
			t.Errorf("%d: error %v, want %v", i, err, tc.err)
		}
	}

	// PIDF parts without an XMPP counterpart.
	doc := `<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:im='urn:ietf:params:xml:ns:pidf:im' entity='pres:romeo@example.net'>` +
		`<tuple id='orchard'><status><basic>open</basic><im:im>on-the-phone</im:im></status><contact priority='0.5'>tel:+1555</contact></tuple>` +
		`<tuple id='a b'><status/></tuple><note>general</note><x xmlns='urn:x'/></presence>`
	ss, err := PIDFToPresences([]byte(doc), NSClient)
	items := unmappedItems(t, err)
	containsAll(t, items, []string{"presence note", "extension {urn:x}x", `tuple orchard: im "on-the-phone"`,
		`tuple orchard: contact "tel:+1555"`, "tuple a b: no basic status (mapped as open)"})
	if len(ss) != 2 || !strings.Contains(string(ss[0]), "<priority>64</priority>") || !strings.Contains(string(ss[1]), "from='romeo@example.net/a b'") {
		t.Errorf("stanzas %q", ss)
	}
	for i, bad := range []string{
		0: `<presence xmlns='urn:other' entity='pres:a@b'/>`,
		1: `<presence xmlns='urn:ietf:params:xml:ns:pidf'/>`,
		2: `<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'><tuple id='x'><status><basic>maybe</basic></status></tuple></presence>`,
		3: `<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'><tuple><status/></tuple></presence>`,
	} {
		if _, err := PIDFToPresence([]byte(bad), NSClient); !errors.Is(err, ErrSyntax) {
			t.Errorf("%d: error %v, want ErrSyntax", i, err)
		}
	}
}

// RFC 3922 §5.1/§5.2 with the Message/CPIM carrier.
func TestPresenceMessage(t *testing.T) {
	in := `<presence xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net/orchard'><show>away</show></presence>`
	m, err := PresenceMessage([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.FromURI != "im:juliet@example.com" || m.ToURI != "im:romeo@example.net" || m.ContentType != "application/pidf+xml; charset=utf-8" {
		t.Fatalf("got %#v", m)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m2.Presence(NSClient)
	if err != nil {
		t.Fatal(err)
	}
	want := `<presence xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net'><show>away</show></presence>`
	if canonXML(t, out, "") != canonXML(t, []byte(want), "") {
		t.Errorf("got %s", out)
	}
	m2.ContentType = "text/plain"
	if _, err := m2.Presence(NSClient); !errors.Is(err, ErrNotMappable) {
		t.Errorf("text content: %v", err)
	}
	m2.ContentType = MediaTypePIDF
	m2.DateTime = mustTime("2003-12-09T23:53:11.31Z")
	_, err = m2.Presence(NSClient)
	if !slices.Contains(unmappedItems(t, err), "DateTime") {
		t.Errorf("DateTime not reported: %v", err)
	}
}

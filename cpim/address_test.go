package cpim

import (
	"errors"
	"strings"
	"testing"
)

// The (derived) address table of the digest, B.1, and more.
func TestAddressMapping(t *testing.T) {
	for i, tc := range []struct {
		jid, im, back string
	}{
		0: {"juliet@example.com", "im:juliet@example.com", "juliet@example.com"},
		1: {"romeo-montague@example.net", "im:romeo%2Dmontague@example.net", "romeo-montague@example.net"},
		2: {"o#27;malley@example.com", "im:o%27malley@example.com", "o#27;malley@example.com"},
		3: {"at#26;t@example.com", "im:at%26t@example.com", "at#26;t@example.com"},
		4: {"élise@example.com", "im:%C3%A9lise@example.com", "élise@example.com"},
		5: {"juliet@example.com/balcony", "im:juliet@example.com", "juliet@example.com"},
		6: {"a#2f;b@example.com", "im:a%2Fb@example.com", "a#2f;b@example.com"},
		7: {"Juliet@Example.COM", "im:juliet@example.com", "juliet@example.com"},
		8: {"x!$*.?_~+=@example.com", "im:x!$*.?_~+=@example.com", "x!$*.?_~+=@example.com"},
	} {
		im, err := XMPPToIM(tc.jid)
		if err != nil || im != tc.im {
			t.Errorf("%d: XMPPToIM(%q) = %q, %v; want %q", i, tc.jid, im, err, tc.im)
		}
		back, err := IMToXMPP(tc.im)
		if err != nil || back != tc.back {
			t.Errorf("%d: IMToXMPP(%q) = %q, %v; want %q", i, tc.im, back, err, tc.back)
		}
		pres, err := XMPPToPres(tc.jid)
		if err != nil || pres != "pres:"+tc.im[3:] {
			t.Errorf("%d: XMPPToPres(%q) = %q, %v", i, tc.jid, pres, err)
		}
		if back, err := PresToXMPP(pres); err != nil || back != tc.back {
			t.Errorf("%d: PresToXMPP(%q) = %q, %v", i, pres, back, err)
		}
	}
	// Decoding is case-insensitive; the scheme too.
	if j, err := IMToXMPP("IM:o%27Malley@example.com"); err != nil || j != "o#27;malley@example.com" {
		t.Errorf("IMToXMPP lower hex = %q, %v", j, err)
	}
	for i, bad := range []string{
		0: "example.com", // no localpart
		1: "@example.com",
		2: "juliet@",
		3: "a\"b@example.com",
	} {
		if _, err := XMPPToIM(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("%d: XMPPToIM(%q) error %v", i, bad, err)
		}
	}
	for i, bad := range []string{
		0: "pres:juliet@example.com", // wrong scheme
		1: "im:example.com",
		2: "im:%zzjuliet@example.com",
		3: "im:%C3@example.com",   // not UTF-8
		4: "im:a%3Cb@example.com", // '<' cannot be in a localpart
		5: "im:juliet@",
		6: "im:juliet%4",
		7: "im:romeo@example.net/orchard", // a path: IMToXMPP gives bare JIDs
		8: "im:romeo@example.net?x",
	} {
		if _, err := IMToXMPP(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("%d: IMToXMPP(%q) error %v", i, bad, err)
		}
	}
}

// Domains go into im: and pres: URIs as A-labels, whichever form the JID
// was written in; reading takes either and gives the JID's U-labels
// (issue 19).
func TestAddressALabels(t *testing.T) {
	const (
		aLabel = "juliet@xn--exmple-cua.example"
		uLabel = "juliet@exämple.example"
	)
	for i, j := range []string{aLabel, uLabel, "Juliet@EXÄMPLE.example/balcony", "juliet@XN--EXMPLE-CUA.example."} {
		if im, err := XMPPToIM(j); err != nil || im != "im:"+aLabel {
			t.Errorf("%d: XMPPToIM(%q) = %q, %v; want %q", i, j, im, err, "im:"+aLabel)
		}
		if pres, err := XMPPToPres(j); err != nil || pres != "pres:"+aLabel {
			t.Errorf("%d: XMPPToPres(%q) = %q, %v; want %q", i, j, pres, err, "pres:"+aLabel)
		}
	}
	for i, uri := range []string{"im:" + aLabel, "im:" + uLabel, "IM:juliet@XN--EXMPLE-CUA.example"} {
		if j, err := IMToXMPP(uri); err != nil || j != uLabel {
			t.Errorf("%d: IMToXMPP(%q) = %q, %v; want %q", i, uri, j, err, uLabel)
		}
	}
	if j, err := PresToXMPP("pres:" + aLabel); err != nil || j != uLabel {
		t.Errorf("PresToXMPP = %q, %v", j, err)
	}
	// Other domains: mixed labels, a deviation character (IDNA2008, not
	// transitional), right-to-left labels, IP literals.
	for i, tc := range []struct{ jid, im string }{
		0: {"élise@bücher.example.com", "im:%C3%A9lise@xn--bcher-kva.example.com"},
		1: {"a@ß.de", "im:a@xn--zca.de"},
		2: {"a@עברית.example", "im:a@xn--5dbqzzl.example"},
		3: {"a@[::1]", "im:a@[::1]"},
		4: {"a@192.0.2.1", "im:a@192.0.2.1"},
	} {
		im, err := XMPPToIM(tc.jid)
		if err != nil || im != tc.im {
			t.Errorf("%d: XMPPToIM(%q) = %q, %v; want %q", i, tc.jid, im, err, tc.im)
		}
		if j, err := IMToXMPP(im); err != nil || j != tc.jid {
			t.Errorf("%d: IMToXMPP(%q) = %q, %v; want %q", i, im, j, err, tc.jid)
		}
	}
	// An xn-- label that is no A-label.
	for i, bad := range []string{"im:a@xn--a.example", "im:a@xn--abc-.example"} {
		if j, err := IMToXMPP(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("%d: IMToXMPP(%q) = %q, %v; want ErrAddress", i, bad, j, err)
		}
	}

	// Every URI the package writes: From, To and cc... of messages,
	// the PIDF entity and contact, subscriptions.
	m, err := FromStanza([]byte(`<message xmlns='jabber:client' from='` + aLabel + `/balcony' to='romeo@mönchengladbach.example'><body>hi</body></message>`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	if want := "From: <im:" + aLabel + ">\r\nTo: <im:romeo@xn--mnchengladbach-vpb.example>\r\n"; !strings.HasPrefix(head, want) {
		t.Errorf("FromStanza headers %q, want prefix %q", head, want)
	}
	if !isASCII(head) {
		t.Errorf("header block is not ASCII: %q", head)
	}
	s, err := m.Stanza(NSClient)
	if err != nil || !strings.Contains(string(s), `from='`+uLabel+`/balcony' to='romeo@mönchengladbach.example'`) {
		t.Errorf("Stanza = %s, %v", s, err)
	}

	pm, err := PresenceMessage([]byte(`<presence xmlns='jabber:client' from='` + uLabel + `/balcony' to='romeo@xn--mnchengladbach-vpb.example'><priority>1</priority></presence>`))
	if err != nil {
		t.Fatal(err)
	}
	if pm.FromURI != "im:"+aLabel || pm.ToURI != "im:romeo@xn--mnchengladbach-vpb.example" {
		t.Errorf("PresenceMessage From %q To %q", pm.FromURI, pm.ToURI)
	}
	pidf := string(pm.Body)
	if !strings.Contains(pidf, "entity='pres:"+aLabel+"'") || !strings.Contains(pidf, ">im:"+aLabel+"</contact>") || !isASCII(pidf) {
		t.Errorf("PIDF %s", pidf)
	}
	back, err := pm.Presence(NSClient)
	if err != nil || !strings.Contains(string(back), "from='"+uLabel+"/balcony'") || !strings.Contains(string(back), "<priority>1</priority>") {
		t.Errorf("Presence = %s, %v", back, err)
	}
	// A contact with the entity's domain in U-labels is the entity's too.
	u := strings.Replace(pidf, ">im:"+aLabel+"<", ">im:"+uLabel+"<", 1)
	if ss, err := PIDFToPresences([]byte(u), NSClient); err != nil || len(ss) != 1 {
		t.Errorf("U-label contact: %q, %v", ss, err)
	}

	sub, err := SubscriptionFromStanza([]byte(`<presence xmlns='jabber:client' from='` + uLabel + `' to='romeo@mönchengladbach.example' type='subscribe'/>`))
	if err != nil || sub.Watcher != "pres:"+aLabel || sub.Target != "pres:romeo@xn--mnchengladbach-vpb.example" {
		t.Errorf("SubscriptionFromStanza = %+v, %v", sub, err)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestNonASCIILocalpart: a localpart with a left-to-right non-ASCII
// letter after a digit is an address (RFC 8265 applies the Bidi Rule only
// to right-to-left strings), both ways.
func TestNonASCIILocalpart(t *testing.T) {
	for _, j := range []string{"2ème@example.fr", "1é@example.org"} {
		uri, err := XMPPToIM(j)
		if err != nil {
			t.Fatalf("XMPPToIM(%q): %v", j, err)
		}
		back, err := IMToXMPP(uri)
		if err != nil || back != j {
			t.Errorf("IMToXMPP(%q) = %q, %v; want %q", uri, back, err, j)
		}
	}
}

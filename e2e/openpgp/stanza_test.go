package openpgp

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

func TestSignPresenceNamespaces(t *testing.T) {
	c := config(t, "alice.sec.asc")
	tests := []string{
		`<presence xmlns='jabber:client'><status>Online</status></presence>`,
		`<presence xmlns="jabber:server" from="a@example.com/r" to="b@example.net"><show>away</show><status xml:lang="en">Online</status><status xml:lang="de">Da</status></presence>`,
		`<presence xmlns='jabber:component:accept' from='svc.example.com'><status>Online</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
		`<presence><status>Online</status></presence>`,
		`<c:presence xmlns:c='jabber:client'><c:status>Online</c:status></c:presence>`,
		`<?xml version='1.0'?><presence><status><![CDATA[Online]]></status></presence>`,
		"\n  <presence>\n  <status>Online</status>\n</presence>\n",
	}
	for i, in := range tests {
		out, err := c.SignPresence([]byte(in))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		// Only the <x/> was added before the end tag.
		end := strings.LastIndex(in, "</")
		xEnd := strings.LastIndex(string(out), "</")
		if string(out[:end]) != in[:end] || string(out[xEnd:]) != in[end:] ||
			!strings.HasPrefix(string(out[end:]), "<x xmlns='jabber:x:signed'>") {
			t.Errorf("case %d: %s", i, out)
		}
		sig, err := c.VerifyPresence(out)
		if err != nil || sig.Signer.Fingerprint != aliceFP {
			t.Errorf("case %d: VerifyPresence: %v", i, err)
		}
		// The signature covers "Online": it verifies with the string API.
		var x struct {
			X string `xml:"jabber:x:signed x"`
		}
		if err := xml.Unmarshal(out, &x); err != nil {
			t.Fatal(err)
		}
		if _, err := c.VerifyStatus("Online", x.X); err != nil {
			t.Errorf("case %d: VerifyStatus(Online): %v", i, err)
		}
	}
}

func TestSignPresenceShapes(t *testing.T) {
	c := config(t, "alice.sec.asc")
	// Self-closing: signed over the empty string.
	out, err := c.SignPresence([]byte(`<presence to='b@example.net'/>`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), `<presence to='b@example.net'><x xmlns='jabber:x:signed'>`) || !strings.HasSuffix(string(out), `</x></presence>`) {
		t.Errorf("self-closing: %s", out)
	}
	if _, err := c.VerifyPresence(out); err != nil {
		t.Errorf("self-closing: %v", err)
	}
	// Signing again replaces the old signature.
	again, err := c.SignPresence(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(again), NSSigned) != 1 {
		t.Errorf("re-signed: %s", again)
	}
	// Changing the status breaks the signature.
	signed, _ := c.SignPresence([]byte(`<presence><status>Online</status></presence>`))
	tampered := strings.Replace(string(signed), "Online", "Offline", 1)
	if _, err := c.VerifyPresence([]byte(tampered)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
	// Removing it too: the signature was over "Online", not "".
	removed := strings.Replace(string(signed), "<status>Online</status>", "", 1)
	if _, err := c.VerifyPresence([]byte(removed)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("status removed: %v", err)
	}
	if _, err := c.VerifyPresence([]byte(`<presence><status>Online</status></presence>`)); !errors.Is(err, ErrNotSigned) {
		t.Errorf("unsigned: %v", err)
	}
}

// TestXMLRoundTrip: status texts survive a server that parses the stanza
// and writes it again with another encoder (encoding/xml here).
func TestXMLRoundTrip(t *testing.T) {
	c := config(t, "alice.sec.asc")
	type stanza struct {
		XMLName xml.Name `xml:"jabber:client presence"`
		Status  string   `xml:"status"`
		X       *struct {
			XMLName xml.Name `xml:"jabber:x:signed x"`
			Text    string   `xml:",chardata"`
		}
	}
	for i, text := range statusTexts {
		for _, raw := range []bool{true, false} {
			var in string
			if raw {
				// As a client writes it: CR and LF as they are.
				in = "<presence xmlns='jabber:client'><status>" +
					strings.NewReplacer("&", "&amp;", "<", "&lt;").Replace(text) + "</status></presence>"
			} else {
				b, err := xml.Marshal(stanza{Status: text})
				if err != nil {
					t.Fatal(err)
				}
				in = string(b)
			}
			out, err := c.SignPresence([]byte(in))
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			var s stanza
			if err := xml.Unmarshal(out, &s); err != nil || s.X == nil {
				t.Fatalf("case %d: %s: %v", i, out, err)
			}
			again, err := xml.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.VerifyPresence(again); err != nil {
				t.Errorf("case %d raw=%v %q: after re-marshalling: %v\n%s", i, raw, text, err, again)
			}
			// And with the string API, over what the parser returned.
			if _, err := c.VerifyStatus(s.Status, s.X.Text); err != nil {
				t.Errorf("case %d raw=%v: VerifyStatus: %v", i, raw, err)
			}
		}
		// SignStatus output put raw into XML verifies after parsing.
		wire := mustSign(t, c, text)
		seen := xmlRoundTrip(t, text)
		if _, err := c.VerifyStatus(seen, wire); err != nil {
			t.Errorf("case %d: SignStatus then XML: %v", i, err)
		}
	}
}

func TestEncryptMessage(t *testing.T) {
	c := config(t, "alice.sec.asc")
	alice := c.Keys.Keys()[0]
	in := `<message xmlns='jabber:client' to='alice@example.com' type='chat' id='m1'>` +
		`<subject>Hi</subject>` +
		`<body>Meet me &lt;here&gt; &amp; now
at five</body>` +
		`<body xml:lang='de'>Triff mich</body>` +
		`<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>Meet me</p></body></html>` +
		`<thread>t1</thread></message>`
	out, err := c.EncryptMessage([]byte(in), alice)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.HasPrefix(s, `<message xmlns='jabber:client' to='alice@example.com' type='chat' id='m1'><subject>Hi</subject><body>This message is encrypted.</body><x xmlns='jabber:x:encrypted'>`) ||
		!strings.HasSuffix(s, `</x><thread>t1</thread></message>`) || strings.Contains(s, "Meet") || strings.Contains(s, "Triff") {
		t.Errorf("encrypted stanza: %s", s)
	}
	dec, m, err := c.DecryptMessage(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `<message xmlns='jabber:client' to='alice@example.com' type='chat' id='m1'><subject>Hi</subject><body>Meet me &lt;here&gt; &amp; now
at five</body><thread>t1</thread></message>`
	if string(dec) != want || m.Body != "Meet me <here> & now\nat five" {
		t.Errorf("decrypted stanza:\n%s\nwant\n%s", dec, want)
	}
	if _, _, err := c.DecryptMessage(dec); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("plain message: %v", err)
	}
	if _, err := c.EncryptMessage(out, alice); !errors.Is(err, ErrStanza) {
		t.Errorf("already encrypted: %v", err)
	}
	if _, err := c.EncryptMessage([]byte(`<message><subject>x</subject></message>`), alice); !errors.Is(err, ErrStanza) {
		t.Errorf("no body: %v", err)
	}
	if _, err := c.EncryptMessage([]byte(`<message><body>x</body></message>`)); !errors.Is(err, ErrNoKey) {
		t.Errorf("no recipient: %v", err)
	}

	// Prefixed stanza, custom fallback.
	c.FallbackBody = "Encrypted <OpenPGP>"
	out, err = c.EncryptMessage([]byte(`<j:message xmlns:j='jabber:server'><j:body>secret</j:body></j:message>`), alice)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), `<j:message xmlns:j='jabber:server'><j:body>Encrypted &lt;OpenPGP&gt;</j:body><x xmlns='jabber:x:encrypted'>`) {
		t.Errorf("prefixed: %s", out)
	}
	var parsed struct {
		XMLName xml.Name `xml:"jabber:server message"`
		Body    string   `xml:"jabber:server body"`
	}
	if err := xml.Unmarshal(out, &parsed); err != nil || parsed.Body != "Encrypted <OpenPGP>" {
		t.Errorf("prefixed fallback body: %+v, %v", parsed, err)
	}
	dec, _, err = c.DecryptMessage(out)
	if err != nil || string(dec) != `<j:message xmlns:j='jabber:server'><j:body>secret</j:body></j:message>` {
		t.Errorf("prefixed decrypted: %s, %v", dec, err)
	}
}

func TestParseRejects(t *testing.T) {
	c := config(t, "alice.sec.asc")
	c.MaxStanzaSize = 4096
	tests := map[string]string{
		"DTD":            `<!DOCTYPE presence [<!ENTITY x "y">]><presence><status>&x;</status></presence>`,
		"entity":         `<presence><status>&x;</status></presence>`,
		"comment":        `<presence><!-- hi --><status>Online</status></presence>`,
		"PI":             `<presence><?php echo 1 ?><status>Online</status></presence>`,
		"late decl":      ` <presence/><?xml version='1.0'?>`,
		"wrong kind":     `<message><status>Online</status></message>`,
		"wrong ns":       `<presence xmlns='urn:example'><status>Online</status></presence>`,
		"two roots":      `<presence/><presence/>`,
		"text outside":   `<presence/>junk`,
		"truncated":      `<presence><status>Online</status>`,
		"mismatched":     `<presence><status>Online</show></presence>`,
		"status child":   `<presence><status>On<b>line</b></status><x xmlns='jabber:x:signed'>AAAA</x></presence>`,
		"not UTF-8":      "<presence><status>\xff</status></presence>",
		"latin-1 decl":   `<?xml version='1.0' encoding='ISO-8859-1'?><presence/>`,
		"too deep":       "<presence>" + strings.Repeat("<a>", maxDepth) + strings.Repeat("</a>", maxDepth) + "</presence>",
		"too large":      "<presence><status>" + strings.Repeat("x", 5000) + "</status></presence>",
		"empty":          ``,
		"control char":   "<presence><status>\x01</status></presence>",
		"two signatures": `<presence><x xmlns='jabber:x:signed'>AAAA</x><x xmlns='jabber:x:signed'>AAAA</x></presence>`,
		"nested x":       `<presence><x xmlns='jabber:x:signed'><y/></x></presence>`,
	}
	for name, in := range tests {
		_, err := c.VerifyPresence([]byte(in))
		if !errors.Is(err, ErrStanza) {
			t.Errorf("%s: VerifyPresence = %v, want ErrStanza", name, err)
		}
		if _, err := c.SignPresence([]byte(in)); err == nil && name != "two signatures" && name != "nested x" {
			t.Errorf("%s: SignPresence accepted it", name)
		}
	}
	if _, err := c.VerifyPresence([]byte("<presence><status>" + strings.Repeat("x", 5000) + "</status></presence>")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large is not ErrTooLarge: %v", err)
	}
	// A signed stanza that grows past the limit.
	small := &Config{Keys: c.Keys, MaxStanzaSize: 200, Time: c.Time}
	if _, err := small.SignPresence([]byte("<presence><status>" + strings.Repeat("x", 150) + "</status></presence>")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("output too large: %v", err)
	}
}

func TestEscapeText(t *testing.T) {
	got := escapeText("a<b>&c\r\n\t\x00\uFFFE\U0001F389")
	want := "a&lt;b&gt;&amp;c&#xD;\n\t\uFFFD\uFFFD\U0001F389"
	if got != want {
		t.Errorf("escapeText = %q, want %q", got, want)
	}
}

func BenchmarkSignPresence(b *testing.B) {
	c := config(b, "alice.sec.asc")
	in := []byte(`<presence xmlns='jabber:client' from='alice@example.com/pda'><show>away</show><status>Out to lunch</status></presence>`)
	for b.Loop() {
		if _, err := c.SignPresence(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPresence(b *testing.B) {
	c := config(b, "alice.sec.asc")
	in, err := c.SignPresence([]byte(`<presence xmlns='jabber:client' from='alice@example.com/pda'><show>away</show><status>Out to lunch</status></presence>`))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.VerifyPresence(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptMessage(b *testing.B) {
	c := config(b, "alice.sec.asc")
	in, err := c.EncryptMessage([]byte(`<message xmlns='jabber:client' to='alice@example.com'><body>Wherefore art thou?</body></message>`), c.Keys.Keys()[0])
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := c.DecryptMessage(in); err != nil {
			b.Fatal(err)
		}
	}
}

package smime

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseMediaType(t *testing.T) {
	for i, tc := range []struct {
		in, mt, boundary, protocol string
	}{
		0: {`multipart/signed; boundary=next; micalg=sha1; protocol=application/pkcs7-signature`, "multipart/signed", "next", "application/pkcs7-signature"},
		1: {`multipart/signed; protocol="application/x-pkcs7-signature"; micalg="sha-256"; boundary="----ABC"`, "multipart/signed", "----ABC", "application/x-pkcs7-signature"},
		2: {`Multipart/Signed;boundary=next;PROTOCOL=application/pkcs7-signature`, "multipart/signed", "next", "application/pkcs7-signature"},
		3: {`Message/CPIM`, "message/cpim", "", ""},
		4: {`no slash`, "", "", ""},
	} {
		mt, params := parseMediaType(tc.in)
		if mt != tc.mt || params["boundary"] != tc.boundary || params["protocol"] != tc.protocol {
			t.Errorf("%d: %q %q", i, mt, params)
		}
	}
}

// TestParseEntityRFCExample2: the folded, unquoted Content-Type of RFC 3923
// Example 2 and its first body part, byte for byte, in LF, CRLF and
// OpenSSL's mixed form (digest A.12 items 5 to 7).
func TestParseEntityRFCExample2(t *testing.T) {
	const example = "Content-Type: multipart/signed; boundary=next;\n" +
		"              micalg=sha1;\n" +
		"              protocol=application/pkcs7-signature\n" +
		"\n" +
		"--next\n" +
		"Content-type: Message/CPIM\n" +
		"\n" +
		"From: Juliet Capulet <im:juliet@example.com>\n" +
		"\n" +
		"Content-type: text/plain; charset=utf-8\n" +
		"\n" +
		"Wherefore art thou, Romeo?\n" +
		"--next\n" +
		"Content-Type: application/pkcs7-signature\n" +
		"Content-Disposition: attachment;handling=required;filename=smime.p7s\n" +
		"\n" +
		"MIIB\n" +
		"\n" +
		"--next--\n"
	wantPart := "Content-type: Message/CPIM\n\nFrom: Juliet Capulet <im:juliet@example.com>\n\nContent-type: text/plain; charset=utf-8\n\nWherefore art thou, Romeo?"
	crlf := strings.ReplaceAll(example, "\n", "\r\n")
	// OpenSSL: outer header and delimiters LF, the signed part CRLF.
	mixed := strings.Replace(example, wantPart, strings.ReplaceAll(wantPart, "\n", "\r\n"), 1)
	for name, in := range map[string]string{"lf": example, "crlf": crlf, "mixed": mixed} {
		e, err := parseEntity([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.mediaType != typeSigned || e.params["protocol"] != typePKCS7Sig || e.params["micalg"] != "sha1" {
			t.Errorf("%s: %q %q", name, e.mediaType, e.params)
		}
		signed, sig, err := splitSigned(e)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := string(canonical(signed)); got != strings.ReplaceAll(wantPart, "\n", "\r\n") {
			t.Errorf("%s: first part %q", name, signed)
		}
		if !bytes.Equal(sig, []byte{0x30, 0x82, 0x01}) {
			t.Errorf("%s: signature % x", name, sig)
		}
	}
}

func TestFirstPartErrors(t *testing.T) {
	for i, body := range []string{
		"",
		"no delimiter\n",
		"--b\n",
		"--b\nonly one part\n",
		"--bb\nwrong boundary\n--bb--\n",
	} {
		if p, err := firstPart([]byte(body), "b"); err == nil {
			t.Errorf("%d: firstPart = %q", i, p)
		}
	}
	// A boundary that is a prefix of a line is not a delimiter.
	p, err := firstPart([]byte("--b\nx\n--bc\ny\n--b--\n"), "b")
	if err != nil || string(p) != "x\n--bc\ny" {
		t.Errorf("firstPart = %q, %v", p, err)
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb":       "a\r\nb",
		"a\r\nb":     "a\r\nb",
		"a\rb\n":     "a\r\nb\r\n",
		"\n\r\n\r":   "\r\n\r\n\r\n",
		"no newline": "no newline",
	} {
		if got := string(canonical([]byte(in))); got != want {
			t.Errorf("canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCDATAEnd: "]]>" in the protected object is split across CDATA
// sections and comes back whole (digest A.12 item 3).
func TestCDATAEnd(t *testing.T) {
	juliet, romeo, _ := pair(t)
	in := strings.Replace(msgStanza, "Wherefore art thou, Romeo?", "a]]&gt;b", 1)
	b, err := juliet.Sign([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("]]]]><![CDATA[>")) {
		t.Fatalf("no split CDATA in %s", b)
	}
	o, err := romeo.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(o.Stanza, []byte("<body>a]]&gt;b</body>")) {
		t.Errorf("Stanza %s", o.Stanza)
	}
}

func TestReadTLV(t *testing.T) {
	for i, in := range [][]byte{
		{},
		{0x30},
		{0x30, 0x05, 0x01},
		{0x30, 0x80, 0x04, 0x01, 0x00},       // no end-of-contents
		{0x04, 0x80, 0x00, 0x00},             // primitive with indefinite length
		{0x30, 0x85, 1, 2, 3, 4, 5},          // length of five octets
		{0x1f, 0xff, 0xff, 0xff, 0xff, 0xff}, // endless tag
	} {
		if _, _, err := readTLV(in, 0); err == nil {
			t.Errorf("%d: readTLV(% x) succeeded", i, in)
		}
	}
	deep := append(bytes.Repeat([]byte{0x30, 0x80}, maxBERDepth+2), bytes.Repeat([]byte{0, 0}, maxBERDepth+2)...)
	if _, err := contentType(deep); err == nil {
		t.Error("contentType of deep BER succeeded")
	}
	deepDER := []byte{0x05, 0x00}
	for i := 0; i < maxBERDepth+2; i++ {
		deepDER = append([]byte{0x30, byte(len(deepDER))}, deepDER...)
		if len(deepDER) > 120 {
			break
		}
	}
	if _, err := contentType(deepDER); err == nil {
		t.Error("contentType of deep DER succeeded")
	}
}

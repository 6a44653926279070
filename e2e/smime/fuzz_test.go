package smime

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/s2sd/s2sd/e2e"
)

// FuzzOpen feeds stanzas to Open, and the same bytes as the content of an
// <e2e/> element, past the XML layer. Nothing may panic; every failure is
// an *e2e.Error (or a plain error for bad XML) whose stanza error parses
// back to the same condition.
func FuzzOpen(f *testing.F) {
	p := testPKI(f)
	juliet, romeo := p.agent(p.juliet), p.agent(p.romeo)
	for _, stanza := range []string{msgStanza, presStanza, iqStanza} {
		for _, opts := range []SealOptions{
			{Sign: true},
			{Recipients: []*x509.Certificate{p.romeo.cert}},
			{Sign: true, Recipients: []*x509.Certificate{p.romeo.cert}},
		} {
			b, err := juliet.Seal([]byte(stanza), opts)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			f.Add(e2eText(f, b))
		}
	}
	for _, c := range []Cipher{AES192CBC, AES128GCM, AES256GCM} {
		gcm := p.agent(p.juliet)
		gcm.Cipher = c
		b, err := gcm.Seal([]byte(msgStanza), SealOptions{Sign: true, Recipients: []*x509.Certificate{p.romeo.cert}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(e2eText(f, b))
	}
	for _, name := range []string{"rfc3923-example3.xml", "rfc3923-example6.xml", "rfc3923-example12.xml"} {
		b, err := os.ReadFile("../../testdata/smime/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("<message><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>MIAGCSqGSIb3DQEHA6CAMIACAQA=</e2e></message>"))
	f.Add([]byte("Content-Type: multipart/signed; boundary=b; protocol=application/pkcs7-signature\n\n--b\n\n--b\n\n--b--"))
	f.Add([]byte("Content-Type: application/pkcs7-mime\n\nMIAGCSqGSIb3DQEHAqCAMIACAQExADCABgkqhkiG9w0BBwGggAQEaGVsbG8AAAAAAAAAAAAA"))

	start, err := parseStanza([]byte("<message from='juliet@example.com/balcony' to='romeo@example.net'/>"))
	if err != nil {
		f.Fatal(err)
	}
	check := func(t *testing.T, o *Opened, err error) {
		if err == nil {
			if o == nil || o.Stanza == nil {
				t.Fatal("Open returned neither result nor error")
			}
			return
		}
		var ee *e2e.Error
		if !errors.As(err, &ee) {
			return
		}
		back, perr := e2e.ParseError(ee.StanzaError())
		if perr != nil || back.Condition != ee.Condition || back.E2E != ee.E2E || back.Type != ee.Type {
			t.Fatalf("StanzaError %s parses to %+v, %v", ee.StanzaError(), back, perr)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := romeo.Open(b)
		check(t, o, err)
		if err != nil {
			ErrorReply(b, err)
		}
		s := *start
		s.hasE2E, s.e2eText = true, b
		o, err = romeo.open(&s, romeo.now())
		check(t, o, err)
	})
}

// FuzzEnvelope feeds DER and BER to the EnvelopedData and
// AuthEnvelopedData reader. Nothing may panic; what parses re-encodes, and
// the DER it re-encodes to parses to the same value and re-encodes to the
// same bytes; opening it with romeo's key yields content or an error.
func FuzzEnvelope(f *testing.F) {
	p := testPKI(f)
	for _, c := range allCiphers {
		der := sealed(f, c, nil, p.romeo.cert)
		f.Add(der)
		f.Add(toBER(f, der))
		f.Add(der[:len(der)/2])
	}
	for _, c := range []Cipher{AES128GCM, AES256GCM} {
		der := sealed(f, c, testAuthAttrs(f), p.juliet.cert, p.romeo.cert)
		f.Add(der)
		f.Add(toBER(f, der))
	}
	f.Add(libraryEncrypt(f, pkcs7.EncryptionAlgorithmAES128GCM, p.romeo.cert))
	f.Add(libraryEncrypt(f, pkcs7.EncryptionAlgorithmDESCBC, p.romeo.cert))
	// OpenSSL's streamed start, a key agreement recipient, a constructed
	// OCTET STRING, an empty AuthEnvelopedData.
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x30, 0x1d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x10, 0x30, 0x0e, 0x02, 0x01, 0x02, 0x31, 0x04, 0xa1, 0x02, 0x05, 0x00, 0x30, 0x03, 0x06, 0x01, 0x00})
	f.Add([]byte{0x24, 0x80, 0x04, 0x01, 0x61, 0x24, 0x80, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x30, 0x11, 0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17, 0xa0, 0x02, 0x30, 0x00})

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEnvelope(b)
		if err != nil {
			return
		}
		der, err := e.marshal()
		if err != nil {
			t.Fatalf("parsed but does not re-encode: %v", err)
		}
		e2, err := parseEnvelope(der)
		if err != nil {
			t.Fatalf("re-encoding does not parse: %v\n% x", err, der)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoding parses to another value:\n%+v\n%+v", e, e2)
		}
		if der2, err := e2.marshal(); err != nil || !bytes.Equal(der, der2) {
			t.Fatalf("re-encoding is not stable (%v)", err)
		}
		plain, err := e.open(p.romeo.cert, p.romeo.key)
		if err == nil && plain == nil {
			t.Fatal("open returned neither content nor error")
		}
	})
}

package smime

import (
	"crypto/x509"
	"errors"
	"os"
	"testing"

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

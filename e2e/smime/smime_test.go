package smime

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/s2sd/s2sd/cpim"
	"github.com/s2sd/s2sd/e2e"
)

const (
	msgStanza  = `<message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat' id='m1'><body>Wherefore art thou, Romeo?</body></message>`
	presStanza = `<presence from='juliet@example.com/balcony' to='romeo@example.net/orchard'><show>away</show><status>retired to the chamber</status></presence>`
	iqStanza   = `<iq type='result' from='juliet@example.com/balcony' to='romeo@example.net/orchard' id='evil1'><query xmlns='jabber:iq:version'><name>Stabber</name><version>666</version><os>FiendOS</os></query><evil xmlns='http://jabber.org/protocol/evil'/></iq>`
)

// clock is a settable clock for Agent.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// pair returns juliet (sender) and romeo (receiver) agents sharing a clock.
func pair(t *testing.T) (juliet, romeo *Agent, c *clock) {
	p := testPKI(t)
	c = &clock{t: time.Now()}
	juliet, romeo = p.agent(p.juliet), p.agent(p.romeo)
	juliet.Now, romeo.Now = c.now, c.now
	return juliet, romeo, c
}

// e2eText returns the character data of a secured stanza's <e2e/>, as an
// XML parser delivers it.
func e2eText(t testing.TB, stanza []byte) []byte {
	t.Helper()
	s, err := parseStanza(stanza)
	if err != nil {
		t.Fatal(err)
	}
	if !s.hasE2E {
		t.Fatalf("no <e2e/> in %s", stanza)
	}
	return s.e2eText
}

// wrap puts entity in an <e2e/> of a stanza with the given start tag.
func wrap(start string, entity []byte) []byte {
	s, err := parseStanza([]byte(start + "</" + tagName([]byte(start)) + ">"))
	if err != nil {
		panic(err)
	}
	return s.secured(entity)
}

func TestSealOpen(t *testing.T) {
	p := testPKI(t)
	for _, tc := range []struct {
		name    string
		stanza  string
		form    Form
		sign    bool
		encrypt bool
		cipher  Cipher
		ctype   string
	}{
		{name: "message signed", stanza: msgStanza, sign: true, ctype: typeCPIM},
		{name: "message encrypted", stanza: msgStanza, encrypt: true, ctype: typeCPIM},
		{name: "message signed encrypted", stanza: msgStanza, sign: true, encrypt: true, ctype: typeCPIM},
		{name: "message aes256", stanza: msgStanza, sign: true, encrypt: true, cipher: AES256CBC, ctype: typeCPIM},
		{name: "presence signed", stanza: presStanza, sign: true, ctype: typePIDF},
		{name: "presence signed encrypted", stanza: presStanza, sign: true, encrypt: true, ctype: typePIDF},
		{name: "iq signed", stanza: iqStanza, sign: true, ctype: typeCPIM},
		{name: "iq encrypted", stanza: iqStanza, encrypt: true, ctype: typeCPIM},
		{name: "iq signed encrypted aes256", stanza: iqStanza, sign: true, encrypt: true, cipher: AES256CBC, ctype: typeCPIM},
		{name: "message whole stanza", stanza: msgStanza, form: FormStanza, sign: true, encrypt: true, ctype: typeCPIM},
		{name: "presence whole stanza", stanza: presStanza, form: FormStanza, sign: true, ctype: typeCPIM},
		{name: "message aes-128-gcm", stanza: msgStanza, sign: true, encrypt: true, cipher: AES128GCM, ctype: typeCPIM},
		{name: "presence aes-256-gcm", stanza: presStanza, encrypt: true, cipher: AES256GCM, ctype: typePIDF},
		{name: "iq signed aes-256-gcm", stanza: iqStanza, sign: true, encrypt: true, cipher: AES256GCM, ctype: typeCPIM},
		{name: "iq aes-192-cbc", stanza: iqStanza, encrypt: true, cipher: AES192CBC, ctype: typeCPIM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			juliet, romeo, c := pair(t)
			juliet.Cipher = tc.cipher
			opts := SealOptions{Sign: tc.sign, Form: tc.form}
			if tc.encrypt {
				opts.Recipients = []*x509.Certificate{p.romeo.cert}
			}
			sealed, err := juliet.Seal([]byte(tc.stanza), opts)
			if err != nil {
				t.Fatal(err)
			}
			// The start tag is kept; the children are replaced by <e2e/>.
			start := tc.stanza[:strings.IndexByte(tc.stanza, '>')+1]
			if !bytes.HasPrefix(sealed, []byte(start+"<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'><![CDATA[")) {
				t.Errorf("sealed stanza starts %.120q", sealed)
			}
			text := e2eText(t, sealed)
			switch {
			case tc.encrypt:
				if !bytes.HasPrefix(text, []byte("Content-Type: application/pkcs7-mime; smime-type="+tc.cipher.smimeType()+";")) {
					t.Errorf("encrypted entity starts %.80q", text)
				}
			case tc.sign:
				if !bytes.HasPrefix(text, []byte("Content-Type: multipart/signed; boundary=")) ||
					!bytes.Contains(text, []byte(`micalg=sha-256; protocol="application/pkcs7-signature"`)) {
					t.Errorf("signed entity starts %.160q", text)
				}
			}
			o, err := romeo.Open(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if o.Signed != tc.sign || o.Encrypted != tc.encrypt {
				t.Errorf("Signed, Encrypted = %v, %v; want %v, %v", o.Signed, o.Encrypted, tc.sign, tc.encrypt)
			}
			if tc.sign {
				if o.Signer != "juliet@example.com" || len(o.KeyID) != 64 || len(o.Chain) == 0 || !o.Chain[0].Equal(p.juliet.cert) {
					t.Errorf("Signer %q, KeyID %q, chain of %d", o.Signer, o.KeyID, len(o.Chain))
				}
			} else if o.Signer != "" || o.Chain != nil {
				t.Errorf("unsigned: Signer %q, chain of %d", o.Signer, len(o.Chain))
			}
			if o.ContentType != tc.ctype {
				t.Errorf("ContentType %q, want %q", o.ContentType, tc.ctype)
			}
			if !o.Time.Equal(c.t.UTC().Truncate(time.Millisecond)) || o.Time.Location() != time.UTC {
				t.Errorf("Time %v, clock %v", o.Time, c.t)
			}
			if tc.stanza == iqStanza || tc.form == FormStanza {
				if string(o.Stanza) != tc.stanza {
					t.Errorf("Stanza\n got %s\nwant %s", o.Stanza, tc.stanza)
				}
			} else if !bytes.HasPrefix(o.Stanza, []byte(start)) {
				t.Errorf("Stanza %s", o.Stanza)
			}
			if tc.stanza == msgStanza && tc.form == FormAuto && !bytes.Contains(o.Stanza, []byte("<body>Wherefore art thou, Romeo?</body>")) {
				t.Errorf("Stanza %s has lost the body", o.Stanza)
			}
			if tc.stanza == presStanza && tc.form == FormAuto && !bytes.Contains(o.Stanza, []byte("retired to the chamber")) {
				t.Errorf("Stanza %s has lost the status", o.Stanza)
			}
		})
	}
}

// TestSignedLineEnds: the signed part verifies whether the receiver sees
// it with CRLF (a gateway that strips the XML wrapper, RFC 3923 §8) or with
// LF (after XML parsing, digest A.12 item 1).
func TestSignedLineEnds(t *testing.T) {
	juliet, romeo, c := pair(t)
	sealed, err := juliet.Sign([]byte(iqStanza))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := parseStanza(sealed)
	crlf := []byte(strings.Replace(string(sealed), string(s.e2eText), "", 1))
	if !bytes.Contains(sealed, []byte("\r\n")) || bytes.Contains(s.e2eText, []byte("\r")) {
		t.Fatal("expected CRLF on the wire and LF after parsing")
	}
	_ = crlf
	if _, err := romeo.Open(sealed); err != nil {
		t.Fatal(err)
	}
	// The same entity, pre-normalised to LF by hand.
	c.t = c.t.Add(time.Second)
	sealed, _ = juliet.Sign([]byte(iqStanza))
	lf := bytes.ReplaceAll(sealed, []byte("\r\n"), []byte("\n"))
	if _, err := romeo.Open(lf); err != nil {
		t.Fatal(err)
	}
}

// signEntity signs a MIME entity as juliet and wraps it in a stanza.
func signEntity(t *testing.T, a *Agent, start string, obj []byte) []byte {
	t.Helper()
	ent, err := parseEntity(obj)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := buildSigned(ent, "sha-256", func(b []byte) ([]byte, error) {
		return signDetached(b, a.Certificate, a.Intermediates, a.PrivateKey, a.hash())
	})
	if err != nil {
		t.Fatal(err)
	}
	return wrap(start, signed)
}

// cpimObject returns a Message/CPIM entity holding stanza as
// application/xmpp+xml, from juliet, at time ts.
func cpimObject(t *testing.T, from string, ts time.Time, stanza string) []byte {
	t.Helper()
	s, err := parseStanza([]byte(stanza))
	if err != nil {
		t.Fatal(err)
	}
	m := &cpim.Message{FromURI: from, ToURI: "im:romeo@example.net", DateTime: ts, ContentType: typeXMPP, Body: s.xmppDocument()}
	b, err := m.MarshalMIME()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenErrors(t *testing.T) {
	p := testPKI(t)
	start := "<iq type='result' from='juliet@example.com/balcony' to='romeo@example.net/orchard' id='evil1'>"
	readFile := func(name string) []byte {
		b, err := os.ReadFile("../../testdata/smime/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		make  func(juliet, romeo *Agent, c *clock) []byte
		kind  *e2e.Error
		cause error
	}{{
		name: "tampered content",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			b, _ := juliet.Sign([]byte(iqStanza))
			return bytes.Replace(b, []byte("FiendOS"), []byte("FiendOZ"), 1)
		},
		kind: e2e.ErrSignatureUnverified,
	}, {
		name: "tampered header",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			b, _ := juliet.Sign([]byte(iqStanza))
			return bytes.Replace(b, []byte("To: <im:romeo@example.net>"), []byte("To: <im:tybalt@example.net>"), 1)
		},
		kind: e2e.ErrSignatureUnverified,
	}, {
		name: "signature removed",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			b, _ := juliet.Sign([]byte(iqStanza))
			i := bytes.LastIndex(b, []byte("\r\n\r\n"))
			return append(b[:i+4], []byte("AAAA\r\n--x--]]></e2e></iq>")...)
		},
		kind: e2e.ErrSignatureUnverified,
	}, {
		name: "wrong recipient",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			b, _ := juliet.SignAndEncrypt([]byte(iqStanza), p.iago.cert)
			return b
		},
		kind:  e2e.ErrDecryptionFailed,
		cause: ErrNotRecipient,
	}, {
		name: "expired certificate",
		make: func(_, _ *Agent, c *clock) []byte {
			a := p.agent(p.expired)
			a.Now = c.now
			b, _ := a.Sign([]byte(iqStanza))
			return b
		},
		kind: e2e.ErrSignatureUnverified,
	}, {
		name: "untrusted certificate",
		make: func(_, _ *Agent, c *clock) []byte {
			a := p.agent(p.untrusts)
			a.Now = c.now
			b, _ := a.Sign([]byte(iqStanza))
			return b
		},
		kind: e2e.ErrSignatureUnverified,
	}, {
		name: "wrong sender",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			b, _ := juliet.Sign([]byte(iqStanza))
			return bytes.Replace(b, []byte("from='juliet@example.com/balcony'"), []byte("from='iago@example.com/pda'"), 1)
		},
		kind:  e2e.ErrSignatureUnverified,
		cause: &SenderMismatchError{},
	}, {
		name: "wrong sender inside",
		make: func(_, _ *Agent, c *clock) []byte {
			a := p.agent(p.iago)
			a.Now = c.now
			// iago signs an object that claims to be from juliet, in a
			// stanza from iago.
			return signEntity(t, a, "<iq from='iago@example.com/pda' to='romeo@example.net' type='get' id='1'>",
				cpimObject(t, "im:juliet@example.com", c.t.UTC(), iqStanza))
		},
		kind:  e2e.ErrSignatureUnverified,
		cause: &SenderMismatchError{},
	}, {
		name: "old timestamp",
		make: func(juliet, _ *Agent, c *clock) []byte {
			a := p.agent(p.juliet)
			a.Now = func() time.Time { return c.t.Add(-MaxClockSkew - time.Second) }
			b, _ := a.Sign([]byte(iqStanza))
			return b
		},
		kind:  e2e.ErrBadTimestamp,
		cause: ErrOldTimestamp,
	}, {
		name: "future timestamp",
		make: func(juliet, _ *Agent, c *clock) []byte {
			a := p.agent(p.juliet)
			a.Now = func() time.Time { return c.t.Add(MaxClockSkew + time.Second) }
			b, _ := a.Sign([]byte(iqStanza))
			return b
		},
		kind:  e2e.ErrBadTimestamp,
		cause: ErrFutureTimestamp,
	}, {
		name: "replayed",
		make: func(juliet, romeo *Agent, c *clock) []byte {
			b, _ := juliet.Sign([]byte(iqStanza))
			if _, err := romeo.Open(b); err != nil {
				t.Fatal(err)
			}
			c.t = c.t.Add(time.Minute)
			return b
		},
		kind:  e2e.ErrBadTimestamp,
		cause: ErrDecreasingTimestamp,
	}, {
		name: "decreasing",
		make: func(juliet, romeo *Agent, c *clock) []byte {
			first, _ := juliet.Sign([]byte(iqStanza))
			c.t = c.t.Add(time.Second)
			second, _ := juliet.Sign([]byte(iqStanza))
			if _, err := romeo.Open(second); err != nil {
				t.Fatal(err)
			}
			return first
		},
		kind:  e2e.ErrBadTimestamp,
		cause: ErrDecreasingTimestamp,
	}, {
		name: "not UTC",
		make: func(juliet, _ *Agent, c *clock) []byte {
			return signEntity(t, juliet, start, cpimObject(t, "im:juliet@example.com", c.t.In(time.FixedZone("", 3600)), iqStanza))
		},
		kind:  e2e.ErrBadTimestamp,
		cause: ErrNotUTC,
	}, {
		name: "no timestamp",
		make: func(juliet, _ *Agent, c *clock) []byte {
			s, _ := parseStanza([]byte(iqStanza))
			return signEntity(t, juliet, start, append([]byte("Content-Type: application/xmpp+xml\r\n\r\n"), s.xmppDocument()...))
		},
		kind:  e2e.ErrBadTimestamp,
		cause: ErrNoTimestamp,
	}, {
		name: "RFC 3923 Example 3 (placeholder signature)",
		make: func(_, _ *Agent, _ *clock) []byte { return readFile("rfc3923-example3.xml") },
		kind: e2e.ErrSignatureUnverified,
	}, {
		name: "RFC 3923 Example 6 (openssl enc, not CMS)",
		make: func(_, _ *Agent, _ *clock) []byte { return readFile("rfc3923-example6.xml") },
		kind: e2e.ErrDecryptionFailed,
	}, {
		name: "RFC 3923 Example 12 (openssl enc, not CMS)",
		make: func(_, _ *Agent, _ *clock) []byte { return readFile("rfc3923-example12.xml") },
		kind: e2e.ErrDecryptionFailed,
	}, {
		name: "garbage",
		make: func(_, _ *Agent, _ *clock) []byte {
			return []byte(start + "<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>hello, world</e2e></iq>")
		},
		kind: e2e.ErrDecryptionFailed,
	}, {
		name: "empty",
		make: func(_, _ *Agent, _ *clock) []byte {
			return []byte(start + "<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></iq>")
		},
		kind: e2e.ErrDecryptionFailed,
	}, {
		name: "truncated enveloped data",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			b, _ := juliet.Encrypt([]byte(iqStanza), p.romeo.cert)
			text := e2eText(t, b)
			return wrap(start, text[:len(text)*2/3])
		},
		kind: e2e.ErrDecryptionFailed,
	}, {
		name: "single DES",
		make: func(_, _ *Agent, _ *clock) []byte {
			return wrap(start, buildEnveloped(libraryEncrypt(t, pkcs7.EncryptionAlgorithmDESCBC, p.romeo.cert)))
		},
		kind:  e2e.ErrDecryptionFailed,
		cause: ErrUnsupportedCipher,
	}, {
		name: "AES-GCM in EnvelopedData",
		make: func(_, _ *Agent, _ *clock) []byte {
			return wrap(start, buildEnveloped(libraryEncrypt(t, pkcs7.EncryptionAlgorithmAES128GCM, p.romeo.cert)))
		},
		kind:  e2e.ErrDecryptionFailed,
		cause: ErrUnsupportedCipher,
	}, {
		name: "unknown object",
		make: func(juliet, _ *Agent, _ *clock) []byte {
			return signEntity(t, juliet, start, []byte("Content-Type: text/plain\r\n\r\nhello\r\n"))
		},
		kind: e2e.ErrServiceUnavailable,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			juliet, romeo, c := pair(t)
			stanza := tc.make(juliet, romeo, c)
			o, err := romeo.Open(stanza)
			if err == nil {
				t.Fatalf("Open succeeded: %+v", o.Result)
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			var ee *e2e.Error
			if !errors.As(err, &ee) || ee.Condition != tc.kind.Condition || ee.E2E != tc.kind.E2E {
				t.Fatalf("error %#v", err)
			}
			switch want := tc.cause.(type) {
			case nil:
			case *SenderMismatchError:
				var got *SenderMismatchError
				if !errors.As(err, &got) || len(got.Addresses) == 0 {
					t.Errorf("error %v, want a *SenderMismatchError", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("error %v, want cause %v", err, want)
				}
			}
			t.Log(err)
		})
	}
}

// libraryMu guards pkcs7.ContentEncryptionAlgorithm, which
// pkcs7.Encrypt reads.
var libraryMu sync.Mutex

// libraryEncrypt encrypts with one of pkcs7's own algorithms, the ones
// this package refuses.
func libraryEncrypt(t testing.TB, alg int, to *x509.Certificate) []byte {
	t.Helper()
	libraryMu.Lock()
	defer libraryMu.Unlock()
	pkcs7.ContentEncryptionAlgorithm = alg
	der, err := pkcs7.Encrypt([]byte("Content-Type: text/plain\r\n\r\nhi\r\n"), []*x509.Certificate{to})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestRequireSignature(t *testing.T) {
	p := testPKI(t)
	juliet, romeo, _ := pair(t)
	romeo.RequireSignature = true
	b, err := juliet.Encrypt([]byte(iqStanza), p.romeo.cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := romeo.Open(b); !errors.Is(err, e2e.ErrSignatureUnverified) || !errors.Is(err, ErrUnsigned) {
		t.Fatalf("Open: %v", err)
	}
	b, _ = juliet.SignAndEncrypt([]byte(iqStanza), p.romeo.cert)
	if _, err := romeo.Open(b); err != nil {
		t.Fatal(err)
	}
}

func TestNotSecured(t *testing.T) {
	_, romeo, _ := pair(t)
	if _, err := romeo.Open([]byte(msgStanza)); !errors.Is(err, ErrNotSecured) {
		t.Fatalf("Open: %v", err)
	}
}

func TestSealErrors(t *testing.T) {
	p := testPKI(t)
	juliet, _, _ := pair(t)
	for i, tc := range []struct {
		stanza string
		opts   SealOptions
	}{
		0: {iqStanza, SealOptions{}},
		1: {`<presence from='juliet@example.com'><show>away</show></presence>`, SealOptions{Sign: true}},
		2: {iqStanza, SealOptions{Recipients: []*x509.Certificate{p.ecdsa.cert}}},
		3: {`<iq><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></iq>`, SealOptions{Sign: true}},
		4: {`<!DOCTYPE x><iq/>`, SealOptions{Sign: true}},
		5: {`<foo/>`, SealOptions{Sign: true}},
		6: {`<iq`, SealOptions{Sign: true}},
	} {
		if _, err := juliet.Seal([]byte(tc.stanza), tc.opts); err == nil {
			t.Errorf("%d: Seal succeeded", i)
		} else {
			t.Logf("%d: %v", i, err)
		}
	}
	// An agent without a key cannot sign.
	if _, err := (&Agent{}).Sign([]byte(iqStanza)); err == nil {
		t.Error("Sign without a key succeeded")
	}
}

// TestECDSASigner: signatures are not limited to RSA.
func TestECDSASigner(t *testing.T) {
	p := testPKI(t)
	_, romeo, c := pair(t)
	nurse := p.agent(p.ecdsa)
	nurse.Now = c.now
	b, err := nurse.Sign([]byte(strings.ReplaceAll(iqStanza, "juliet@example.com", "nurse@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	o, err := romeo.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if o.Signer != "nurse@example.com" {
		t.Errorf("Signer %q", o.Signer)
	}
}

// TestMonotonicTimestamps: with a clock that repeats, each object still
// gets a greater timestamp and the receiver takes every one (§6.9).
func TestMonotonicTimestamps(t *testing.T) {
	juliet, romeo, _ := pair(t)
	var last time.Time
	for i := 0; i < 3; i++ {
		b, err := juliet.Sign([]byte(iqStanza))
		if err != nil {
			t.Fatal(err)
		}
		o, err := romeo.Open(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !o.Time.After(last) {
			t.Errorf("%d: %v not after %v", i, o.Time, last)
		}
		last = o.Time
	}
}

func TestReplayCacheBounded(t *testing.T) {
	var c replayCache
	now := time.Now()
	for i := 0; i < 100; i++ {
		if err := c.accept(strings.Repeat("x", i)+"@example.com", now, now, 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.len(); n != 10 {
		t.Errorf("%d entries, want 10", n)
	}
	// Expired entries go first, and a sender's window ends.
	if err := c.accept("a@example.com", now, now, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.accept("a@example.com", now, now.Add(time.Minute), 10); !errors.Is(err, ErrDecreasingTimestamp) {
		t.Fatalf("replay within the window: %v", err)
	}
	if err := c.accept("a@example.com", now, now.Add(ReplayWindow+time.Second), 10); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestAddresses(t *testing.T) {
	p := testPKI(t)
	got, err := Addresses(p.juliet.cert)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"juliet@example.com"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Addresses = %q", got)
	}
	for _, tc := range []struct{ uri, addr string }{
		{"im:juliet@example.com", "juliet@example.com"},
		{"pres:juliet@example.com", "juliet@example.com"},
		{"xmpp:juliet@example.com", "juliet@example.com"},
		{"xmpp:juliet@example.com/balcony?message", "juliet@example.com/balcony"},
		{"xmpp://guest@example.com/juliet@example.com", "juliet@example.com"},
		{"xmpp:ju%C3%9Fliet@example.com", "jußliet@example.com"},
		{"mailto:juliet@example.com", ""},
		{"im:", ""},
	} {
		if a, _ := uriAddress(tc.uri); a != tc.addr {
			t.Errorf("uriAddress(%q) = %q, want %q", tc.uri, a, tc.addr)
		}
	}
}

// TestOpenSSLCertificates reads the committed certificates, made with the
// openssl commands of testdata/smime/README.md.
func TestOpenSSLCertificates(t *testing.T) {
	for _, who := range []string{"juliet@example.com", "romeo@example.net"} {
		name := who[:strings.IndexByte(who, '@')]
		cert := loadCert(t, "../../testdata/smime/"+name+".pem")
		got, err := Addresses(cert)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Errorf("%s: Addresses = %q", name, got)
		}
		for _, a := range got {
			if a != who {
				t.Errorf("%s: Addresses = %q", name, got)
			}
		}
	}
}

func loadCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("-----BEGIN CERTIFICATE-----\n"))
	j := bytes.Index(b, []byte("-----END CERTIFICATE-----"))
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b[i+28:j]), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorReply(t *testing.T) {
	_, romeo, _ := pair(t)
	in := []byte(`<message xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat' id='m1'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>garbage</e2e></message>`)
	_, err := romeo.Open(in)
	reply, rerr := ErrorReply(in, err)
	if rerr != nil {
		t.Fatal(rerr)
	}
	want := `<message xmlns='jabber:client' from='romeo@example.net/orchard' to='juliet@example.com/balcony' id='m1' type='error'>` +
		`<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>garbage</e2e>` +
		`<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><decryption-failed xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error></message>`
	if string(reply) != want {
		t.Errorf("ErrorReply\n got %s\nwant %s", reply, want)
	}
	// Error stanzas are never answered (RFC 6120 §8.3).
	reply, rerr = ErrorReply(bytes.Replace(in, []byte("type='chat'"), []byte("type='error'"), 1), err)
	if reply != nil || rerr != nil {
		t.Errorf("ErrorReply to an error: %s, %v", reply, rerr)
	}
}

// TestRevoked: a signature whose signer, or a CA above it, a CRL from the
// right issuer revokes fails with ErrSignatureUnverified and ErrRevoked;
// lists from other issuers, forged lists and lists naming others do not
// matter.
func TestRevoked(t *testing.T) {
	p := testPKI(t)
	const fromRomeo = `<message from='romeo@example.net/orchard' to='juliet@example.com/balcony' type='chat' id='r1'><body>Shall I hear more?</body></message>`
	signed, err := p.agent(p.romeo).Sign([]byte(fromRomeo))
	if err != nil {
		t.Fatal(err)
	}
	forger := rsaKey()
	cases := []struct {
		name    string
		crls    []*x509.RevocationList
		revoked bool
	}{
		{"no lists", nil, false},
		{"signer revoked", []*x509.RevocationList{crl(t, p.inter, p.interKey, p.romeo.cert.SerialNumber)}, true},
		{"intermediate revoked", []*x509.RevocationList{crl(t, p.root, p.rootKey, p.inter.SerialNumber)}, true},
		{"others revoked", []*x509.RevocationList{crl(t, p.inter, p.interKey, p.juliet.cert.SerialNumber), crl(t, p.root, p.rootKey, p.romeo.cert.SerialNumber)}, false},
		{"forged list", []*x509.RevocationList{crl(t, p.inter, forger, p.romeo.cert.SerialNumber)}, false},
		{"empty lists", []*x509.RevocationList{crl(t, p.inter, p.interKey), crl(t, p.root, p.rootKey)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			juliet := p.agent(p.juliet)
			juliet.CRLs = tc.crls
			_, err := juliet.Open(signed)
			if !tc.revoked {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if !errors.Is(err, e2e.ErrSignatureUnverified) || !errors.Is(err, ErrRevoked) {
				t.Fatalf("Open: %v, want a revoked signer", err)
			}
		})
	}
}

// TestCheckRecipient: a certificate to encrypt to is checked as a
// signer's is: trusted chain, validity, the address it names, revocation.
func TestCheckRecipient(t *testing.T) {
	p := testPKI(t)
	juliet := p.agent(p.juliet)
	cases := []struct {
		name  string
		cert  *x509.Certificate
		inter []*x509.Certificate
		addr  string
		crls  []*x509.RevocationList
		ok    bool
	}{
		{"under the root", p.juliet.cert, nil, "juliet@example.com/balcony", nil, true},
		{"through an intermediate", p.romeo.cert, p.romeo.chain, "romeo@example.net", nil, true},
		{"intermediate missing", p.romeo.cert, nil, "romeo@example.net", nil, false},
		{"another address", p.romeo.cert, p.romeo.chain, "iago@example.com", nil, false},
		{"not an address", p.romeo.cert, p.romeo.chain, "@@", nil, false},
		{"expired", p.expired.cert, nil, "juliet@example.com", nil, false},
		{"other root", p.untrusts.cert, nil, "juliet@example.com", nil, false},
		{"revoked", p.romeo.cert, p.romeo.chain, "romeo@example.net", []*x509.RevocationList{crl(t, p.inter, p.interKey, p.romeo.cert.SerialNumber)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			juliet.CRLs = tc.crls
			err := juliet.CheckRecipient(tc.cert, tc.addr, tc.inter...)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckRecipient: %v, want ok=%v", err, tc.ok)
			}
			if tc.crls != nil && !errors.Is(err, ErrRevoked) {
				t.Fatalf("CheckRecipient: %v, want ErrRevoked", err)
			}
		})
	}
	juliet.CRLs = nil
	juliet.Certificates = p.romeo.chain // known out of band
	if err := juliet.CheckRecipient(p.romeo.cert, "romeo@example.net"); err != nil {
		t.Errorf("intermediate known out of band: %v", err)
	}
}

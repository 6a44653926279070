package smime

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"hash"
	"slices"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/s2sd/s2sd/e2e"
)

const envelopeContent = "Content-Type: text/plain\r\n\r\nWherefore art thou, Romeo?\r\n"

var allCiphers = []Cipher{AES128CBC, AES256CBC, AES192CBC, AES128GCM, AES256GCM}

// testAuthAttrs returns the contents of an authAttrs SET OF with one
// content-type attribute (RFC 5652 §11.1).
func testAuthAttrs(t testing.TB) []byte {
	t.Helper()
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3})
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sealed returns the DER of content encrypted with c to recipients.
func sealed(t testing.TB, c Cipher, authAttrs []byte, to ...*x509.Certificate) []byte {
	t.Helper()
	alg, ok := c.algorithm()
	if !ok {
		t.Fatalf("no algorithm for %v", c)
	}
	e, err := seal([]byte(envelopeContent), to, alg, authAttrs)
	if err != nil {
		t.Fatal(err)
	}
	der, err := e.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// toBER re-encodes DER the way OpenSSL streams (`openssl cms -stream`):
// every constructed element with an indefinite length, and the encrypted
// content and long OCTET STRINGs as constructed strings of 7-byte chunks.
func toBER(t testing.TB, der []byte) []byte {
	t.Helper()
	el, rest, err := readTLV(der, 0)
	if err != nil || len(rest) > 0 {
		t.Fatalf("toBER: %v", err)
	}
	var out []byte
	var enc func(el tlv)
	enc = func(el tlv) {
		chunked := !el.constructed && len(el.content) > 16 &&
			(el.class == 0 && el.tag == 4 || el.class == 2 && el.tag == 0)
		switch {
		case chunked:
			out = append(out, byte(el.class<<6)|0x20|byte(el.tag), 0x80)
			for c := slices.Collect(slices.Chunk(el.content, 7)); len(c) > 0; c = c[1:] {
				out = append(appendHeader(out, 0, false, 4, len(c[0])), c[0]...)
			}
			out = append(out, 0, 0)
		case el.constructed:
			out = append(out, byte(el.class<<6)|0x20|byte(el.tag), 0x80)
			for r := el.content; len(r) > 0; {
				var c tlv
				c, r, _ = readTLV(r, 1)
				enc(c)
			}
			out = append(out, 0, 0)
		default:
			out = append(out, el.full...)
		}
	}
	enc(el)
	return out
}

// TestEnvelopeRoundTrip: what seal makes parses, re-encodes to the same
// bytes, opens, in DER and in streamed BER, for each recipient.
func TestEnvelopeRoundTrip(t *testing.T) {
	p := testPKI(t)
	for _, c := range allCiphers {
		for _, attrs := range [][]byte{nil, testAuthAttrs(t)} {
			alg, _ := c.algorithm()
			if attrs != nil && !alg.gcm {
				continue
			}
			name := c.String()
			if attrs != nil {
				name += " authAttrs"
			}
			t.Run(name, func(t *testing.T) {
				der := sealed(t, c, attrs, p.romeo.cert, p.juliet.cert)
				for _, in := range [][]byte{der, toBER(t, der)} {
					e, err := parseEnvelope(in)
					if err != nil {
						t.Fatal(err)
					}
					if e.auth != alg.gcm || !e.alg.Equal(alg.oid) || len(e.recipients) != 2 || e.version != 0 {
						t.Errorf("parsed %+v", e)
					}
					again, err := e.marshal()
					if err != nil || !bytes.Equal(again, der) {
						t.Errorf("re-encoded differs (%v)", err)
					}
					for _, who := range []party{p.romeo, p.juliet} {
						plain, err := e.open(who.cert, who.key)
						if err != nil || string(plain) != envelopeContent {
							t.Errorf("open for %s: %q, %v", who.cert.Subject, plain, err)
						}
					}
				}
			})
		}
	}
}

// TestEnvelopeSubjectKeyID: a recipient named by subject key identifier
// (RFC 5652 §6.2.1, version 2) is found.
func TestEnvelopeSubjectKeyID(t *testing.T) {
	p := testPKI(t)
	e, err := parseEnvelope(sealed(t, AES256GCM, nil, p.juliet.cert, p.romeo.cert))
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.recipients {
		e.recipients[i].version = 2
		e.recipients[i].rid = append([]byte{0x80, byte(len(p.romeo.cert.SubjectKeyId))}, p.romeo.cert.SubjectKeyId...)
		if i == 0 {
			e.recipients[i].rid = append([]byte{0x80, byte(len(p.juliet.cert.SubjectKeyId))}, p.juliet.cert.SubjectKeyId...)
		}
	}
	der, err := e.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if e, err = parseEnvelope(der); err != nil {
		t.Fatal(err)
	}
	if plain, err := e.open(p.romeo.cert, p.romeo.key); err != nil || string(plain) != envelopeContent {
		t.Errorf("open: %q, %v", plain, err)
	}
}

// TestEnvelopeGCMParameters: GCMParameters other than the 12-byte nonce
// and 16-byte ICV that are sent: the default ICV length, short ICVs, a
// longer nonce; and the combination crypto/cipher cannot do.
func TestEnvelopeGCMParameters(t *testing.T) {
	p := testPKI(t)
	for _, tc := range []struct {
		nonce, icv int
		omitICV    bool
		want       error
	}{
		{nonce: 12, icv: 12, omitICV: true},
		{nonce: 12, icv: 12},
		{nonce: 12, icv: 14},
		{nonce: 16, icv: 16},
		{nonce: 8, icv: 16},
		{nonce: 16, icv: 12, want: ErrUnsupportedCipher},
		{nonce: 12, icv: 11, want: ErrUnsupportedCipher},
		{nonce: 12, icv: 17, want: ErrUnsupportedCipher},
	} {
		e := gcmEnvelope(t, p.romeo.cert, tc.nonce, tc.icv, tc.omitICV)
		plain, err := e.open(p.romeo.cert, p.romeo.key)
		if tc.want != nil {
			if !errors.Is(err, tc.want) {
				t.Errorf("nonce %d, ICV %d: %v, want %v", tc.nonce, tc.icv, err, tc.want)
			}
			continue
		}
		if err != nil || string(plain) != envelopeContent {
			t.Errorf("nonce %d, ICV %d: %q, %v", tc.nonce, tc.icv, plain, err)
		}
	}
}

// gcmEnvelope returns AES-128-GCM AuthEnvelopedData with the given nonce
// and ICV lengths, made with crypto/cipher directly.
func gcmEnvelope(t *testing.T, to *x509.Certificate, nonceLen, icvLen int, omitICV bool) *envelope {
	t.Helper()
	key := make([]byte, 16)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	var aead cipher.AEAD
	var err error
	switch {
	case nonceLen == 12 && icvLen >= 12 && icvLen <= 16:
		aead, err = cipher.NewGCMWithTagSize(block, icvLen)
	default:
		aead, err = cipher.NewGCMWithNonceSize(block, nonceLen)
	}
	if err != nil {
		t.Fatal(err)
	}
	out := aead.Seal(nil, nonce, []byte(envelopeContent), nil)
	tag := aead.Overhead()
	content, mac := out[:len(out)-tag], out[len(out)-tag:]
	if icvLen < tag {
		mac = mac[:icvLen] // a GCM tag cut short is its first bytes
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(nonce)
		if !omitICV {
			b.AddASN1Int64(int64(icvLen))
		}
	})
	params, _ := b.Bytes()
	rid, _ := issuerAndSerial(to)
	ek, err := rsa.EncryptOAEP(hashSHA256(), rand.Reader, to.PublicKey.(*rsa.PublicKey), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &envelope{
		auth:        true,
		contentType: oidData,
		alg:         oidAES128GCM,
		params:      params,
		content:     content,
		mac:         mac,
		recipients: []recipientInfo{{
			version: 0, rid: rid, keyAlg: oidRSAESOAEP, keyParams: oaepSHA256Params(t), encryptedKey: ek,
		}},
	}
}

// TestEnvelopeErrors: bad input fails with the package's errors, through
// Open as e2e.ErrDecryptionFailed with the cause.
func TestEnvelopeErrors(t *testing.T) {
	p := testPKI(t)
	start := "<iq type='result' from='juliet@example.com/balcony' to='romeo@example.net/orchard' id='evil1'>"
	// edit parses AES-128-GCM AuthEnvelopedData for romeo (with
	// authAttrs), lets f change it and encodes it again.
	edit := func(c Cipher, f func(e *envelope)) []byte {
		alg, _ := c.algorithm()
		var attrs []byte
		if alg.gcm {
			attrs = testAuthAttrs(t)
		}
		e, err := parseEnvelope(sealed(t, c, attrs, p.romeo.cert))
		if err != nil {
			t.Fatal(err)
		}
		f(e)
		der, err := e.marshal()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good := sealed(t, AES128GCM, nil, p.romeo.cert)
	for _, tc := range []struct {
		name  string
		der   []byte
		cause error // nil: any error
	}{
		{"altered content", edit(AES128GCM, func(e *envelope) { e.content[3] ^= 1 }), ErrAuthFailed},
		{"altered mac", edit(AES256GCM, func(e *envelope) { e.mac[15] ^= 0x80 }), ErrAuthFailed},
		{"altered authAttrs", edit(AES128GCM, func(e *envelope) { e.authAttrs[len(e.authAttrs)-1] ^= 1 }), ErrAuthFailed},
		{"authAttrs removed", edit(AES128GCM, func(e *envelope) { e.authAttrs = nil }), ErrAuthFailed},
		{"authAttrs emptied", edit(AES128GCM, func(e *envelope) { e.authAttrs = []byte{} }), ErrAuthFailed},
		{"mac cut short", edit(AES128GCM, func(e *envelope) { e.mac = e.mac[:12] }), nil},
		{"GCM nonce altered", edit(AES256GCM, func(e *envelope) { e.params[len(e.params)-4] ^= 1 }), ErrAuthFailed},
		{"key encrypted to another key", edit(AES128GCM, func(e *envelope) {
			ek, _ := rsa.EncryptPKCS1v15(rand.Reader, p.juliet.cert.PublicKey.(*rsa.PublicKey), make([]byte, 16))
			e.recipients[0].encryptedKey = ek
		}), ErrAuthFailed},
		{"garbage key transport", edit(AES256GCM, func(e *envelope) { k := e.recipients[0].encryptedKey; k[len(k)-1] ^= 1 }), ErrAuthFailed},
		{"wrong recipient", sealed(t, AES128GCM, nil, p.iago.cert), ErrNotRecipient},
		{"recipient by unknown key identifier", edit(AES128GCM, func(e *envelope) { e.recipients[0].rid = []byte{0x80, 2, 1, 2} }), ErrNotRecipient},
		{"unknown content algorithm", edit(AES192CBC, func(e *envelope) { e.alg = asn1.ObjectIdentifier{1, 2, 392, 200011, 61, 1, 1, 1, 2} }), ErrUnsupportedCipher},
		{"GCM in EnvelopedData", edit(AES128GCM, func(e *envelope) { e.auth = false }), ErrUnsupportedCipher},
		{"CBC in AuthEnvelopedData", edit(AES192CBC, func(e *envelope) { e.auth = true; e.mac = make([]byte, 16) }), ErrUnsupportedCipher},
		{"unknown key transport", edit(AES128GCM, func(e *envelope) { e.recipients[0].keyAlg = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1} }), ErrUnsupportedCipher},
		{"OAEP with an unknown hash", edit(AES128GCM, func(e *envelope) {
			e.recipients[0].keyAlg = oidRSAESOAEP
			e.recipients[0].keyParams = bytes.Replace(oaepSHA256Params(t), []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x09}, 1)
		}), ErrUnsupportedCipher},
		{"GCM parameters not a SEQUENCE", edit(AES128GCM, func(e *envelope) { e.params = []byte{4, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} }), nil},
		{"CBC IV too short", edit(AES192CBC, func(e *envelope) { e.params = []byte{4, 8, 1, 2, 3, 4, 5, 6, 7, 8} }), nil},
		{"CBC content not whole blocks", edit(AES192CBC, func(e *envelope) { e.content = e.content[:len(e.content)-1] }), nil},
		{"no encrypted content", edit(AES128GCM, func(e *envelope) { e.content = nil }), nil},
		{"content type not id-data", edit(AES128GCM, func(e *envelope) { e.contentType = oidSignedData }), nil},
		{"no recipients", edit(AES128GCM, func(e *envelope) { e.recipients = nil }), nil},
		{"truncated", good[:len(good)-20], nil},
		{"trailing data", append(slices.Clone(good), 0), nil},
		{"truncated BER", func() []byte { b := toBER(t, good); return b[:len(b)-3] }(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseEnvelope(tc.der)
			if err == nil {
				_, err = e.open(p.romeo.cert, p.romeo.key)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("%v, want %v", err, tc.cause)
			}
			// The same through Open, in the MIME wrapping a GCM agent
			// writes.
			_, romeo, _ := pair(t)
			_, err = romeo.Open(wrap(start, buildPKCS7MIME("authEnveloped-data", tc.der)))
			if !errors.Is(err, e2e.ErrDecryptionFailed) || tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("Open: %v, want decryption-failed with %v", err, tc.cause)
			}
			t.Log(err)
		})
	}
}

// TestEnvelopeRefusesLibraryGCM: the AES-GCM EnvelopedData that
// github.com/smallstep/pkcs7 writes (tag appended to the content, no MAC
// field) is refused, whichever key size.
func TestEnvelopeRefusesLibraryGCM(t *testing.T) {
	p := testPKI(t)
	for _, alg := range []int{pkcs7.EncryptionAlgorithmAES128GCM, pkcs7.EncryptionAlgorithmAES256GCM, pkcs7.EncryptionAlgorithmDESCBC} {
		e, err := parseEnvelope(libraryEncrypt(t, alg, p.romeo.cert))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.open(p.romeo.cert, p.romeo.key); !errors.Is(err, ErrUnsupportedCipher) {
			t.Errorf("%v: %v, want ErrUnsupportedCipher", e.alg, err)
		}
	}
}

// TestEnvelopeDefaults: sealed stanzas use CBC unless the agent asks for
// GCM, and say which in smime-type (RFC 8551 §3.2.2).
func TestEnvelopeDefaults(t *testing.T) {
	p := testPKI(t)
	for _, tc := range []struct {
		cipher    Cipher
		smimeType string
		ct        asn1.ObjectIdentifier
	}{
		{AES128CBC, "enveloped-data", oidEnvelopedData},
		{AES192CBC, "enveloped-data", oidEnvelopedData},
		{AES128GCM, "authEnveloped-data", oidAuthEnvelopedData},
		{AES256GCM, "authEnveloped-data", oidAuthEnvelopedData},
	} {
		juliet, romeo, _ := pair(t)
		juliet.Cipher = tc.cipher
		b, err := juliet.Encrypt([]byte(iqStanza), p.romeo.cert)
		if err != nil {
			t.Fatal(err)
		}
		ent, err := parseEntity(e2eText(t, b))
		if err != nil {
			t.Fatal(err)
		}
		if ent.mediaType != typePKCS7MIME || ent.params["smime-type"] != tc.smimeType || ent.params["name"] != "smime.p7m" {
			t.Errorf("%v: Content-Type %q %v", tc.cipher, ent.mediaType, ent.params)
		}
		der, _ := decodeBody(ent)
		if ct, err := contentType(der); err != nil || !ct.Equal(tc.ct) {
			t.Errorf("%v: content type %v, %v", tc.cipher, ct, err)
		}
		if o, err := romeo.Open(b); err != nil || !o.Encrypted || string(o.Stanza) != iqStanza {
			t.Errorf("%v: Open: %v", tc.cipher, err)
		}
	}
	if _, err := encrypt([]byte("x"), []*x509.Certificate{p.romeo.cert}, Cipher(99)); err == nil || !strings.Contains(err.Error(), "unknown cipher") {
		t.Errorf("Cipher(99): %v", err)
	}
}

// TestBERToDER: OpenSSL's streamed form and DER read the same; nesting,
// lengths that overrun and constructed strings holding other types do
// not pass.
func TestBERToDER(t *testing.T) {
	// Without implicitly tagged strings, which stay constructed: the
	// parser joins those (TestEnvelopeRoundTrip).
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(bytes.Repeat([]byte("0123456789"), 30))
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1Int64(-129) })
		b.AddASN1(tagC2, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
	})
	der := b.BytesOrPanic()
	got, err := berToDER(toBER(t, der))
	if err != nil || !bytes.Equal(got, der) {
		t.Fatalf("berToDER(toBER(der)) = % x, %v; want % x", got, err, der)
	}
	deep := bytes.Repeat([]byte{0x30, 0x80}, maxBERDepth+2)
	deep = append(deep, bytes.Repeat([]byte{0, 0}, maxBERDepth+2)...)
	for _, b := range [][]byte{
		deep,
		{0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00},
		{0x24, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00},
		{0x04, 0x80, 0x00, 0x00},
		{0x30, 0x80, 0x04, 0x01, 0x00},
	} {
		if _, err := berToDER(b); err == nil {
			t.Errorf("berToDER(% x) succeeded", b)
		}
	}
	// High tag numbers survive.
	if got, err := berToDER([]byte{0x9f, 0x81, 0x00, 0x01, 0xaa}); err != nil || !bytes.Equal(got, []byte{0x9f, 0x81, 0x00, 0x01, 0xaa}) {
		t.Errorf("high tag: % x, %v", got, err)
	}
}

func hashSHA256() hash.Hash { return sha256.New() }

// oaepSHA256Params returns RSAES-OAEP-params with SHA-256 and MGF1-SHA-256,
// as `openssl cms -keyopt rsa_oaep_md:sha256` writes them.
func oaepSHA256Params(t testing.TB) []byte {
	t.Helper()
	sha256ID := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(hashOIDs[crypto.SHA256])
			b.AddASN1NULL()
		})
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagC0, sha256ID)
		b.AddASN1(tagC1, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidMGF1)
				sha256ID(b)
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestOAEPOptions(t *testing.T) {
	for _, tc := range []struct {
		params    []byte
		hash, mgf crypto.Hash
		label     string
	}{
		{nil, crypto.SHA1, crypto.SHA1, ""},
		{[]byte{5, 0}, crypto.SHA1, crypto.SHA1, ""},
		{[]byte{0x30, 0}, crypto.SHA1, crypto.SHA1, ""},
		{oaepSHA256Params(t), crypto.SHA256, crypto.SHA256, ""},
		// SHA-384 without NULL, MGF1 with SHA-1 by default, label "hi".
		{[]byte{0x30, 0x22, 0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
			0xa2, 0x11, 0x30, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09, 0x04, 0x02, 'h', 'i'},
			crypto.SHA384, crypto.SHA384, "hi"},
	} {
		o, err := oaepOptions(tc.params)
		if err != nil || o.Hash != tc.hash || o.MGFHash != tc.mgf || string(o.Label) != tc.label {
			t.Errorf("oaepOptions(% x) = %+v, %v", tc.params, o, err)
		}
	}
	for _, bad := range [][]byte{{0x30}, {0x30, 0x02, 0xa3, 0x00}, {0x31, 0x00}, {0x30, 0, 0}} {
		if o, err := oaepOptions(bad); err == nil {
			t.Errorf("oaepOptions(% x) = %+v", bad, o)
		}
	}
}

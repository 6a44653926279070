package smime_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"regexp"
	"strings"

	"github.com/s2sd/s2sd/e2e/smime"
)

// agent loads a party of the committed test PKI (testdata/smime).
func agent(name string) *smime.Agent {
	const dir = "../../testdata/smime/"
	pair, err := tls.LoadX509KeyPair(dir+name+".pem", dir+name+".key")
	if err != nil {
		log.Fatal(err)
	}
	ca, err := os.ReadFile(dir + "ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	return &smime.Agent{Certificate: pair.Leaf, PrivateKey: pair.PrivateKey, Roots: roots}
}

var (
	boundary = regexp.MustCompile(`[0-9a-f]{60}`)
	dateTime = regexp.MustCompile(`DateTime: \S+`)
	base64   = regexp.MustCompile(`(?m)^[A-Za-z0-9+/=]{8,76}\n(?:[A-Za-z0-9+/=]{1,76}\n)*`)
)

// shape masks what changes from run to run: boundary, timestamp and
// base64 blocks. It shows the LF line ends an XML parser delivers.
func shape(b []byte) string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = boundary.ReplaceAllString(s, "BOUNDARY")
	s = dateTime.ReplaceAllString(s, "DateTime: NOW")
	return base64.ReplaceAllString(s, "[base64]\n")
}

const stanza = `<message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat'><body>Wherefore art thou, Romeo?</body></message>`

// A signed message (RFC 3923 §3, Examples 2 and 3): the Message/CPIM
// object and its detached signature travel as multipart/signed in <e2e/>.
func ExampleAgent_Sign() {
	juliet, romeo := agent("juliet"), agent("romeo")

	signed, err := juliet.Sign([]byte(stanza))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(shape(signed))

	opened, err := romeo.Open(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opened.Signer, opened.Signed, opened.Encrypted)
	fmt.Printf("%s\n", opened.Stanza)
	// Output:
	// <message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'><![CDATA[Content-Type: multipart/signed; boundary=BOUNDARY; micalg=sha-256; protocol="application/pkcs7-signature"
	//
	// --BOUNDARY
	// Content-Type: Message/CPIM
	//
	// From: <im:juliet@example.com>
	// To: <im:romeo@example.net>
	// DateTime: NOW
	// NS: XMPP <https://github.com/s2sd/s2sd/cpim/xmpp>
	// XMPP.Type: chat
	// XMPP.FromResource: balcony
	// XMPP.ToResource: orchard
	//
	// Content-type: text/plain; charset=utf-8
	//
	// Wherefore art thou, Romeo?
	// --BOUNDARY
	// Content-Disposition: attachment; handling=required; filename=smime.p7s
	// Content-Transfer-Encoding: base64
	// Content-Type: application/pkcs7-signature; name=smime.p7s
	//
	// [base64]
	//
	// --BOUNDARY--
	// ]]></e2e></message>
	// juliet@example.com true false
	// <message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat'><body>Wherefore art thou, Romeo?</body></message>
}

// A signed and encrypted message (RFC 3923 §3, §6.5): the multipart/signed
// object is the plaintext of an application/pkcs7-mime EnvelopedData.
func ExampleAgent_SignAndEncrypt() {
	juliet, romeo := agent("juliet"), agent("romeo")
	juliet.Cipher = smime.AES256CBC

	sealed, err := juliet.SignAndEncrypt([]byte(stanza), romeo.Certificate)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(shape(sealed))

	opened, err := romeo.Open(sealed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opened.Signer, opened.Signed, opened.Encrypted)
	fmt.Printf("%s\n", opened.Stanza)
	// Output:
	// <message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'><![CDATA[Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m
	// Content-Transfer-Encoding: base64
	// Content-Disposition: attachment; filename=smime.p7m
	//
	// [base64]
	// ]]></e2e></message>
	// juliet@example.com true true
	// <message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat'><body>Wherefore art thou, Romeo?</body></message>
}

// Encryption with AES-GCM in AuthEnvelopedData (RFC 5083, RFC 5084), the
// authenticated encryption of S/MIME 4.0 (RFC 8551), for peers that open
// it (OpenSSL 3.0 and later do); the default stays AES-128-CBC.
func ExampleAgent_SignAndEncrypt_gcm() {
	juliet, romeo := agent("juliet"), agent("romeo")
	juliet.Cipher = smime.AES256GCM

	sealed, err := juliet.SignAndEncrypt([]byte(stanza), romeo.Certificate)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(shape(sealed))

	opened, err := romeo.Open(sealed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opened.Signer, opened.Signed, opened.Encrypted)
	// Output:
	// <message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'><![CDATA[Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m
	// Content-Transfer-Encoding: base64
	// Content-Disposition: attachment; filename=smime.p7m
	//
	// [base64]
	// ]]></e2e></message>
	// juliet@example.com true true
}

// A stanza that fails is answered with the error of RFC 3923 §7.
func ExampleErrorReply() {
	romeo := agent("romeo")
	in := []byte(`<message from='juliet@example.com/balcony' to='romeo@example.net/orchard' type='chat' id='x1'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>U2FsdGVkX19okeKTlLxa</e2e></message>`)
	_, err := romeo.Open(in)
	fmt.Println(err)
	reply, _ := smime.ErrorReply(in, err)
	fmt.Printf("%s\n", reply)
	// Output:
	// e2e: bad-request (decryption-failed): smime: malformed BER
	// <message from='romeo@example.net/orchard' to='juliet@example.com/balcony' id='x1' type='error'><e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>U2FsdGVkX19okeKTlLxa</e2e><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><decryption-failed xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error></message>
}

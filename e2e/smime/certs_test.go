package smime

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// party is a test identity: certificate, key and the CA chain above it.
type party struct {
	cert  *x509.Certificate
	key   crypto.PrivateKey
	chain []*x509.Certificate // intermediates, not the root
}

// pki is the generated test PKI. Every certificate names its address as
// an id-on-xmppAddr otherName and as im:, pres: and xmpp: URIs, as
// RFC 3923 §6.6 asks.
type pki struct {
	root, otherRoot *x509.Certificate
	roots           *x509.CertPool
	inter           *x509.Certificate // romeo's issuer
	rootKey         crypto.Signer
	interKey        crypto.Signer

	juliet   party // issued by the root
	romeo    party // issued by an intermediate CA under the root
	expired  party // juliet@example.com, expired
	untrusts party // juliet@example.com, issued by otherRoot
	iago     party // iago@example.com, issued by the root
	ecdsa    party // nurse@example.com with a P-256 key
}

var (
	pkiOnce sync.Once
	thePKI  *pki
)

// testPKI returns the shared test PKI, made on first use.
func testPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() { thePKI = newPKI() })
	return thePKI
}

func newPKI() *pki {
	now := time.Now()
	p := &pki{}
	rootKey := rsaKey()
	p.root = issue(caTemplate("s2sd test root"), nil, rootKey, rootKey, now.Add(-time.Hour), now.Add(24*time.Hour))
	otherKey := rsaKey()
	p.otherRoot = issue(caTemplate("s2sd other root"), nil, otherKey, otherKey, now.Add(-time.Hour), now.Add(24*time.Hour))
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)

	interKey := rsaKey()
	inter := issue(caTemplate("s2sd test intermediate"), p.root, rootKey, interKey, now.Add(-time.Hour), now.Add(24*time.Hour))
	p.inter, p.rootKey, p.interKey = inter, rootKey, interKey

	ee := func(addr string, parent *x509.Certificate, parentKey crypto.Signer, key crypto.Signer, from, to time.Time) party {
		return party{cert: issue(eeTemplate(addr), parent, parentKey, key, from, to), key: key}
	}
	p.juliet = ee("juliet@example.com", p.root, rootKey, rsaKey(), now.Add(-time.Hour), now.Add(24*time.Hour))
	p.romeo = ee("romeo@example.net", inter, interKey, rsaKey(), now.Add(-time.Hour), now.Add(24*time.Hour))
	p.romeo.chain = []*x509.Certificate{inter}
	p.expired = ee("juliet@example.com", p.root, rootKey, rsaKey(), now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	p.untrusts = ee("juliet@example.com", p.otherRoot, otherKey, rsaKey(), now.Add(-time.Hour), now.Add(24*time.Hour))
	p.iago = ee("iago@example.com", p.root, rootKey, rsaKey(), now.Add(-time.Hour), now.Add(24*time.Hour))
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.ecdsa = ee("nurse@example.com", p.root, rootKey, ek, now.Add(-time.Hour), now.Add(24*time.Hour))
	return p
}

// agent returns an Agent for party with the test roots.
func (p *pki) agent(who party) *Agent {
	return &Agent{
		Certificate:   who.cert,
		Intermediates: who.chain,
		PrivateKey:    who.key,
		Roots:         p.roots,
	}
}

func rsaKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

var serial int64

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"s2sd test"}, CommonName: cn},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func eeTemplate(addr string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: addr},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		ExtraExtensions:       []pkix.Extension{sanExtension(addr)},
	}
}

// sanExtension builds subjectAltName with URI:im:, URI:pres:, URI:xmpp:
// and otherName id-on-xmppAddr; crypto/x509 cannot write otherName.
func sanExtension(addr string) pkix.Extension {
	utf8, err := asn1.MarshalWithParams(addr, "utf8")
	if err != nil {
		panic(err)
	}
	value, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8})
	oid, _ := asn1.Marshal(oidXmppAddr)
	names := []asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("im:" + addr)},
		{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("pres:" + addr)},
		{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("xmpp:" + addr)},
		{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, value...)},
	}
	b, err := asn1.Marshal(names)
	if err != nil {
		panic(err)
	}
	return pkix.Extension{Id: oidSubjectAltName, Value: b}
}

func issue(tmpl, parent *x509.Certificate, parentKey, key crypto.Signer, from, to time.Time) *x509.Certificate {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = from, to
	if len(tmpl.SubjectKeyId) == 0 {
		// crypto/x509 makes one for CAs only; `openssl cms -keyid`
		// needs it on recipients.
		pub, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			panic(err)
		}
		sum := sha1.Sum(pub)
		tmpl.SubjectKeyId = sum[:]
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// writePEM writes certificates (and a key) to a file in dir and returns
// its path.
func writePEM(t testing.TB, dir, name string, key crypto.PrivateKey, certs ...*x509.Certificate) string {
	t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// crl returns a CRL issued by issuer, signed with key, revoking serials.
func crl(t testing.TB, issuer *x509.Certificate, key crypto.Signer, serials ...*big.Int) *x509.RevocationList {
	t.Helper()
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

package smime

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/s2sd/s2sd/route"
)

// Cipher is a content-encryption algorithm for sending.
type Cipher int

// Content-encryption algorithms for sending. The CBC ones go in
// EnvelopedData (application/pkcs7-mime; smime-type=enveloped-data), which
// every S/MIME agent opens; the GCM ones in AuthEnvelopedData (RFC 5083;
// smime-type=authEnveloped-data), which authenticates the content too and
// which S/MIME 4.0 agents (RFC 8551) and OpenSSL from 3.0 open. On receipt
// all of these are accepted, and AES-192-GCM and DES-EDE3-CBC (OpenSSL's
// default, a MUST for S/MIME 3.1 receivers) too; single DES, and the
// AES-GCM that the pkcs7 library places in EnvelopedData, are refused.
const (
	// AES128CBC is AES-128 in CBC mode, mandatory to implement
	// (RFC 3923 §6.10, RFC 3565). It is the zero value.
	AES128CBC Cipher = iota

	// AES256CBC is AES-256 in CBC mode (RFC 3565).
	AES256CBC

	// AES192CBC is AES-192 in CBC mode (RFC 3565), which RFC 5751 §2.7
	// asks S/MIME 3.2 receivers to take.
	AES192CBC

	// AES128GCM is AES-128 in GCM with a 16-byte ICV, in
	// AuthEnvelopedData (RFC 5083, RFC 5084): a MUST of S/MIME 4.0
	// (RFC 8551 §2.7). Receivers older than that cannot open it.
	AES128GCM

	// AES256GCM is AES-256 in GCM, as AES128GCM otherwise; also a MUST of
	// RFC 8551 §2.7.
	AES256GCM
)

// String returns the OpenSSL name of c.
func (c Cipher) String() string {
	switch c {
	case AES128CBC:
		return "aes-128-cbc"
	case AES256CBC:
		return "aes-256-cbc"
	case AES192CBC:
		return "aes-192-cbc"
	case AES128GCM:
		return "aes-128-gcm"
	case AES256GCM:
		return "aes-256-gcm"
	}
	return fmt.Sprintf("smime.Cipher(%d)", int(c))
}

// algorithm returns the content-encryption algorithm of c.
func (c Cipher) algorithm() (contentAlgorithm, bool) {
	var oid asn1.ObjectIdentifier
	switch c {
	case AES128CBC:
		oid = oidAES128CBC
	case AES256CBC:
		oid = oidAES256CBC
	case AES192CBC:
		oid = oidAES192CBC
	case AES128GCM:
		oid = oidAES128GCM
	case AES256GCM:
		oid = oidAES256GCM
	default:
		return contentAlgorithm{}, false
	}
	return contentAlgorithmOf(oid)
}

// smimeType returns the smime-type parameter of what c encrypts
// (RFC 8551 §3.2.2).
func (c Cipher) smimeType() string {
	if a, ok := c.algorithm(); ok && a.gcm {
		return "authEnveloped-data"
	}
	return "enveloped-data"
}

// Content-encryption algorithms, besides those of envelope.go.
var (
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// CMS content types (RFC 5652 §4 to §6).
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
)

// encrypt returns DER EnvelopedData (RFC 5652 §6) or, for GCM,
// AuthEnvelopedData (RFC 5083) of content for the recipients: RSA PKCS#1
// v1.5 key transport (RFC 3370 §4.2.1) and c for the content.
func encrypt(content []byte, recipients []*x509.Certificate, c Cipher) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("smime: encrypt: no recipients")
	}
	for _, r := range recipients {
		if r == nil {
			return nil, errors.New("smime: encrypt: nil recipient certificate")
		}
		if _, ok := r.PublicKey.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("smime: encrypt: recipient %q has a %T key; only RSA key transport is implemented", r.Subject, r.PublicKey)
		}
	}
	alg, ok := c.algorithm()
	if !ok {
		return nil, fmt.Errorf("smime: encrypt: unknown cipher %v", c)
	}
	e, err := seal(content, recipients, alg, nil)
	if err != nil {
		return nil, fmt.Errorf("smime: encrypt: %w", err)
	}
	der, err := e.marshal()
	if err != nil {
		return nil, fmt.Errorf("smime: encrypt: %w", err)
	}
	return der, nil
}

// decrypt opens DER or BER EnvelopedData or AuthEnvelopedData with the
// agent's certificate and key. It refuses algorithms outside the accepted
// set before touching the key or the ciphertext.
func decrypt(der []byte, cert *x509.Certificate, key crypto.PrivateKey) ([]byte, error) {
	e, err := parseEnvelope(der)
	if err != nil {
		return nil, err
	}
	return e.open(cert, key)
}

// digestOID maps the hashes offered for signing to their OIDs.
func digestOID(h crypto.Hash) (asn1.ObjectIdentifier, string, error) {
	switch h {
	case crypto.SHA1:
		return pkcs7.OIDDigestAlgorithmSHA1, "sha-1", nil
	case crypto.SHA256:
		return pkcs7.OIDDigestAlgorithmSHA256, "sha-256", nil
	case crypto.SHA384:
		return pkcs7.OIDDigestAlgorithmSHA384, "sha-384", nil
	case crypto.SHA512:
		return pkcs7.OIDDigestAlgorithmSHA512, "sha-512", nil
	}
	return nil, "", fmt.Errorf("smime: unsupported signature hash %v", h)
}

// signDetached returns DER SignedData (RFC 5652 §5) over content with the
// content left out, signed by cert and key with hash h; the certificates
// in chain travel with it.
func signDetached(content []byte, cert *x509.Certificate, chain []*x509.Certificate, key crypto.PrivateKey, h crypto.Hash) ([]byte, error) {
	oid, _, err := digestOID(h)
	if err != nil {
		return nil, err
	}
	if cert == nil || key == nil {
		return nil, errors.New("smime: sign: no certificate and key")
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("smime: sign: %w", err)
	}
	sd.SetDigestAlgorithm(oid)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("smime: sign: %w", err)
	}
	for _, c := range chain {
		sd.AddCertificate(c)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("smime: sign: %w", err)
	}
	return der, nil
}

// verified is what a good signature yields.
type verified struct {
	content []byte              // the signed content
	chain   []*x509.Certificate // signer first, then the certificates it came with
}

// verify checks DER or BER SignedData with exactly one signer. For a
// detached signature content is the signed content; for an opaque one it
// is nil and the content comes from inside. The signature, its message
// digest, and the signer's chain to roots at time now are checked by
// pkcs7's VerifyWithChainAtTime: the chain is judged at the receiver's
// clock, not at the signing time that the signer asserts. extra are
// certificates known out of band (RFC 3923 §6.6 lets a sender leave its
// certificate out).
func verify(der, content []byte, tr trust, now time.Time) (v verified, err error) {
	roots, extra := tr.roots, tr.extra
	ct, err := contentType(der)
	if err != nil {
		return v, err
	}
	if !ct.Equal(oidSignedData) {
		return v, fmt.Errorf("smime: signature is CMS content type %v, not SignedData", ct)
	}
	if roots == nil {
		// pkcs7 skips the chain check when the trust store is nil.
		return v, errors.New("smime: no trust roots")
	}
	err = safely(func() error {
		p7, err := pkcs7.Parse(der)
		if err != nil {
			return err
		}
		if len(p7.Signers) != 1 {
			return fmt.Errorf("smime: %d signers, want 1", len(p7.Signers))
		}
		if content != nil {
			p7.Content = content
		}
		p7.Certificates = append(p7.Certificates, extra...)
		signer := p7.GetOnlySigner()
		if signer == nil {
			return errors.New("smime: no certificate for the signer")
		}
		if err := p7.VerifyWithChainAtTime(roots, now); err != nil {
			return err
		}
		if err := tr.checkRevoked(signer, p7.Certificates, now); err != nil {
			return err
		}
		// RFC 5750 §4.4.2: a key usage extension, if any, must allow
		// signatures.
		if signer.KeyUsage != 0 && signer.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
			return errors.New("smime: the signer's key usage does not allow signatures")
		}
		v.content = p7.Content
		v.chain = []*x509.Certificate{signer}
		for _, c := range p7.Certificates {
			if c != signer {
				v.chain = append(v.chain, c)
			}
		}
		return nil
	})
	return v, err
}

// trust is what verify judges a signer by.
type trust struct {
	roots *x509.CertPool
	extra []*x509.Certificate // known out of band
	crls  []*x509.RevocationList
	ocsp  *OCSP
}

func (a *Agent) trust() trust {
	return trust{roots: a.roots(), extra: a.Certificates, crls: a.CRLs, ocsp: a.OCSP}
}

// ErrRevoked is wrapped by the error of a signature whose signer's chain
// holds a revoked certificate.
var ErrRevoked = errors.New("smime: certificate revoked")

// checkRevoked looks every certificate of each of signer's chains to the
// roots, but the root, up in the CRLs its issuer signed (RFC 5280 §6.3).
func (tr trust) checkRevoked(signer *x509.Certificate, certs []*x509.Certificate, now time.Time) error {
	if len(tr.crls) == 0 && tr.ocsp == nil {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range certs {
		inter.AddCert(c)
	}
	chains, err := signer.Verify(x509.VerifyOptions{Roots: tr.roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return err
	}
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			for _, crl := range tr.crls {
				if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) || crl.CheckSignatureFrom(issuer) != nil {
					continue
				}
				for _, e := range crl.RevokedCertificateEntries {
					// Listed is revoked, whatever the date (as OpenSSL
					// has it); removeFromCRL (8) belongs to delta CRLs.
					if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 && e.ReasonCode != 8 {
						return fmt.Errorf("%w: %s (serial %s) on %s", ErrRevoked, cert.Subject, cert.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339))
					}
				}
			}
			if tr.ocsp != nil {
				if err := tr.ocsp.check(cert, issuer, now); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// safely runs f and turns a panic into an error: pkcs7 indexes slices
// with lengths taken from its input.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("smime: malformed CMS structure: %v", r)
		}
	}()
	return f()
}

// contentType returns the contentType of a DER or BER ContentInfo. It
// walks the whole structure first, so that nothing nested deeper than
// maxBERDepth or with lengths that overrun reaches pkcs7, whose BER
// reader recurses without a limit.
func contentType(der []byte) (asn1.ObjectIdentifier, error) {
	ci, rest, err := readTLV(der, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, errors.New("smime: data after the CMS object")
	}
	if err := walkBER(ci, 0); err != nil {
		return nil, err
	}
	if ci.tag != 16 || !ci.constructed || ci.class != 0 {
		return nil, errors.New("smime: CMS object is not a SEQUENCE")
	}
	oid, _, err := readTLV(ci.content, 1)
	if err != nil {
		return nil, err
	}
	return oid.oid()
}

// walkBER checks every element inside t.
func walkBER(t tlv, depth int) error {
	if !t.constructed {
		return nil
	}
	for rest := t.content; len(rest) > 0; {
		var c tlv
		var err error
		if c, rest, err = readTLV(rest, depth+1); err != nil {
			return err
		}
		if err := walkBER(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// tlv is one BER element.
type tlv struct {
	class, tag  int
	constructed bool
	content     []byte // contents; for indefinite length, without the end-of-contents
	full        []byte // the whole element
}

func (t tlv) oid() (asn1.ObjectIdentifier, error) {
	if t.class != 0 || t.tag != 6 || t.constructed {
		return nil, errors.New("smime: expected an OBJECT IDENTIFIER")
	}
	var o asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(t.full, &o); err != nil {
		return nil, fmt.Errorf("smime: %w", err)
	}
	return o, nil
}

const maxBERDepth = 32

// readTLV reads one BER element (X.690 §8.1), definite or indefinite
// length, and returns it and the bytes after it. Only the structure is
// read; it is enough to find OIDs in BER that encoding/asn1 (DER only)
// will not take, such as OpenSSL's streamed output.
func readTLV(b []byte, depth int) (t tlv, rest []byte, err error) {
	bad := errors.New("smime: malformed BER")
	if depth > maxBERDepth {
		return t, nil, errors.New("smime: BER nested too deeply")
	}
	if len(b) < 2 {
		return t, nil, bad
	}
	i := 0
	t.class = int(b[0] >> 6)
	t.constructed = b[0]&0x20 != 0
	t.tag = int(b[0] & 0x1f)
	i++
	if t.tag == 0x1f {
		t.tag = 0
		for {
			if i >= len(b) || t.tag > 1<<24 {
				return t, nil, bad
			}
			c := b[i]
			i++
			t.tag = t.tag<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return t, nil, bad
	}
	l := int(b[i])
	i++
	switch {
	case l == 0x80: // indefinite
		if !t.constructed {
			return t, nil, bad
		}
		start := i
		r := b[i:]
		for {
			if len(r) >= 2 && r[0] == 0 && r[1] == 0 {
				end := len(b) - len(r)
				t.content = b[start:end]
				t.full = b[:end+2]
				return t, r[2:], nil
			}
			if _, r, err = readTLV(r, depth+1); err != nil {
				return t, nil, err
			}
		}
	case l&0x80 != 0:
		n := l & 0x7f
		if n == 0 || n > 4 || i+n > len(b) {
			return t, nil, bad
		}
		l = 0
		for _, c := range b[i : i+n] {
			l = l<<8 | int(c)
		}
		i += n
	}
	if l < 0 || l > len(b)-i {
		return t, nil, bad
	}
	t.content = b[i : i+l]
	t.full = b[:i+l]
	return t, b[i+l:], nil
}

// CheckRecipient checks a certificate before stanzas are encrypted to it
// (Seal trusts the certificates it is given), the way Open checks a
// signer's: it must chain to Roots at Now (through intermediates, and
// the Certificates known out of band), name addr (an XMPP address,
// resources ignored; RFC 3923 §6.6), allow key encipherment if it
// restricts key usage (RFC 5750 §4.4.2), and be revoked neither by CRLs
// nor by its OCSP responder (ErrRevoked, ErrRevocationUnknown).
func (a *Agent) CheckRecipient(cert *x509.Certificate, addr string, intermediates ...*x509.Certificate) error {
	tr := a.trust()
	now := a.now()
	inter := x509.NewCertPool()
	certs := append(slices.Clone(intermediates), tr.extra...)
	for _, c := range certs {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: tr.roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("smime: recipient certificate: %w", err)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		return errors.New("smime: the recipient's key usage does not allow key encipherment")
	}
	j, err := route.ParseJID(addr)
	if err != nil {
		return fmt.Errorf("smime: recipient %q: %w", addr, err)
	}
	addrs, err := Addresses(cert)
	if err != nil {
		return err
	}
	if !namesSender(addrs, j) {
		return fmt.Errorf("smime: recipient certificate names %q, not %q", addrs, j.Bare().String())
	}
	return tr.checkRevoked(cert, certs, now)
}

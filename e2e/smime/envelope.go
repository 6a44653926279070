package smime

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// EnvelopedData (RFC 5652 §6) and AuthEnvelopedData (RFC 5083), both
// ways. github.com/smallstep/pkcs7 has neither AuthEnvelopedData nor
// AES-192 nor recipients named by subject key identifier, and its Decrypt
// does key transport and content decryption in one call, so both
// structures are read and written here with cryptobyte; crypto/rsa,
// crypto/aes, crypto/des and crypto/cipher do the cryptography.

// Object identifiers of the enveloping layer.
var (
	// id-ct-authEnvelopedData (RFC 5083 §1.1).
	oidAuthEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 23}

	// AES-192-CBC (RFC 3565 §4.1) and AES-GCM (RFC 5084 §3.2).
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES128GCM = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 6}
	oidAES192GCM = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 26}
	oidAES256GCM = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}

	// Key transport: rsaEncryption (PKCS #1 v1.5, RFC 3370 §4.2.1) and
	// id-RSAES-OAEP with its parameters (RFC 3560, RFC 8017 A.2.1).
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAESOAEP     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidPSpecified    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 9}
)

// Errors of the enveloping layer; they reach callers wrapped in an
// *e2e.Error (e2e.ErrDecryptionFailed).
var (
	// ErrUnsupportedCipher is the cause when EnvelopedData or
	// AuthEnvelopedData uses a content-encryption or key-transport
	// algorithm (or algorithm parameters) that this package refuses or
	// does not implement.
	ErrUnsupportedCipher = errors.New("smime: unsupported encryption algorithm")

	// ErrNotRecipient is the cause when no RecipientInfo is for the
	// agent's certificate.
	ErrNotRecipient = errors.New("smime: not encrypted for this certificate")

	// ErrAuthFailed is the cause when AuthEnvelopedData does not
	// authenticate (RFC 5083 §2.2): the encrypted content, the
	// authenticated attributes or the MAC were altered, or the key was
	// encrypted to another private key than the agent's.
	ErrAuthFailed = errors.New("smime: AuthEnvelopedData does not authenticate")
)

// contentAlgorithm is a content-encryption algorithm that can be opened.
type contentAlgorithm struct {
	oid      asn1.ObjectIdentifier
	keyLen   int
	gcm      bool // AES-GCM in AuthEnvelopedData; otherwise CBC in EnvelopedData
	newBlock func(key []byte) (cipher.Block, error)
}

// contentAlgorithms are those accepted on receipt. Single DES is not
// among them; neither is ChaCha20-Poly1305 (RFC 8103).
var contentAlgorithms = []contentAlgorithm{
	{oidAES128CBC, 16, false, aes.NewCipher},
	{oidAES192CBC, 24, false, aes.NewCipher},
	{oidAES256CBC, 32, false, aes.NewCipher},
	{oidDESEDE3CBC, 24, false, des.NewTripleDESCipher},
	{oidAES128GCM, 16, true, aes.NewCipher},
	{oidAES192GCM, 24, true, aes.NewCipher},
	{oidAES256GCM, 32, true, aes.NewCipher},
}

func contentAlgorithmOf(oid asn1.ObjectIdentifier) (contentAlgorithm, bool) {
	for _, a := range contentAlgorithms {
		if a.oid.Equal(oid) {
			return a, true
		}
	}
	return contentAlgorithm{}, false
}

// gcmNonceSize and gcmTagSize are what this package sends: the 12-byte
// nonce RFC 5084 §3.2 recommends and the longest ICV, as OpenSSL does.
const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// envelope is an EnvelopedData (RFC 5652 §6.1) or AuthEnvelopedData
// (RFC 5083 §2.1) as read from the wire or built to be sent. Byte slices
// that stand for optional fields are nil when the field is absent; those
// kept opaque hold DER.
type envelope struct {
	auth       bool // AuthEnvelopedData
	version    int64
	originator []byte // originatorInfo [0] IMPLICIT, contents
	recipients []recipientInfo

	// encryptedContentInfo (authEncryptedContentInfo)
	contentType asn1.ObjectIdentifier
	alg         asn1.ObjectIdentifier
	params      []byte // the algorithm's parameters, a whole element
	content     []byte // encryptedContent [0] IMPLICIT, joined if chunked

	authAttrs   []byte // AuthEnvelopedData authAttrs [1] IMPLICIT, contents
	mac         []byte // AuthEnvelopedData mac
	unprotected []byte // unprotectedAttrs [1] or unauthAttrs [2] IMPLICIT, contents
}

// recipientInfo is a RecipientInfo (RFC 5652 §6.2). Key transport
// (KeyTransRecipientInfo, §6.2.1) is read into fields; the other kinds
// (key agreement, KEK, password, other) are kept whole in other.
type recipientInfo struct {
	other []byte

	version      int64
	rid          []byte // RecipientIdentifier, a whole element
	keyAlg       asn1.ObjectIdentifier
	keyParams    []byte // a whole element; nil when absent
	encryptedKey []byte
}

// Context-specific tags: [0] primitive, and [0], [1], [2] constructed.
var (
	tagP0 = cbasn1.Tag(0).ContextSpecific()
	tagC0 = cbasn1.Tag(0).Constructed().ContextSpecific()
	tagC1 = cbasn1.Tag(1).Constructed().ContextSpecific()
	tagC2 = cbasn1.Tag(2).Constructed().ContextSpecific()
)

func (e *envelope) name() string {
	if e.auth {
		return "AuthEnvelopedData"
	}
	return "EnvelopedData"
}

// parseEnvelope reads a DER or BER ContentInfo holding EnvelopedData or
// AuthEnvelopedData. BER, as OpenSSL streams it (indefinite lengths, the
// content in 4096-byte OCTET STRING chunks), is made DER first.
func parseEnvelope(b []byte) (*envelope, error) {
	der, err := berToDER(b)
	if err != nil {
		return nil, err
	}
	in := cryptobyte.String(der)
	var ci cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() || !ci.ReadASN1ObjectIdentifier(&ct) {
		return nil, errors.New("smime: malformed CMS ContentInfo")
	}
	e := &envelope{}
	switch {
	case ct.Equal(oidEnvelopedData):
	case ct.Equal(oidAuthEnvelopedData):
		e.auth = true
	default:
		return nil, fmt.Errorf("smime: CMS content type %v is neither EnvelopedData nor AuthEnvelopedData", ct)
	}
	bad := fmt.Errorf("smime: malformed %s", e.name())
	var explicit, body, s, ris cryptobyte.String
	var present bool
	if !ci.ReadASN1(&explicit, tagC0) || !ci.Empty() ||
		!explicit.ReadASN1(&body, cbasn1.SEQUENCE) || !explicit.Empty() ||
		!body.ReadASN1Integer(&e.version) ||
		!body.ReadOptionalASN1(&s, &present, tagC0) {
		return nil, bad
	}
	if present {
		e.originator = nonNil(s)
	}
	if !body.ReadASN1(&ris, cbasn1.SET) || ris.Empty() {
		return nil, bad
	}
	for !ris.Empty() {
		var ri cryptobyte.String
		var tag cbasn1.Tag
		if !ris.ReadAnyASN1Element(&ri, &tag) {
			return nil, bad
		}
		r, err := parseRecipientInfo(ri, tag)
		if err != nil {
			return nil, err
		}
		e.recipients = append(e.recipients, r)
	}

	var eci, algID cryptobyte.String
	if !body.ReadASN1(&eci, cbasn1.SEQUENCE) ||
		!eci.ReadASN1ObjectIdentifier(&e.contentType) ||
		!eci.ReadASN1(&algID, cbasn1.SEQUENCE) ||
		!algID.ReadASN1ObjectIdentifier(&e.alg) {
		return nil, bad
	}
	if !algID.Empty() {
		var p cryptobyte.String
		if !algID.ReadAnyASN1Element(&p, nil) || !algID.Empty() {
			return nil, bad
		}
		e.params = p
	}
	switch {
	case eci.PeekASN1Tag(tagP0):
		if !eci.ReadASN1(&s, tagP0) {
			return nil, bad
		}
		e.content = nonNil(s)
	case eci.PeekASN1Tag(tagC0):
		// A constructed OCTET STRING under the implicit tag: chunks.
		if !eci.ReadASN1(&s, tagC0) {
			return nil, bad
		}
		e.content = []byte{}
		for !s.Empty() {
			var chunk cryptobyte.String
			if !s.ReadASN1(&chunk, cbasn1.OCTET_STRING) {
				return nil, bad
			}
			e.content = append(e.content, chunk...)
		}
	}
	if !eci.Empty() {
		return nil, bad
	}

	unprotectedTag := tagC1
	if e.auth {
		if !body.ReadOptionalASN1(&s, &present, tagC1) {
			return nil, bad
		}
		if present {
			e.authAttrs = nonNil(s)
		}
		if !body.ReadASN1Bytes(&e.mac, cbasn1.OCTET_STRING) {
			return nil, bad
		}
		unprotectedTag = tagC2
	}
	if !body.ReadOptionalASN1(&s, &present, unprotectedTag) || !body.Empty() {
		return nil, bad
	}
	if present {
		e.unprotected = nonNil(s)
	}
	return e, nil
}

// parseRecipientInfo reads one RecipientInfo, the element elem with tag.
func parseRecipientInfo(elem cryptobyte.String, tag cbasn1.Tag) (recipientInfo, error) {
	bad := errors.New("smime: malformed RecipientInfo")
	switch tag {
	case cbasn1.SEQUENCE: // ktri
	case cbasn1.Tag(1).Constructed().ContextSpecific(), // kari
		cbasn1.Tag(2).Constructed().ContextSpecific(), // kekri
		cbasn1.Tag(3).Constructed().ContextSpecific(), // pwri
		cbasn1.Tag(4).Constructed().ContextSpecific(): // ori
		return recipientInfo{other: elem}, nil
	default:
		return recipientInfo{}, bad
	}
	var r recipientInfo
	var ktri, rid, alg cryptobyte.String
	var ridTag cbasn1.Tag
	if !elem.ReadASN1(&ktri, cbasn1.SEQUENCE) ||
		!ktri.ReadASN1Integer(&r.version) ||
		!ktri.ReadAnyASN1Element(&rid, &ridTag) {
		return r, bad
	}
	switch ridTag {
	case cbasn1.SEQUENCE: // issuerAndSerialNumber
		var ias cryptobyte.String
		c := rid
		if !c.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.SkipASN1(cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(new(big.Int)) || !ias.Empty() {
			return r, bad
		}
	case tagP0: // subjectKeyIdentifier
	default:
		return r, bad
	}
	r.rid = rid
	if !ktri.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&r.keyAlg) {
		return r, bad
	}
	if !alg.Empty() {
		var p cryptobyte.String
		if !alg.ReadAnyASN1Element(&p, nil) || !alg.Empty() {
			return r, bad
		}
		r.keyParams = p
	}
	if !ktri.ReadASN1Bytes(&r.encryptedKey, cbasn1.OCTET_STRING) || !ktri.Empty() {
		return r, bad
	}
	return r, nil
}

// nonNil keeps a present but empty field apart from an absent one.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// marshal returns e as a DER ContentInfo.
func (e *envelope) marshal() ([]byte, error) {
	ct := oidEnvelopedData
	if e.auth {
		ct = oidAuthEnvelopedData
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(ct)
		b.AddASN1(tagC0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(e.version)
				if e.originator != nil {
					b.AddASN1(tagC0, addBytes(e.originator))
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for _, r := range e.recipients {
						der, err := r.marshal()
						if err != nil {
							b.SetError(err)
							return
						}
						b.AddBytes(der)
					}
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(e.contentType)
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(e.alg)
						b.AddBytes(e.params)
					})
					if e.content != nil {
						b.AddASN1(tagP0, addBytes(e.content))
					}
				})
				unprotectedTag := tagC1
				if e.auth {
					if e.authAttrs != nil {
						b.AddASN1(tagC1, addBytes(e.authAttrs))
					}
					b.AddASN1OctetString(e.mac)
					unprotectedTag = tagC2
				}
				if e.unprotected != nil {
					b.AddASN1(unprotectedTag, addBytes(e.unprotected))
				}
			})
		})
	})
	return b.Bytes()
}

// marshal returns r as DER.
func (r *recipientInfo) marshal() ([]byte, error) {
	if r.other != nil {
		return r.other, nil
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(r.version)
		b.AddBytes(r.rid)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(r.keyAlg)
			b.AddBytes(r.keyParams)
		})
		b.AddASN1OctetString(r.encryptedKey)
	})
	return b.Bytes()
}

func addBytes(v []byte) cryptobyte.BuilderContinuation {
	return func(b *cryptobyte.Builder) { b.AddBytes(v) }
}

// aad returns the associated data of the content encryption (RFC 5083
// §2.2): the DER authAttrs with the SET OF tag in place of the IMPLICIT
// [1], or nothing when there are none.
func (e *envelope) aad() ([]byte, error) {
	if e.authAttrs == nil {
		return nil, nil
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SET, addBytes(e.authAttrs))
	return b.Bytes()
}

// open decrypts e with the agent's certificate and key and returns the
// content. Algorithms and their parameters are checked before the key is
// used.
func (e *envelope) open(cert *x509.Certificate, key crypto.PrivateKey) ([]byte, error) {
	alg, ok := contentAlgorithmOf(e.alg)
	if !ok || alg.gcm != e.auth {
		// GCM inside EnvelopedData (github.com/smallstep/pkcs7 writes
		// it) has no MAC field: RFC 5083 §1 puts it in
		// AuthEnvelopedData. CBC there would not be authenticated.
		return nil, fmt.Errorf("%w: %v in %s", ErrUnsupportedCipher, e.alg, e.name())
	}
	if !e.contentType.Equal(oidData) {
		return nil, fmt.Errorf("smime: encrypted content type %v, not id-data", e.contentType)
	}
	if e.content == nil {
		return nil, fmt.Errorf("smime: %s without encrypted content", e.name())
	}
	var decrypt func(cipher.Block) ([]byte, error)
	if alg.gcm {
		aad, err := e.aad()
		if err != nil {
			return nil, err
		}
		nonce, icvLen, err := gcmParameters(e.params)
		if err != nil {
			return nil, err
		}
		if len(e.mac) != icvLen {
			return nil, fmt.Errorf("smime: mac of %d bytes, GCMParameters say %d", len(e.mac), icvLen)
		}
		if len(nonce) != gcmNonceSize && icvLen != gcmTagSize {
			// crypto/cipher takes an unusual nonce or an unusual tag
			// length, not both.
			return nil, fmt.Errorf("%w: a %d-byte GCM nonce with a %d-byte ICV", ErrUnsupportedCipher, len(nonce), icvLen)
		}
		decrypt = func(block cipher.Block) ([]byte, error) {
			var aead cipher.AEAD
			var err error
			if len(nonce) == gcmNonceSize {
				aead, err = cipher.NewGCMWithTagSize(block, icvLen)
			} else {
				aead, err = cipher.NewGCMWithNonceSize(block, len(nonce))
			}
			if err != nil {
				return nil, fmt.Errorf("smime: %w", err)
			}
			plain, err := aead.Open(nil, nonce, slices.Concat(e.content, e.mac), aad)
			if err != nil {
				return nil, ErrAuthFailed
			}
			return plain, nil
		}
	} else {
		var iv []byte
		p := cryptobyte.String(e.params)
		if !p.ReadASN1Bytes(&iv, cbasn1.OCTET_STRING) || !p.Empty() {
			return nil, errors.New("smime: malformed CBC parameters")
		}
		decrypt = func(block cipher.Block) ([]byte, error) {
			return openCBC(block, iv, e.content)
		}
	}
	if cert == nil || key == nil {
		return nil, errors.New("smime: no certificate and key to decrypt with")
	}
	r := e.recipientFor(cert)
	if r == nil {
		return nil, ErrNotRecipient
	}
	cek, err := r.unwrap(key, alg.keyLen)
	if err != nil {
		return nil, err
	}
	block, err := alg.newBlock(cek)
	if err != nil {
		return nil, fmt.Errorf("smime: %w", err)
	}
	return decrypt(block)
}

// gcmParameters reads GCMParameters (RFC 5084 §3.2): the nonce and the
// ICV length, 12 by default.
func gcmParameters(params []byte) (nonce []byte, icvLen int, err error) {
	bad := errors.New("smime: malformed GCMParameters")
	p := cryptobyte.String(params)
	var seq cryptobyte.String
	n := int64(12)
	if !p.ReadASN1(&seq, cbasn1.SEQUENCE) || !p.Empty() ||
		!seq.ReadASN1Bytes(&nonce, cbasn1.OCTET_STRING) {
		return nil, 0, bad
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) && !seq.ReadASN1Integer(&n) || !seq.Empty() {
		return nil, 0, bad
	}
	if n < 12 || n > 16 || len(nonce) == 0 {
		return nil, 0, fmt.Errorf("%w: GCM nonce of %d bytes, ICV of %d", ErrUnsupportedCipher, len(nonce), n)
	}
	return nonce, int(n), nil
}

// openCBC decrypts CBC content and removes its padding (RFC 5652 §6.3).
func openCBC(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	size := block.BlockSize()
	if len(iv) != size {
		return nil, fmt.Errorf("smime: CBC IV of %d bytes, want %d", len(iv), size)
	}
	if len(ciphertext) == 0 || len(ciphertext)%size != 0 {
		return nil, fmt.Errorf("smime: CBC content of %d bytes is not whole blocks", len(ciphertext))
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	// The last byte says how many bytes of padding there are, each
	// holding that value. Checked without branching on them.
	n := int(plain[len(plain)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, size)
	for i := 1; i <= size; i++ {
		same := subtle.ConstantTimeByteEq(plain[len(plain)-i], byte(n))
		good &= subtle.ConstantTimeSelect(subtle.ConstantTimeLessOrEq(i, n), same, 1)
	}
	if good != 1 {
		return nil, errors.New("smime: bad CBC padding (wrong key or altered content)")
	}
	return plain[:len(plain)-n], nil
}

// recipientFor returns the key transport RecipientInfo for cert: named by
// issuer and serial number, or by subject key identifier (`openssl cms
// -keyid`).
func (e *envelope) recipientFor(cert *x509.Certificate) *recipientInfo {
	ias, err := issuerAndSerial(cert)
	if err != nil {
		return nil
	}
	var ski []byte
	if len(cert.SubjectKeyId) > 0 {
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1(tagP0, addBytes(cert.SubjectKeyId))
		ski, _ = b.Bytes()
	}
	for i := range e.recipients {
		r := &e.recipients[i]
		if r.other == nil && (bytes.Equal(r.rid, ias) || ski != nil && bytes.Equal(r.rid, ski)) {
			return r
		}
	}
	return nil
}

// issuerAndSerial returns the IssuerAndSerialNumber (RFC 5652 §10.2.4) of
// cert.
func issuerAndSerial(cert *x509.Certificate) ([]byte, error) {
	if cert.SerialNumber == nil || len(cert.RawIssuer) == 0 {
		return nil, errors.New("smime: certificate without issuer or serial number")
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(cert.RawIssuer)
		b.AddASN1BigInt(cert.SerialNumber)
	})
	return b.Bytes()
}

// unwrap recovers the content-encryption key of keyLen bytes with the
// agent's RSA key.
func (r *recipientInfo) unwrap(key crypto.PrivateKey, keyLen int) ([]byte, error) {
	d, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, fmt.Errorf("smime: a %T cannot decrypt", key)
	}
	if _, ok := d.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("smime: key transport needs an RSA key, not %T", d.Public())
	}
	var opts crypto.DecrypterOpts
	switch {
	case r.keyAlg.Equal(oidRSAEncryption):
		// A bad padding yields a random key rather than an error, so
		// that it fails later like any wrong key: no padding oracle
		// (RFC 3218 §2.3.2). RFC 3923 §6.10 makes PKCS #1 v1.5 mandatory
		// although Go deprecates it.
		opts = &rsa.PKCS1v15DecryptOptions{SessionKeyLen: keyLen}
	case r.keyAlg.Equal(oidRSAESOAEP):
		o, err := oaepOptions(r.keyParams)
		if err != nil {
			return nil, err
		}
		opts = o
	default:
		return nil, fmt.Errorf("%w: key transport %v", ErrUnsupportedCipher, r.keyAlg)
	}
	cek, err := d.Decrypt(rand.Reader, r.encryptedKey, opts)
	if _, v15 := opts.(*rsa.PKCS1v15DecryptOptions); err != nil && v15 {
		// The same for a key encrypted to another modulus (one the
		// ciphertext exceeds): a random key, failing later like any
		// wrong key, and never an error that tells them apart.
		cek, err = make([]byte, keyLen), nil
		rand.Read(cek)
	}
	if err != nil {
		return nil, fmt.Errorf("smime: key transport: %w", err)
	}
	if len(cek) != keyLen {
		return nil, fmt.Errorf("smime: content-encryption key of %d bytes, want %d", len(cek), keyLen)
	}
	return cek, nil
}

// oaepOptions reads RSAES-OAEP-params (RFC 8017 A.2.1, RFC 4055 §4.1):
// SHA-1, MGF1 with SHA-1 and an empty label unless they say otherwise.
func oaepOptions(params []byte) (*rsa.OAEPOptions, error) {
	o := &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	p := cryptobyte.String(params)
	if len(p) == 0 || bytes.Equal(p, []byte{5, 0}) {
		return o, nil // absent, or NULL as some encoders write it
	}
	bad := errors.New("smime: malformed RSAES-OAEP parameters")
	var seq, f cryptobyte.String
	var present bool
	if !p.ReadASN1(&seq, cbasn1.SEQUENCE) || !p.Empty() {
		return nil, bad
	}
	if !seq.ReadOptionalASN1(&f, &present, tagC0) {
		return nil, bad
	}
	if present {
		h, err := hashAlgorithm(&f)
		if err != nil {
			return nil, err
		}
		if !f.Empty() {
			return nil, bad
		}
		o.Hash, o.MGFHash = h, h
	}
	if !seq.ReadOptionalASN1(&f, &present, tagC1) {
		return nil, bad
	}
	if present {
		var ai cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !f.ReadASN1(&ai, cbasn1.SEQUENCE) || !f.Empty() || !ai.ReadASN1ObjectIdentifier(&oid) {
			return nil, bad
		}
		if !oid.Equal(oidMGF1) {
			return nil, fmt.Errorf("%w: OAEP mask generation %v", ErrUnsupportedCipher, oid)
		}
		h, err := hashAlgorithm(&ai)
		if err != nil {
			return nil, err
		}
		if !ai.Empty() {
			return nil, bad
		}
		o.MGFHash = h
	}
	if !seq.ReadOptionalASN1(&f, &present, tagC2) {
		return nil, bad
	}
	if present {
		var ai cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !f.ReadASN1(&ai, cbasn1.SEQUENCE) || !f.Empty() || !ai.ReadASN1ObjectIdentifier(&oid) ||
			!oid.Equal(oidPSpecified) || !ai.ReadASN1Bytes(&o.Label, cbasn1.OCTET_STRING) || !ai.Empty() {
			return nil, bad
		}
	}
	if !seq.Empty() {
		return nil, bad
	}
	return o, nil
}

// hashAlgorithm reads the AlgorithmIdentifier of a hash, parameters
// absent or NULL.
func hashAlgorithm(s *cryptobyte.String) (crypto.Hash, error) {
	var ai cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&ai, cbasn1.SEQUENCE) || !ai.ReadASN1ObjectIdentifier(&oid) {
		return 0, errors.New("smime: malformed hash AlgorithmIdentifier")
	}
	if !ai.Empty() && (!ai.SkipASN1(cbasn1.NULL) || !ai.Empty()) {
		return 0, errors.New("smime: malformed hash AlgorithmIdentifier")
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if o, ok := hashOIDs[h]; ok && o.Equal(oid) && h.Available() {
			return h, nil
		}
	}
	return 0, fmt.Errorf("%w: hash %v in RSAES-OAEP parameters", ErrUnsupportedCipher, oid)
}

var hashOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1:   {1, 3, 14, 3, 2, 26},
	crypto.SHA224: {2, 16, 840, 1, 101, 3, 4, 2, 4},
	crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
	crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
	crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
}

// seal encrypts content for recipients with the algorithm alg (CBC in
// EnvelopedData, GCM in AuthEnvelopedData) under a fresh key that goes to
// each recipient by RSA PKCS #1 v1.5 key transport (RFC 3370 §4.2.1), the
// one every S/MIME agent takes. authAttrs, the DER contents of a SET OF
// Attribute, are authenticated with GCM; nil means none.
func seal(content []byte, recipients []*x509.Certificate, alg contentAlgorithm, authAttrs []byte) (*envelope, error) {
	cek := make([]byte, alg.keyLen)
	rand.Read(cek)
	block, err := alg.newBlock(cek)
	if err != nil {
		return nil, err
	}
	e := &envelope{auth: alg.gcm, contentType: oidData, alg: alg.oid, authAttrs: authAttrs}
	b := cryptobyte.NewBuilder(nil)
	if alg.gcm {
		aad, err := e.aad()
		if err != nil {
			return nil, err
		}
		// A random 12-byte nonce, prepended to what Seal returns.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, err
		}
		out := aead.Seal(nil, nil, content, aad)
		nonce, sealed := out[:gcmNonceSize], out[gcmNonceSize:]
		e.content, e.mac = sealed[:len(sealed)-gcmTagSize], sealed[len(sealed)-gcmTagSize:]
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(nonce)
			b.AddASN1Int64(gcmTagSize)
		})
	} else {
		size := block.BlockSize()
		iv := make([]byte, size)
		rand.Read(iv)
		n := size - len(content)%size
		e.content = append(slices.Clone(content), bytes.Repeat([]byte{byte(n)}, n)...)
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(e.content, e.content)
		b.AddASN1OctetString(iv)
	}
	if e.params, err = b.Bytes(); err != nil {
		return nil, err
	}
	type sorted struct {
		r   recipientInfo
		der []byte
	}
	var rs []sorted
	for _, cert := range recipients {
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("smime: recipient %q has a %T key; only RSA key transport is implemented", cert.Subject, cert.PublicKey)
		}
		rid, err := issuerAndSerial(cert)
		if err != nil {
			return nil, err
		}
		ek, err := rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
		if err != nil {
			return nil, err
		}
		r := recipientInfo{
			rid:          rid,
			keyAlg:       oidRSAEncryption,
			keyParams:    []byte{5, 0}, // NULL, as RFC 3370 §4.2.1 asks
			encryptedKey: ek,
		}
		der, err := r.marshal()
		if err != nil {
			return nil, err
		}
		rs = append(rs, sorted{r, der})
	}
	// DER puts the elements of a SET OF in the order of their encodings
	// (X.690 §11.6).
	slices.SortFunc(rs, func(x, y sorted) int { return bytes.Compare(x.der, y.der) })
	for _, s := range rs {
		e.recipients = append(e.recipients, s.r)
	}
	// Version 0 in both (RFC 5652 §6.1, RFC 5083 §2.1): issuerAndSerial
	// recipients only, no originatorInfo, no unprotected attributes.
	return e, nil
}

// berToDER re-encodes one BER element (X.690 §8) with definite, minimal
// lengths and low tag numbers where they fit, and every constructed
// OCTET STRING joined into a primitive one (§8.7.3): the DER that
// cryptobyte reads. The order of SET OF elements is kept.
func berToDER(b []byte) ([]byte, error) {
	t, rest, err := readTLV(b, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, errors.New("smime: data after the CMS object")
	}
	return appendDER(make([]byte, 0, len(b)), t, 0)
}

func appendDER(out []byte, t tlv, depth int) ([]byte, error) {
	if !t.constructed {
		return append(appendHeader(out, t.class, false, t.tag, len(t.content)), t.content...), nil
	}
	if t.class == 0 && t.tag == 4 {
		s, err := joinOctets(nil, t, depth)
		if err != nil {
			return nil, err
		}
		return append(appendHeader(out, 0, false, 4, len(s)), s...), nil
	}
	var body []byte
	for rest := t.content; len(rest) > 0; {
		var c tlv
		var err error
		if c, rest, err = readTLV(rest, depth+1); err != nil {
			return nil, err
		}
		if body, err = appendDER(body, c, depth+1); err != nil {
			return nil, err
		}
	}
	return append(appendHeader(out, t.class, true, t.tag, len(body)), body...), nil
}

// joinOctets appends the contents of an OCTET STRING, primitive or
// constructed, to out.
func joinOctets(out []byte, t tlv, depth int) ([]byte, error) {
	if !t.constructed {
		return append(out, t.content...), nil
	}
	for rest := t.content; len(rest) > 0; {
		var c tlv
		var err error
		if c, rest, err = readTLV(rest, depth+1); err != nil {
			return nil, err
		}
		if c.class != 0 || c.tag != 4 {
			return nil, errors.New("smime: constructed OCTET STRING holds something else")
		}
		if out, err = joinOctets(out, c, depth+1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendHeader appends the DER identifier and length octets; a primitive
// element's contents follow in the caller.
func appendHeader(out []byte, class int, constructed bool, tag, length int) []byte {
	id := byte(class << 6)
	if constructed {
		id |= 0x20
	}
	if tag < 0x1f {
		out = append(out, id|byte(tag))
	} else {
		out = append(out, id|0x1f)
		var n []byte
		for v := tag; ; v >>= 7 {
			n = append(n, byte(v&0x7f)|0x80)
			if v < 0x80 {
				break
			}
		}
		n[0] &^= 0x80
		slices.Reverse(n)
		out = append(out, n...)
	}
	if length < 0x80 {
		return append(out, byte(length))
	}
	var l []byte
	for v := length; v > 0; v >>= 8 {
		l = append(l, byte(v))
	}
	slices.Reverse(l)
	return append(append(out, 0x80|byte(len(l))), l...)
}

package smime

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/e2e"
	"github.com/s2sd/s2sd/route"
)

// DefaultMaxSize is the largest stanza Open and Seal accept when
// Agent.MaxSize is zero.
const DefaultMaxSize = 1 << 20

// Agent signs, encrypts and opens stanzas for one party, the holder of
// Certificate and PrivateKey. Set its fields before first use and do not
// change or copy it afterwards; its methods are safe for concurrent use.
// The zero value verifies signatures against the system roots and can
// neither sign nor decrypt: Certificate and PrivateKey are needed for that.
type Agent struct {
	// Certificate is the agent's end-entity certificate. It signs, goes
	// with every signature (RFC 3923 §6.6 allows no less), and picks the
	// RecipientInfo when decrypting.
	Certificate *x509.Certificate

	// Intermediates are CA certificates sent with each signature so that
	// receivers can build the chain to their roots.
	Intermediates []*x509.Certificate

	// PrivateKey goes with Certificate. Decryption needs an RSA key (a
	// crypto.Decrypter); signing takes RSA or ECDSA.
	PrivateKey crypto.PrivateKey

	// Roots are the trust anchors for signers' certificates. Nil means the
	// system roots.
	Roots *x509.CertPool

	// Certificates are signer and intermediate certificates known out of
	// band, for signatures that leave them out.
	Certificates []*x509.Certificate

	// CRLs are certificate revocation lists (RFC 5280 §5). Every
	// certificate of a signer's chain below its root is looked up in the
	// lists its issuer signed; one listed as revoked fails the signature
	// with e2e.ErrSignatureUnverified. Lists are used as given: none is
	// fetched (CRL distribution points, OCSP), and a list past its
	// NextUpdate still counts, revoking what it names.
	CRLs []*x509.RevocationList

	// OCSP, when set, asks the OCSP responders that the certificates of a
	// signer's chain name (see OCSP).
	OCSP *OCSP

	// Cipher encrypts the content. The zero value is AES128CBC, the
	// algorithm RFC 3923 §6.10 makes mandatory.
	Cipher Cipher

	// Hash is the signature digest. Zero means crypto.SHA256; SHA-1, the
	// RFC's mandatory algorithm, is accepted on input whatever this is.
	Hash crypto.Hash

	// RequireSignature makes Open refuse stanzas that are encrypted but not
	// signed (RFC 3923 §6.8 says senders SHOULD sign) with
	// e2e.ErrSignatureUnverified. Otherwise they are opened with
	// Result.Signed false and no sender check, since nothing authenticates
	// the sender.
	RequireSignature bool

	// Now returns the current time. Nil means time.Now. Timestamps are
	// made and checked (RFC 3923 §6.9) and certificate chains verified with
	// it.
	Now func() time.Time

	// MaxSize is the largest stanza accepted, in bytes. Zero means
	// DefaultMaxSize.
	MaxSize int

	// ReplayCacheSize is the number of senders whose last timestamp is
	// remembered for ReplayWindow. Zero means DefaultReplayCacheSize.
	ReplayCacheSize int

	mu       sync.Mutex
	lastSent time.Time
	replay   replayCache
}

// Form says how a stanza becomes the object that is signed or encrypted.
type Form int

// Forms of the protected object.
const (
	// FormAuto follows RFC 3923: a message becomes a Message/CPIM object
	// (§3), presence a PIDF document (§4), an iq an application/xmpp+xml
	// document inside a Message/CPIM object (§5).
	FormAuto Form = iota

	// FormStanza secures any stanza whole, as an application/xmpp+xml
	// document inside a Message/CPIM object (§5): the way to protect
	// extension elements that do not map to CPIM or PIDF.
	FormStanza
)

// SealOptions says what Seal does. Sign, encrypt, or both; with both the
// object is signed first, then encrypted (RFC 3923 §6.5).
type SealOptions struct {
	Sign       bool
	Recipients []*x509.Certificate // encrypt to these; none means no encryption
	Form       Form
}

// Opened is a stanza that Open decrypted and verified.
type Opened struct {
	e2e.Result

	// Stanza is the stanza rebuilt from the protected object: the received
	// start tag (its from, to, type, id) with the children recovered from
	// the object, or for application/xmpp+xml the protected stanza itself.
	// Unprotected children of the received stanza are dropped.
	Stanza []byte

	// ContentType is the media type of the protected object, lower case:
	// "message/cpim", "application/pidf+xml" or "application/xmpp+xml".
	ContentType string

	// Object is the protected object's body: the Message/CPIM object
	// without its MIME header, or the PIDF or XMPP document.
	Object []byte

	// Chain is the signer's certificate followed by the certificates that
	// came with the signature; nil when unsigned.
	Chain []*x509.Certificate
}

// Sign signs stanza (RFC 3923 §3, §4, §5) and returns the stanza with the
// multipart/signed object in its <e2e/> child.
func (a *Agent) Sign(stanza []byte) ([]byte, error) {
	return a.Seal(stanza, SealOptions{Sign: true})
}

// Encrypt encrypts stanza for the recipients and returns the stanza with
// the application/pkcs7-mime object in its <e2e/> child. The result is
// not signed; RFC 3923 §6.8 says it SHOULD be: see SignAndEncrypt.
func (a *Agent) Encrypt(stanza []byte, recipients ...*x509.Certificate) ([]byte, error) {
	return a.Seal(stanza, SealOptions{Recipients: recipients})
}

// SignAndEncrypt signs stanza, then encrypts the signed object for the
// recipients (RFC 3923 §6.5).
func (a *Agent) SignAndEncrypt(stanza []byte, recipients ...*x509.Certificate) ([]byte, error) {
	return a.Seal(stanza, SealOptions{Sign: true, Recipients: recipients})
}

// Seal turns stanza into a secured stanza as opts say: the protected object
// is built (Message/CPIM, PIDF or application/xmpp+xml, with a fresh UTC
// timestamp), signed into multipart/signed, encrypted into
// application/pkcs7-mime EnvelopedData (AuthEnvelopedData when
// Agent.Cipher is a GCM one), and put in a CDATA section of an
// <e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/> that replaces the
// stanza's children. The start tag is kept as it is.
func (a *Agent) Seal(stanza []byte, opts SealOptions) ([]byte, error) {
	if !opts.Sign && len(opts.Recipients) == 0 {
		return nil, errors.New("smime: seal: neither signing nor encrypting")
	}
	if len(stanza) > a.maxSize() {
		return nil, fmt.Errorf("smime: seal: stanza of %d bytes, limit %d", len(stanza), a.maxSize())
	}
	s, err := parseStanza(stanza)
	if err != nil {
		return nil, err
	}
	if s.hasE2E {
		return nil, errors.New("smime: seal: stanza is already secured")
	}
	obj, err := a.object(s, opts.Form)
	if err != nil {
		return nil, err
	}
	ent, err := parseEntity(obj)
	if err != nil {
		return nil, err
	}
	entity := obj
	if opts.Sign {
		h := a.hash()
		_, micalg, err := digestOID(h)
		if err != nil {
			return nil, err
		}
		entity, err = buildSigned(ent, micalg, func(b []byte) ([]byte, error) {
			return signDetached(b, a.Certificate, a.Intermediates, a.PrivateKey, h)
		})
		if err != nil {
			return nil, err
		}
	} else {
		entity = canonical(entity)
	}
	if len(opts.Recipients) > 0 {
		der, err := encrypt(entity, opts.Recipients, a.Cipher)
		if err != nil {
			return nil, err
		}
		entity = buildPKCS7MIME(a.Cipher.smimeType(), der)
	}
	return s.secured(entity), nil
}

// Open decrypts and verifies a secured stanza (RFC 3923 §3 to §7). It
// returns an *e2e.Error for the failures of §7: e2e.ErrDecryptionFailed
// when the object cannot be decrypted (or is not S/MIME at all),
// e2e.ErrSignatureUnverified when a signature, its certificate chain, or
// the match between certificate and sender fails, e2e.ErrBadTimestamp when
// the timestamp is missing, not UTC, more than five minutes off, or not
// greater than the sender's last one (replay), and e2e.ErrServiceUnavailable
// for an object this package does not understand. The cause is wrapped:
// errors.Is(err, ErrOldTimestamp) tells an old timestamp, errors.As with a
// *SenderMismatchError a certificate that names someone else.
// ErrorReply builds the stanza to send back. A stanza without <e2e/>
// gives ErrNotSecured.
func (a *Agent) Open(stanza []byte) (*Opened, error) {
	if len(stanza) > a.maxSize() {
		return nil, e2e.Wrap(e2e.ErrServiceUnavailable, fmt.Errorf("smime: stanza of %d bytes, limit %d", len(stanza), a.maxSize()))
	}
	s, err := parseStanza(stanza)
	if err != nil {
		return nil, err
	}
	if !s.hasE2E {
		return nil, ErrNotSecured
	}
	return a.open(s, a.now())
}

// open opens the content of the <e2e/> of s.
func (a *Agent) open(s *stanza, now time.Time) (*Opened, error) {
	ent, err := topEntity(s.e2eText)
	if err != nil {
		return nil, e2e.Wrap(e2e.ErrDecryptionFailed, err)
	}
	o := &Opened{}
	for layer := 0; ; layer++ {
		if layer > 2 {
			return nil, e2e.Wrap(e2e.ErrServiceUnavailable, errors.New("smime: too many S/MIME layers"))
		}
		switch ent.mediaType {
		case typeSigned:
			if o.Signed {
				return nil, e2e.Wrap(e2e.ErrSignatureUnverified, errors.New("smime: nested signatures"))
			}
			signed, sig, err := splitSigned(ent)
			if err != nil {
				return nil, e2e.Wrap(e2e.ErrSignatureUnverified, err)
			}
			v, err := a.verifyDetached(sig, signed, now)
			if err != nil {
				return nil, e2e.Wrap(e2e.ErrSignatureUnverified, err)
			}
			if ent, err = parseEntity(v.content); err != nil {
				return nil, e2e.Wrap(e2e.ErrServiceUnavailable, err)
			}
			o.Signed, o.Chain = true, v.chain
		case typePKCS7MIME, typePKCS7MIMEX:
			der, err := decodeBody(ent)
			if err != nil {
				return nil, e2e.Wrap(e2e.ErrDecryptionFailed, err)
			}
			ct, err := contentType(der)
			if err != nil {
				return nil, e2e.Wrap(e2e.ErrDecryptionFailed, err)
			}
			switch {
			case ct.Equal(oidEnvelopedData), ct.Equal(oidAuthEnvelopedData):
				if o.Encrypted {
					return nil, e2e.Wrap(e2e.ErrDecryptionFailed, errors.New("smime: nested encryption"))
				}
				plain, err := decrypt(der, a.Certificate, a.PrivateKey)
				if err != nil {
					return nil, e2e.Wrap(e2e.ErrDecryptionFailed, err)
				}
				if ent, err = parseEntity(plain); err != nil {
					return nil, e2e.Wrap(e2e.ErrDecryptionFailed, err)
				}
				o.Encrypted = true
			case ct.Equal(oidSignedData):
				// Opaque signing (RFC 5751 §3.4.2), as `openssl cms
				// -sign -nodetach` writes it.
				if o.Signed {
					return nil, e2e.Wrap(e2e.ErrSignatureUnverified, errors.New("smime: nested signatures"))
				}
				v, err := verify(der, nil, a.trust(), now)
				if err != nil {
					return nil, e2e.Wrap(e2e.ErrSignatureUnverified, err)
				}
				if ent, err = parseEntity(canonical(v.content)); err != nil {
					return nil, e2e.Wrap(e2e.ErrServiceUnavailable, err)
				}
				o.Signed, o.Chain = true, v.chain
			default:
				return nil, e2e.Wrap(e2e.ErrServiceUnavailable, fmt.Errorf("smime: CMS content type %v", ct))
			}
		case typeCPIM, typePIDF, typeXMPP:
			return a.openObject(s, ent, o, now)
		default:
			err := fmt.Errorf("smime: object of type %q", ent.mediaType)
			if !o.Signed && !o.Encrypted {
				// Not S/MIME at all: nothing this agent could decrypt.
				return nil, e2e.Wrap(e2e.ErrDecryptionFailed, err)
			}
			return nil, e2e.Wrap(e2e.ErrServiceUnavailable, err)
		}
	}
}

// openObject checks the protected object: the signer against the senders
// it names, then the timestamp (RFC 3923 §6.6, §6.9), and rebuilds the
// stanza.
func (a *Agent) openObject(s *stanza, ent *entity, o *Opened, now time.Time) (*Opened, error) {
	obj, err := readObject(s, ent)
	if err != nil {
		return nil, e2e.Wrap(e2e.ErrServiceUnavailable, err)
	}
	o.ContentType, o.Object, o.Stanza = ent.mediaType, obj.body, obj.stanza
	if !o.Signed {
		if a.RequireSignature {
			return nil, e2e.Wrap(e2e.ErrSignatureUnverified, ErrUnsigned)
		}
	} else {
		signer, err := checkSender(s.attr("from"), obj.senders, o.Chain[0])
		if err != nil {
			return nil, e2e.Wrap(e2e.ErrSignatureUnverified, err)
		}
		sum := sha256.Sum256(o.Chain[0].Raw)
		o.Signer, o.KeyID = signer, hex.EncodeToString(sum[:])
	}
	if obj.time.IsZero() {
		return nil, e2e.Wrap(e2e.ErrBadTimestamp, ErrNoTimestamp)
	}
	if obj.time.Location() != time.UTC {
		return nil, e2e.Wrap(e2e.ErrBadTimestamp, fmt.Errorf("%w: %s", ErrNotUTC, obj.time.Format(time.RFC3339Nano)))
	}
	if err := checkWindow(obj.time, now); err != nil {
		return nil, e2e.Wrap(e2e.ErrBadTimestamp, err)
	}
	// Only verified senders are remembered: an unsigned stanza could
	// otherwise push a victim's last timestamp into the future.
	if o.Signed {
		if err := a.replay.accept(o.Signer, obj.time, now, a.replayCacheSize()); err != nil {
			return nil, e2e.Wrap(e2e.ErrBadTimestamp, err)
		}
	}
	o.Time = obj.time
	return o, nil
}

// ErrUnsigned is the cause of e2e.ErrSignatureUnverified when an agent
// with RequireSignature opens a stanza that is not signed.
var ErrUnsigned = errors.New("smime: stanza is not signed")

// checkSender returns the bare address of the sender that cert names. The
// sender is the stanza's 'from' (RFC 3923 §6.6), or when it has none the
// first address the object names; every address the object names (CPIM
// From, PIDF entity, the from of an application/xmpp+xml stanza) must be
// named by cert too.
func checkSender(from string, claimed []string, cert *x509.Certificate) (string, error) {
	addrs, err := Addresses(cert)
	if err != nil {
		return "", err
	}
	all := claimed
	if from != "" {
		all = append([]string{from}, claimed...)
	}
	if len(all) == 0 {
		return "", errors.New("smime: no sender to match the certificate against")
	}
	var sender jid.JID
	for i, c := range all {
		j, err := route.ParseJID(c)
		if err != nil {
			return "", fmt.Errorf("smime: sender %q: %w", c, err)
		}
		if !namesSender(addrs, j) {
			return "", &SenderMismatchError{Sender: j.Bare().String(), Addresses: addrs}
		}
		if i == 0 {
			sender = j.Bare()
		}
	}
	return sender.String(), nil
}

// verifyDetached checks a multipart/signed signature over the first part.
// XML delivers that part with LF line ends, so the CRLF form is checked
// first, then the bytes as received.
func (a *Agent) verifyDetached(sig, signed []byte, now time.Time) (verified, error) {
	c := canonical(signed)
	v, err := verify(sig, c, a.trust(), now)
	var mismatch *pkcs7.MessageDigestMismatchError
	if errors.As(err, &mismatch) && !bytes.Equal(c, signed) {
		if v2, err2 := verify(sig, signed, a.trust(), now); err2 == nil {
			return v2, nil
		}
	}
	return v, err
}

// topEntity reads the content of <e2e/>: a MIME entity, or as in RFC 3923
// Examples 6 and 12 a bare base64 CMS object with no MIME header.
func topEntity(text []byte) (*entity, error) {
	text = bytes.TrimSpace(text)
	if len(text) == 0 {
		return nil, errors.New("smime: empty <e2e/>")
	}
	if looksLikeHeader(text) {
		return parseEntity(text)
	}
	der, err := decodeBase64(text)
	if err != nil {
		return nil, err
	}
	return &entity{
		header:    map[string][]string{"Content-Transfer-Encoding": {"binary"}},
		mediaType: typePKCS7MIME,
		params:    map[string]string{},
		body:      der,
	}, nil
}

// looksLikeHeader reports whether b starts with a header field name and a
// colon; base64 has no colon.
func looksLikeHeader(b []byte) bool {
	for i, c := range b {
		switch {
		case c == ':':
			return i > 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return false
}

// address returns the first XMPP address of the agent's certificate.
func (a *Agent) address() string {
	if a.Certificate == nil {
		return ""
	}
	if addrs, err := Addresses(a.Certificate); err == nil && len(addrs) > 0 {
		return addrs[0]
	}
	return ""
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) hash() crypto.Hash {
	if a.Hash == 0 {
		return crypto.SHA256
	}
	return a.Hash
}

func (a *Agent) maxSize() int {
	if a.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return a.MaxSize
}

func (a *Agent) replayCacheSize() int {
	if a.ReplayCacheSize <= 0 {
		return DefaultReplayCacheSize
	}
	return a.ReplayCacheSize
}

// roots returns the trust anchors; never nil, since pkcs7 would then skip
// the chain.
func (a *Agent) roots() *x509.CertPool {
	if a.Roots != nil {
		return a.Roots
	}
	if p, err := x509.SystemCertPool(); err == nil && p != nil {
		return p
	}
	return x509.NewCertPool()
}

// timestamp returns the DateTime for the next object: the current UTC time
// in milliseconds, made greater than the last one sent (RFC 3923 §6.9: "if
// the clock repeats, increment the fractional part").
func (a *Agent) timestamp() time.Time {
	t := a.now().UTC().Truncate(time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !t.After(a.lastSent) {
		t = a.lastSent.Add(time.Millisecond)
	}
	a.lastSent = t
	return t
}

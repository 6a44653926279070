package openpgp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	pgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// A Signature is a verified XEP-0027 signature. It is only returned when the
// signature is good and made by a key in Config.Keys.
type Signature struct {
	// Signer is the key (certificate) that made the signature; never nil.
	// XEP-0027 §3: encrypt messages to this key.
	Signer *Key
	// KeyID is the ID of the key that signed: the primary key or a signing
	// subkey of Signer.
	KeyID uint64
	// Algorithm is the public key algorithm of the signature ("EdDSA",
	// "RSA", ...).
	Algorithm string
	// Hash is the hash algorithm ("SHA-256", ...).
	Hash string
	// Text reports a text signature (type 0x01), computed over the text
	// with line endings canonicalised to CRLF; false means a binary
	// signature (type 0x00), computed over the exact bytes.
	Text bool
	// Created is the signature creation time the signer claims.
	Created time.Time
}

// SignStatus makes a detached text signature over text (the character data
// of <status/>, XEP-0027 §2; it may be empty) and returns it in wire form,
// the content of <x xmlns='jabber:x:signed'/>.
//
// The text is signed as an XML parser will hand it to the receiver: line
// breaks normalised as XML 1.0 §2.11 does (CRLF and a lone CR become LF).
// The text signature then makes CRLF and LF equivalent, so the text may be
// sent raw or with CR escaped as &#xD;.
func (c *Config) SignStatus(text string) (string, error) {
	return c.sign(normalizeNewlines(text))
}

// sign makes a detached text signature over text as it is.
func (c *Config) sign(text string) (string, error) {
	if len(text) > c.maxSize() {
		return "", fmt.Errorf("%w: text is %d bytes, limit %d", ErrTooLarge, len(text), c.maxSize())
	}
	k, subkey, err := c.signer()
	if err != nil {
		return "", err
	}
	pc := c.packetConfig()
	pc.SigningKeyId = subkey
	var buf bytes.Buffer
	err = pgp.DetachSignWithParams(&buf, []*pgp.Entity{k.entity}, strings.NewReader(text), &pgp.SignParams{
		TextSig: true,
		Config:  pc,
	})
	if err != nil {
		return "", keyError("signing", k, err)
	}
	return encodeWire(buf.Bytes()), nil
}

// signer picks the key that signs and the ID of its signing (sub)key.
func (c *Config) signer() (*Key, uint64, error) {
	pc := c.packetConfig()
	now := c.now()
	var candidates []*Key
	var wantID uint64
	if c.Signer != "" {
		k, err := c.Keys.Lookup(c.Signer)
		if err != nil {
			return nil, 0, err
		}
		if !k.Secret {
			return nil, 0, fmt.Errorf("%w: signer %s has no secret key", ErrNoKey, k)
		}
		if id := strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(c.Signer, "0x"), "0X")); len(id) == 16 && isHex(id) {
			wantID = mustParseHex(id)
		}
		candidates = []*Key{k}
	} else {
		for _, k := range c.Keys.Keys() {
			if k.Secret {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			return nil, 0, fmt.Errorf("%w: no secret key to sign with", ErrNoKey)
		}
	}
	var firstErr error
	for _, k := range candidates {
		if err := c.checkAlgo(k.entity.PrimaryKey.PubKeyAlgo, "signing key "+k.Fingerprint); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if wantID == k.KeyID {
			wantID = 0 // the primary: let go-crypto pick its signing key
		}
		sk, ok := k.entity.SigningKeyById(now, wantID, pc)
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: key %s has no valid signing key", ErrNoKey, k)
			}
			continue
		}
		if err := c.checkAlgo(sk.PublicKey.PubKeyAlgo, fmt.Sprintf("signing key %016X", sk.PublicKey.KeyId)); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if sk.PrivateKey == nil || sk.PrivateKey.Dummy() {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: key %s: no secret part for signing key %016X", ErrNoKey, k, sk.PublicKey.KeyId)
			}
			continue
		}
		return k, sk.PublicKey.KeyId, nil
	}
	return nil, 0, firstErr
}

// VerifyStatus verifies wire, the content of <x xmlns='jabber:x:signed'/>,
// as a detached signature over text, the character data of <status/> as the
// XML parser returned it (XEP-0027 §2).
//
// The signature is checked over text as given and, if that fails, it is a
// text signature and text holds a CR, over text with line breaks normalised
// as SignStatus does.
// (A signature made by another program over text with a lone CR does not
// survive XML parsing, which turns that CR into LF.)
//
// A good signature by a key in Config.Keys returns a Signature. Otherwise
// the error matches ErrMalformed (armor, CRC, packets), ErrRefused (policy),
// ErrUnknownKey (the signer is not in Keys; it is an *UnknownKeyError) or
// ErrBadSignature.
func (c *Config) VerifyStatus(text, wire string) (*Signature, error) {
	if len(text) > c.maxSize() {
		return nil, fmt.Errorf("%w: text is %d bytes, limit %d", ErrTooLarge, len(text), c.maxSize())
	}
	data, err := decodeWire(wire, SignatureBlock, c.maxSize())
	if err != nil {
		return nil, err
	}
	sig, err := parseSignature(data)
	if err != nil {
		return nil, err
	}
	s, err := c.verify(sig, data, strings.NewReader(text))
	if errors.Is(err, ErrBadSignature) && sig.SigType == packet.SigTypeText && strings.Contains(text, "\r") {
		if s2, err2 := c.verify(sig, data, strings.NewReader(normalizeNewlines(text))); err2 == nil {
			return s2, nil
		}
	}
	return s, err
}

// normalizeNewlines does what XML 1.0 §2.11 end-of-line handling does:
// CRLF and lone CR become LF.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// parseSignature parses data as exactly one signature packet.
func parseSignature(data []byte) (*packet.Signature, error) {
	if err := checkV3(data); err != nil {
		return nil, err
	}
	packets := packet.NewReader(bytes.NewReader(data))
	var sig *packet.Signature
	for {
		p, err := packets.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, packetError("signature", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, malformed("expected a signature packet, found %T", p)
		}
		if sig != nil {
			return nil, malformed("more than one signature packet")
		}
		sig = s
	}
	if sig == nil {
		return nil, malformed("no signature packet")
	}
	return sig, nil
}

// verify checks sig, whose serialised packets are data, over signed.
func (c *Config) verify(sig *packet.Signature, data []byte, signed io.Reader) (*Signature, error) {
	if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
		return nil, malformed("signature type 0x%02X is not a document signature", uint8(sig.SigType))
	}
	if err := c.checkHash(sig.Hash); err != nil {
		return nil, err
	}
	if err := c.checkAlgo(sig.PubKeyAlgo, "signature"); err != nil {
		return nil, err
	}
	id, fp := issuer(sig)
	k := c.Keys.byKeyID(id)
	if k == nil {
		return nil, &UnknownKeyError{KeyID: id, Fingerprint: fp}
	}
	if err := c.checkAlgo(k.entity.PrimaryKey.PubKeyAlgo, "signer key "+k.Fingerprint); err != nil {
		return nil, err
	}
	_, _, err := pgp.VerifyDetachedSignature(pgp.EntityList{k.entity}, signed, bytes.NewReader(data), c.packetConfig())
	if err != nil {
		return nil, verifyError(k, id, err)
	}
	return &Signature{
		Signer:    k,
		KeyID:     id,
		Algorithm: algoName(sig.PubKeyAlgo),
		Hash:      sig.Hash.String(),
		Text:      sig.SigType == packet.SigTypeText,
		Created:   sig.CreationTime,
	}, nil
}

// issuer returns the key ID and fingerprint (hex, or "") of sig's issuer.
func issuer(sig *packet.Signature) (uint64, string) {
	var fp string
	if len(sig.IssuerFingerprint) > 0 {
		fp = fmt.Sprintf("%X", sig.IssuerFingerprint)
	}
	if sig.IssuerKeyId != nil {
		return *sig.IssuerKeyId, fp
	}
	if n := len(sig.IssuerFingerprint); n >= 8 {
		// v4 fingerprint: the key ID is its low 64 bits.
		return binary.BigEndian.Uint64(sig.IssuerFingerprint[n-8:]), fp
	}
	return 0, fp
}

// verifyError turns a go-crypto verification error into one of ours.
func verifyError(k *Key, id uint64, err error) error {
	var weak pgperrors.WeakAlgorithmError
	switch {
	case errors.As(err, &weak):
		return refused(fmt.Sprintf("signer key %s: %v", k.Fingerprint, err), "")
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return &UnknownKeyError{KeyID: id}
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return fmt.Errorf("%w: signer key %s is revoked", ErrBadSignature, k)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return fmt.Errorf("%w: signer key %s had expired", ErrBadSignature, k)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return fmt.Errorf("%w: signature by %s has expired", ErrBadSignature, k)
	}
	if msg := err.Error(); strings.Contains(msg, "insecure") {
		return refused(fmt.Sprintf("signer key %s: %s", k.Fingerprint, msg), "")
	}
	return fmt.Errorf("%w: signer key %s (subkey %016X): %v", ErrBadSignature, k, id, err)
}

// packetError turns a packet parsing error into one of ours.
func packetError(what string, err error) error {
	var unsup pgperrors.UnsupportedError
	if errors.As(err, &unsup) {
		return refused(fmt.Sprintf("%s: %v", what, err), "")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("%s: truncated OpenPGP data", what)
	}
	return malformed("%s: %v", what, err)
}

// checkV3 refuses a v3 signature packet (XEP-0027's example is one; go-crypto
// does not parse them) with an error that says who made it.
func checkV3(data []byte) error {
	tag, body, ok := firstPacket(data)
	if !ok || tag != 2 || len(body) < 19 || body[0] != 3 {
		return nil
	}
	// RFC 4880 §5.2.2: version, 5, type, time(4), key ID(8), pk algo, hash algo.
	created := time.Unix(int64(binary.BigEndian.Uint32(body[3:7])), 0).UTC()
	id := binary.BigEndian.Uint64(body[7:15])
	return refused(fmt.Sprintf("v3 signature (key %016X, %s, hash algorithm %d, made %s) is not supported",
		id, algoName(packet.PublicKeyAlgorithm(body[15])), body[16], created.Format(time.DateOnly)), "")
}

// firstPacket returns the tag and the body of the first packet in data when
// it has a definite length (RFC 4880 §4.2).
func firstPacket(data []byte) (tag byte, body []byte, ok bool) {
	if len(data) < 2 || data[0]&0x80 == 0 {
		return 0, nil, false
	}
	ctb := data[0]
	var n, hdr int
	if ctb&0x40 != 0 { // new format
		tag = ctb & 0x3f
		switch l := int(data[1]); {
		case l < 192:
			n, hdr = l, 2
		case l < 224 && len(data) >= 3:
			n, hdr = (l-192)<<8+int(data[2])+192, 3
		case l == 255 && len(data) >= 6:
			n, hdr = int(binary.BigEndian.Uint32(data[2:6])), 6
		default:
			return 0, nil, false
		}
	} else { // old format
		tag = (ctb >> 2) & 0xf
		switch ctb & 3 {
		case 0:
			n, hdr = int(data[1]), 2
		case 1:
			if len(data) < 3 {
				return 0, nil, false
			}
			n, hdr = int(binary.BigEndian.Uint16(data[1:3])), 3
		case 2:
			if len(data) < 5 {
				return 0, nil, false
			}
			n, hdr = int(binary.BigEndian.Uint32(data[1:5])), 5
		default:
			return 0, nil, false
		}
	}
	if n < 0 || hdr+n > len(data) {
		return 0, nil, false
	}
	return tag, data[hdr : hdr+n], true
}

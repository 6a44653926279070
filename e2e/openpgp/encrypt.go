package openpgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	pgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// A Message is a decrypted XEP-0027 body.
type Message struct {
	// Body is the plaintext: the character data of the original <body/>.
	// Line endings of a text-mode literal (`gpg --textmode`) are turned
	// from CRLF into LF; a binary literal is returned as it is.
	Body string
	// Recipient is our key that decrypted the message; RecipientKeyID is
	// the ID of the (sub)key the session key was encrypted to.
	Recipient      *Key
	RecipientKeyID uint64
	// Signature is set when the encrypted data was also signed
	// (`gpg --sign --encrypt`); XEP-0027 messages usually are not. It is
	// never set for a signature that does not verify: that is an error.
	Signature *Signature
	// Unprotected reports encrypted data without MDC, accepted only with
	// Config.AllowNoMDC.
	Unprotected bool
}

// EncryptBody encrypts body (the character data of <body/>, XEP-0027 §3) to
// the keys to and returns the wire form, the content of
// <x xmlns='jabber:x:encrypted'/>. The data is SEIPD v1 (with MDC), which
// GnuPG 2.2 reads, unless every recipient advertises SEIPD v2.
func (c *Config) EncryptBody(body string, to ...*Key) (string, error) {
	if len(body) > c.maxSize() {
		return "", fmt.Errorf("%w: body is %d bytes, limit %d", ErrTooLarge, len(body), c.maxSize())
	}
	if len(to) == 0 {
		return "", fmt.Errorf("%w: no recipient", ErrNoKey)
	}
	pc := c.packetConfig()
	// Find each recipient's encryption key with a permissive policy first,
	// so that a refusal names the key and the Config field.
	lax := c.packetConfig()
	lax.RejectPublicKeyAlgorithms = map[packet.PublicKeyAlgorithm]bool{}
	now := c.now()
	entities := make([]*pgp.Entity, len(to))
	for i, k := range to {
		if k == nil || k.entity == nil {
			return "", fmt.Errorf("%w: nil recipient", ErrNoKey)
		}
		if err := c.checkAlgo(k.entity.PrimaryKey.PubKeyAlgo, "recipient key "+k.Fingerprint); err != nil {
			return "", err
		}
		ek, err := k.entity.EncryptionKeyWithError(now, lax)
		if err != nil {
			return "", keyError("encrypting", k, err)
		}
		if err := c.checkAlgo(ek.PublicKey.PubKeyAlgo, fmt.Sprintf("recipient key %s subkey %016X", k.Fingerprint, ek.PublicKey.KeyId)); err != nil {
			return "", err
		}
		entities[i] = k.entity
	}
	var buf bytes.Buffer
	w, err := pgp.EncryptWithParams(&buf, entities, nil, &pgp.EncryptParams{Config: pc})
	if err != nil {
		return "", keyError("encrypting", to[0], err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		return "", fmt.Errorf("openpgp: encrypting: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("openpgp: encrypting: %w", err)
	}
	return encodeWire(buf.Bytes()), nil
}

// DecryptBody decrypts wire, the content of <x xmlns='jabber:x:encrypted'/>,
// with a secret key in Config.Keys.
//
// Errors match ErrMalformed (armor, CRC, packets), ErrRefused (policy: no
// MDC, ElGamal, passphrase-only messages), ErrNoKey (none of the recipients
// is ours), ErrDecrypt (decryption or the integrity check failed) or, when
// the data is signed too, the errors of VerifyStatus.
func (c *Config) DecryptBody(wire string) (*Message, error) {
	data, err := decodeWire(wire, MessageBlock, c.maxSize())
	if err != nil {
		return nil, err
	}
	protected, err := c.scanMessage(data)
	if err != nil {
		return nil, err
	}
	pc := c.packetConfig()
	md, err := pgp.ReadMessage(bytes.NewReader(data), c.Keys.entities(), nil, pc)
	if err != nil {
		return nil, decryptError(err)
	}
	if !md.IsEncrypted {
		return nil, malformed("message is not encrypted")
	}
	if pk := md.DecryptedWith.PublicKey; pk != nil {
		if err := c.checkAlgo(pk.PubKeyAlgo, fmt.Sprintf("decryption key %016X", pk.KeyId)); err != nil {
			return nil, err
		}
	}
	body, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, int64(c.maxSize())+1))
	if err != nil {
		return nil, decryptError(err)
	}
	if len(body) > c.maxSize() {
		return nil, fmt.Errorf("%w: decrypted body exceeds %d bytes", ErrTooLarge, c.maxSize())
	}
	if !protected {
		// Read to the end: with no MDC nothing is checked, but the
		// remaining packets must parse.
		if _, err := io.Copy(io.Discard, md.UnverifiedBody); err != nil {
			return nil, decryptError(err)
		}
	}
	m := &Message{Body: string(body), Unprotected: !protected}
	if md.LiteralData != nil && !md.LiteralData.IsBinary {
		m.Body = strings.ReplaceAll(m.Body, "\r\n", "\n")
	}
	if pk := md.DecryptedWith.PublicKey; pk != nil {
		m.RecipientKeyID = pk.KeyId
		m.Recipient = c.Keys.byEntity(md.DecryptedWith.Entity)
	}
	if md.IsSigned {
		sig, err := c.checkEmbedded(md)
		if err != nil {
			return nil, err
		}
		m.Signature = sig
	}
	return m, nil
}

// scanMessage reads the packets before the encrypted data and applies the
// policy: a recipient key of ours, allowed algorithms, MDC. It reports
// whether the data is integrity protected.
func (c *Config) scanMessage(data []byte) (protected bool, err error) {
	packets := packet.NewReader(bytes.NewReader(data))
	var recipients []uint64
	var ours []error // nil entries: usable keys; else the refusal
	symmetric := false
	for {
		p, err := packets.Next()
		if err == io.EOF {
			return false, malformed("no encrypted data packet (truncated?)")
		}
		if err != nil {
			return false, packetError("message", err)
		}
		switch p := p.(type) {
		case *packet.EncryptedKey:
			recipients = append(recipients, p.KeyId)
			k := c.Keys.byKeyID(p.KeyId)
			if k == nil || !k.Secret {
				continue
			}
			ours = append(ours, c.checkAlgo(p.Algo, fmt.Sprintf("message encrypted to key %016X, which", p.KeyId)))
		case *packet.SymmetricKeyEncrypted:
			symmetric = true
		case *packet.SymmetricallyEncrypted:
			if len(ours) == 0 {
				return false, noRecipient(recipients, symmetric)
			}
			if !anyNil(ours) {
				return false, ours[0]
			}
			if !p.IntegrityProtected && !c.AllowNoMDC {
				return false, refused("encrypted data has no modification detection code (packet tag 9): it can be altered undetected", "AllowNoMDC")
			}
			return p.IntegrityProtected, nil
		case *packet.AEADEncrypted:
			if len(ours) == 0 {
				return false, noRecipient(recipients, symmetric)
			}
			if !anyNil(ours) {
				return false, ours[0]
			}
			return true, nil
		case *packet.Compressed, *packet.LiteralData, *packet.OnePassSignature, *packet.Signature:
			return false, malformed("message is not encrypted (found %T)", p)
		}
	}
}

func anyNil(errs []error) bool {
	for _, e := range errs {
		if e == nil {
			return true
		}
	}
	return false
}

func noRecipient(ids []uint64, symmetric bool) error {
	if len(ids) == 0 && symmetric {
		return refused("message is encrypted with a passphrase only, not to a key", "")
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprintf("%016X", id)
	}
	return fmt.Errorf("%w: message is encrypted to [%s]; no secret key for any of them", ErrNoKey, strings.Join(s, " "))
}

// checkEmbedded checks the signature of a signed and encrypted message,
// after its body was read to the end.
func (c *Config) checkEmbedded(md *pgp.MessageDetails) (*Signature, error) {
	for _, cand := range md.SignatureCandidates {
		if s := cand.CorrespondingSig; s != nil {
			if err := c.checkHash(s.Hash); err != nil {
				return nil, err
			}
			if err := c.checkAlgo(s.PubKeyAlgo, "signature"); err != nil {
				return nil, err
			}
		}
	}
	if md.SignatureError != nil || md.Signature == nil || md.SignedBy == nil {
		cand := md.SelectedCandidate
		if cand == nil && len(md.SignatureCandidates) > 0 {
			cand = md.SignatureCandidates[0]
		}
		var id uint64
		var fp string
		if cand != nil {
			id = cand.IssuerKeyId
			if cand.CorrespondingSig != nil {
				id, fp = issuer(cand.CorrespondingSig)
			}
		}
		err := md.SignatureError
		if err == nil {
			err = errors.New("no valid signature")
		}
		k := c.Keys.byKeyID(id)
		if k == nil || errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return nil, &UnknownKeyError{KeyID: id, Fingerprint: fp}
		}
		return nil, verifyError(k, id, err)
	}
	k := c.Keys.byEntity(md.SignedBy.Entity)
	if k == nil {
		id, fp := issuer(md.Signature)
		return nil, &UnknownKeyError{KeyID: id, Fingerprint: fp}
	}
	if err := c.checkAlgo(k.entity.PrimaryKey.PubKeyAlgo, "signer key "+k.Fingerprint); err != nil {
		return nil, err
	}
	return &Signature{
		Signer:    k,
		KeyID:     md.SignedBy.PublicKey.KeyId,
		Algorithm: algoName(md.Signature.PubKeyAlgo),
		Hash:      md.Signature.Hash.String(),
		Text:      md.Signature.SigType == packet.SigTypeText,
		Created:   md.Signature.CreationTime,
	}, nil
}

// decryptError turns a go-crypto decryption error into one of ours.
func decryptError(err error) error {
	var unsup pgperrors.UnsupportedError
	switch {
	case errors.Is(err, pgperrors.ErrKeyIncorrect):
		return fmt.Errorf("%w: no secret key could decrypt the session key", ErrDecrypt)
	case errors.Is(err, pgperrors.ErrMDCHashMismatch), errors.Is(err, pgperrors.ErrMDCMissing),
		errors.Is(err, pgperrors.ErrAEADTagVerification):
		return fmt.Errorf("%w: integrity check failed: the message was altered (%v)", ErrDecrypt, err)
	case errors.Is(err, pgperrors.ErrMessageTooLarge):
		return fmt.Errorf("%w: decompressed message too large", ErrTooLarge)
	case errors.As(err, &unsup):
		return refused(err.Error(), "")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w: truncated encrypted data", ErrDecrypt, ErrMalformed)
	}
	return fmt.Errorf("%w: %v", ErrDecrypt, err)
}

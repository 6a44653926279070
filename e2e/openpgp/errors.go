package openpgp

import (
	"errors"
	"fmt"
)

// Errors returned by this package match one of these with errors.Is.
var (
	// ErrBadSignature: the signature does not match the signed text, or the
	// key that made it was not valid for signing at the time.
	ErrBadSignature = errors.New("openpgp: bad signature")

	// ErrUnknownKey: the signature was made by a key that is not in the key
	// ring. The error is an *UnknownKeyError that carries the key ID.
	ErrUnknownKey = errors.New("openpgp: unknown key")

	// ErrRefused: a key or message uses an algorithm or format that the
	// Config does not accept (DSA, ElGamal, SHA-1, no MDC, v3 signatures,
	// v5/v6 keys). The message names the Config field that accepts it, if
	// there is one.
	ErrRefused = errors.New("openpgp: refused")

	// ErrMalformed: the armored text or the OpenPGP packets cannot be parsed
	// (garbage, truncated data, wrong block type).
	ErrMalformed = errors.New("openpgp: malformed data")

	// ErrBadCRC: the armor CRC-24 line does not match the data. It is also
	// an ErrMalformed.
	ErrBadCRC = errors.New("openpgp: armor CRC mismatch")

	// ErrNoKey: no key is available for the operation (no secret signing
	// key, no secret key for any recipient of a message, no encryption key).
	ErrNoKey = errors.New("openpgp: no usable key")

	// ErrDecrypt: the message was addressed to one of our keys but could not
	// be decrypted (wrong session key, failed integrity check).
	ErrDecrypt = errors.New("openpgp: decryption failed")

	// ErrPassphrase: a secret key is passphrase-protected and the
	// passphrase is missing or wrong.
	ErrPassphrase = errors.New("openpgp: wrong or missing passphrase")

	// ErrStanza: the stanza is not well-formed restricted XML, is too large
	// or too deep, is not the expected kind, or lacks the element to work on.
	ErrStanza = errors.New("openpgp: bad stanza")

	// ErrNotSigned: the stanza has no <x xmlns='jabber:x:signed'/>.
	ErrNotSigned = errors.New("openpgp: stanza is not signed")

	// ErrNotEncrypted: the stanza has no <x xmlns='jabber:x:encrypted'/>.
	ErrNotEncrypted = errors.New("openpgp: stanza is not encrypted")

	// ErrTooLarge: the data exceeds Config.MaxStanzaSize.
	ErrTooLarge = errors.New("openpgp: too large")
)

// An UnknownKeyError reports a signature by a key that is not in the key
// ring. XEP-0027 §2 expects the receiver to fetch the key (from a key server)
// when a signed presence arrives; KeyID says which.
type UnknownKeyError struct {
	// KeyID is the ID of the key that made the signature (a subkey ID when
	// the signer used a signing subkey).
	KeyID uint64
	// Fingerprint is the issuer fingerprint in upper-case hex, when the
	// signature carries one (v4 signatures by GnuPG 2.2 and later do).
	Fingerprint string
}

func (e *UnknownKeyError) Error() string {
	if e.Fingerprint != "" {
		return fmt.Sprintf("openpgp: unknown key %016X (fingerprint %s): signer not in key ring", e.KeyID, e.Fingerprint)
	}
	return fmt.Sprintf("openpgp: unknown key %016X: signer not in key ring", e.KeyID)
}

// Is reports whether target is ErrUnknownKey.
func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// refused builds an ErrRefused error. option names the Config field that
// accepts what was refused, or is empty.
func refused(what, option string) error {
	if option == "" {
		return fmt.Errorf("%w: %s", ErrRefused, what)
	}
	return fmt.Errorf("%w: %s (set Config.%s to accept it)", ErrRefused, what, option)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func badStanza(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrStanza}, args...)...)
}

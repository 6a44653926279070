package e2e

import "time"

// Result tells what protected a stanza that was opened successfully.
type Result struct {
	// Signer is the bare address (localpart@domainpart) whose signature was
	// verified and found to match the sender; empty when the stanza was not
	// signed.
	Signer string

	// KeyID identifies the signing key. For S/MIME it is the hex SHA-256
	// fingerprint of the signer's certificate; for OpenPGP the key ID or
	// fingerprint. Empty when the stanza was not signed.
	KeyID string

	// Signed and Encrypted tell which protections were present and valid.
	Signed, Encrypted bool

	// Time is the timestamp carried inside the protected object (RFC 3923
	// §6.9: the CPIM DateTime header or the PIDF timestamp), or the zero
	// time when the mechanism has none.
	Time time.Time
}

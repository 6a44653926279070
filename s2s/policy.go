package s2s

// Policy says how a remote domain may authenticate (RFC 6120 §13.7,
// XEP-0220 §8, XEP-0178).
type Policy uint8

// Policies, from the zero value up. The zero value is what Prosody calls
// s2s_require_encryption = true with s2s_secure_auth = false.
const (
	// DialbackOverTLS requires TLS; a peer whose certificate is valid for its
	// domain authenticates with SASL EXTERNAL (or dialback), one whose
	// certificate cannot be verified (self-signed, unknown CA, wrong name)
	// authenticates with Server Dialback.
	DialbackOverTLS Policy = iota
	// RequireValidCert requires TLS and a certificate valid for the peer's
	// domain (Prosody's s2s_secure_auth = true). Dialback is used only when
	// the certificate is valid and the peer does not offer SASL EXTERNAL.
	RequireValidCert
	// AllowPlaintext uses TLS when the peer offers it and dialback without
	// it. Only for domains explicitly configured so.
	AllowPlaintext
)

func (p Policy) String() string {
	switch p {
	case RequireValidCert:
		return "require-valid-cert"
	case AllowPlaintext:
		return "allow-plaintext"
	}
	return "dialback-over-tls"
}

// ParsePolicy parses the names String returns.
func ParsePolicy(s string) (Policy, bool) {
	switch s {
	case "", "dialback-over-tls", "dialback":
		return DialbackOverTLS, true
	case "require-valid-cert", "secure":
		return RequireValidCert, true
	case "allow-plaintext", "plaintext":
		return AllowPlaintext, true
	}
	return 0, false
}

// PolicyFunc returns the policy for a remote domain.
type PolicyFunc func(remote string) Policy

func (f PolicyFunc) of(remote string) Policy {
	if f == nil {
		return DialbackOverTLS
	}
	return f(remote)
}

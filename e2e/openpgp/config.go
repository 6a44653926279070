package openpgp

import (
	"crypto"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Defaults of Config fields.
const (
	// DefaultFallbackBody is the plaintext <body/> that EncryptMessage puts
	// next to the encrypted one; the text is XEP-0027 §3's example.
	DefaultFallbackBody = "This message is encrypted."

	// DefaultMaxStanzaSize bounds stanzas, armored data and decrypted
	// bodies: 256 KiB, the common stanza size limit of XMPP servers.
	DefaultMaxStanzaSize = 256 << 10

	// maxDepth bounds element nesting in a stanza.
	maxDepth = 64
)

// Config holds the keys and the policy for XEP-0027 operations. Its methods
// may be called concurrently; do not change the fields while they run. A
// Config with a nil Keys field can do nothing but fail.
type Config struct {
	// Keys holds our secret keys (to sign and decrypt) and our contacts'
	// public keys (to verify and encrypt to). A signature by a key not in
	// Keys is an *UnknownKeyError.
	Keys *KeyRing

	// Signer selects the key that signs (a fingerprint, key ID or user ID,
	// as KeyRing.Lookup takes). If empty, the first key in Keys with secret
	// signing material signs. XEP-0027 §2 says to sign with the key that
	// peers encrypt to.
	Signer string

	// AllowSHA1 accepts message signatures made with SHA-1 (XEP-0027's own
	// example is one). Off by default: SHA-1 collisions are practical.
	AllowSHA1 bool

	// AllowDSA accepts DSA keys and signatures (the XEP's example signer).
	AllowDSA bool

	// AllowElGamal accepts ElGamal encryption keys (the XEP's example
	// recipient), to decrypt from and encrypt to.
	AllowElGamal bool

	// AllowNoMDC accepts encrypted data without modification detection
	// (packet tag 9, as in the XEP's example), which an attacker can alter
	// undetected. Messages written here always have an MDC.
	AllowNoMDC bool

	// FallbackBody is the plaintext <body/> EncryptMessage adds (XEP-0027
	// §3: "polite"). If empty, DefaultFallbackBody.
	FallbackBody string

	// MaxStanzaSize bounds the input and output stanzas, the armored data
	// and the decrypted text, in bytes. If zero, DefaultMaxStanzaSize.
	MaxStanzaSize int

	// Time returns the current time, used for signature creation and key
	// validity. If nil, time.Now.
	Time func() time.Time

	// Rand is the source of randomness. If nil, crypto/rand.
	Rand io.Reader
}

func (c *Config) maxSize() int {
	if c.MaxStanzaSize > 0 {
		return c.MaxStanzaSize
	}
	return DefaultMaxStanzaSize
}

func (c *Config) fallback() string {
	if c.FallbackBody != "" {
		return c.FallbackBody
	}
	return DefaultFallbackBody
}

func (c *Config) now() time.Time {
	if c.Time != nil {
		return c.Time()
	}
	return time.Now()
}

// packetConfig returns the go-crypto configuration for c's policy.
func (c *Config) packetConfig() *packet.Config {
	rejectPK := map[packet.PublicKeyAlgorithm]bool{}
	if !c.AllowDSA {
		rejectPK[packet.PubKeyAlgoDSA] = true
	}
	if !c.AllowElGamal {
		rejectPK[packet.PubKeyAlgoElGamal] = true
	}
	rejectMsgHash := map[crypto.Hash]bool{crypto.MD5: true, crypto.RIPEMD160: true}
	if !c.AllowSHA1 {
		rejectMsgHash[crypto.SHA1] = true
	}
	limit := int64(c.maxSize())
	return &packet.Config{
		Rand:                                 c.Rand,
		Time:                                 c.Time,
		DefaultHash:                          crypto.SHA256,
		DefaultCipher:                        packet.CipherAES256,
		RejectPublicKeyAlgorithms:            rejectPK,
		RejectHashAlgorithms:                 map[crypto.Hash]bool{crypto.MD5: true, crypto.RIPEMD160: true},
		RejectMessageHashAlgorithms:          rejectMsgHash,
		InsecureAllowUnauthenticatedMessages: c.AllowNoMDC,
		MaxDecompressedMessageSize:           &limit,
	}
}

// checkAlgo applies the policy to one public key algorithm.
func (c *Config) checkAlgo(a packet.PublicKeyAlgorithm, what string) error {
	switch a {
	case packet.PubKeyAlgoDSA:
		if !c.AllowDSA {
			return refused(what+" uses DSA (algorithm 17), deprecated", "AllowDSA")
		}
	case packet.PubKeyAlgoElGamal:
		if !c.AllowElGamal {
			return refused(what+" uses ElGamal (algorithm 16), deprecated", "AllowElGamal")
		}
	}
	return nil
}

// checkHash applies the policy to a message signature's hash.
func (c *Config) checkHash(h crypto.Hash) error {
	switch h {
	case crypto.SHA1:
		if !c.AllowSHA1 {
			return refused("signature uses SHA-1, which is broken for signatures", "AllowSHA1")
		}
	case crypto.MD5, crypto.RIPEMD160:
		return refused(fmt.Sprintf("signature uses %v", h), "")
	}
	return nil
}

// CheckKey reports whether the policy of c accepts k: its primary key and
// every subkey. Operations check the keys they use themselves; CheckKey is
// for callers that want to refuse a key when they load it.
func (c *Config) CheckKey(k *Key) error {
	if err := c.checkAlgo(k.entity.PrimaryKey.PubKeyAlgo, "key "+k.Fingerprint); err != nil {
		return err
	}
	for _, s := range k.entity.Subkeys {
		if err := c.checkAlgo(s.PublicKey.PubKeyAlgo, fmt.Sprintf("key %s subkey %016X", k.Fingerprint, s.PublicKey.KeyId)); err != nil {
			return err
		}
	}
	return nil
}

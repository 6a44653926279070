package openpgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	pgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// MaxKeyRingSize bounds the input of ReadKeyRing.
const MaxKeyRingSize = 8 << 20

// Armor block types of keys (RFC 4880 §6.2).
const (
	publicKeyBlock  = "PGP PUBLIC KEY BLOCK"
	privateKeyBlock = "PGP PRIVATE KEY BLOCK"
)

// A Key is one OpenPGP certificate (a primary key with its user IDs and
// subkeys), with or without its secret parts. Keys are read with ReadKeyRing
// and never change afterwards.
type Key struct {
	// Fingerprint of the primary key, upper-case hex.
	Fingerprint string
	// KeyID of the primary key (the low 64 bits of the fingerprint).
	KeyID uint64
	// UserIDs, such as "Juliet <juliet@example.com>", sorted.
	UserIDs []string
	// Algorithm of the primary key: "RSA", "DSA", "EdDSA", "ECDSA",
	// "Ed25519", ... (see Config for which are accepted).
	Algorithm string
	// Bits is the size of an RSA, DSA or ElGamal primary key, else 0.
	Bits int
	// Created is the creation time of the primary key.
	Created time.Time
	// Secret reports whether the secret key material is present (and
	// unlocked: ReadKeyRing decrypts it).
	Secret bool

	entity *pgp.Entity
}

// String returns the fingerprint and the first user ID.
func (k *Key) String() string {
	if len(k.UserIDs) == 0 {
		return k.Fingerprint
	}
	return k.Fingerprint + " " + k.UserIDs[0]
}

// Armor returns the public key as an armored "PGP PUBLIC KEY BLOCK", to
// publish it or import it elsewhere (`gpg --import`).
func (k *Key) Armor() (string, error) {
	var buf bytes.Buffer
	if err := k.entity.Serialize(&buf); err != nil {
		return "", fmt.Errorf("openpgp: serializing key %s: %w", k.Fingerprint, err)
	}
	var sb strings.Builder
	sb.WriteString(armorBegin + publicKeyBlock + armorDashes + "\n\n")
	sb.WriteString(encodeWire(buf.Bytes()))
	sb.WriteString("\n" + armorEnd + publicKeyBlock + armorDashes + "\n")
	return sb.String(), nil
}

// hasKeyID reports whether id is the primary key or one of the subkeys.
func (k *Key) hasKeyID(id uint64) bool {
	if k.entity.PrimaryKey.KeyId == id {
		return true
	}
	for _, s := range k.entity.Subkeys {
		if s.PublicKey.KeyId == id {
			return true
		}
	}
	return false
}

func newKey(e *pgp.Entity) (*Key, error) {
	pk := e.PrimaryKey
	fp := fmt.Sprintf("%X", pk.Fingerprint)
	if pk.Version != 4 {
		return nil, refused(fmt.Sprintf("key %s is a v%d key; XEP-0027 peers (GnuPG 2.2) use v4 keys", fp, pk.Version), "")
	}
	k := &Key{
		Fingerprint: fp,
		KeyID:       pk.KeyId,
		Algorithm:   algoName(pk.PubKeyAlgo),
		Created:     pk.CreationTime,
		Secret:      e.PrivateKey != nil && !e.PrivateKey.Dummy(),
		entity:      e,
	}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && !s.PrivateKey.Dummy() {
			k.Secret = true
		}
	}
	if bits, err := pk.BitLength(); err == nil {
		switch pk.PubKeyAlgo {
		case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSAEncryptOnly, packet.PubKeyAlgoRSASignOnly,
			packet.PubKeyAlgoDSA, packet.PubKeyAlgoElGamal:
			k.Bits = int(bits)
		}
	}
	for name := range e.Identities {
		k.UserIDs = append(k.UserIDs, name)
	}
	slices.Sort(k.UserIDs)
	return k, nil
}

// A KeyRing is a set of keys: our own secret keys and our contacts' public
// keys. It is safe for concurrent use; it never changes after it is made.
type KeyRing struct {
	keys []*Key
}

// ReadKeyRing reads keys from r: one or more armored "PGP PUBLIC KEY BLOCK"
// or "PGP PRIVATE KEY BLOCK" blocks (text between blocks is ignored), or
// binary key packets, as written by `gpg --export` and
// `gpg --export-secret-keys`.
//
// Secret keys protected by a passphrase are unlocked with passphrase; a
// protected key and a nil passphrase, or a wrong passphrase, is an error
// matching ErrPassphrase. Keys other than v4 are refused. Old algorithms (DSA,
// ElGamal) are read, but Config refuses to use them unless told otherwise.
// When a key appears more than once (a public and a secret block of the same
// key) the copy with secret material is kept.
func ReadKeyRing(r io.Reader, passphrase []byte) (*KeyRing, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeyRingSize+1))
	if err != nil {
		return nil, fmt.Errorf("openpgp: reading key ring: %w", err)
	}
	if len(data) > MaxKeyRingSize {
		return nil, fmt.Errorf("%w: key ring larger than %d bytes", ErrTooLarge, MaxKeyRingSize)
	}
	var entities pgp.EntityList
	if len(data) > 0 && data[0]&0x80 != 0 {
		entities, err = readEntities(data)
		if err != nil {
			return nil, err
		}
	} else {
		blocks := splitArmor(string(data))
		if len(blocks) == 0 {
			return nil, malformed("no armored key block found")
		}
		for _, b := range blocks {
			wire, typ, err := StripArmor(b)
			if err != nil {
				return nil, err
			}
			if typ != publicKeyBlock && typ != privateKeyBlock {
				return nil, malformed("armor block %q is not a key block", typ)
			}
			bin, err := decodeWire(wire, typ, 0)
			if err != nil {
				return nil, err
			}
			el, err := readEntities(bin)
			if err != nil {
				return nil, err
			}
			entities = append(entities, el...)
		}
	}
	kr := &KeyRing{}
	for _, e := range entities {
		if err := unlock(e, passphrase); err != nil {
			return nil, err
		}
		k, err := newKey(e)
		if err != nil {
			return nil, err
		}
		kr.add(k)
	}
	return kr, nil
}

func readEntities(bin []byte) (pgp.EntityList, error) {
	el, err := pgp.ReadKeyRing(bytes.NewReader(bin))
	if err != nil {
		return nil, malformed("key packets: %v", err)
	}
	if len(el) == 0 {
		return nil, malformed("no key found")
	}
	return el, nil
}

// unlock decrypts the secret parts of e.
func unlock(e *pgp.Entity, passphrase []byte) error {
	locked := e.PrivateKey != nil && !e.PrivateKey.Dummy() && e.PrivateKey.Encrypted
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && !s.PrivateKey.Dummy() && s.PrivateKey.Encrypted {
			locked = true
		}
	}
	if !locked {
		return nil
	}
	fp := fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
	if passphrase == nil {
		return fmt.Errorf("%w: secret key %s is passphrase-protected and no passphrase was given", ErrPassphrase, fp)
	}
	if err := e.DecryptPrivateKeys(passphrase); err != nil {
		return fmt.Errorf("%w: cannot unlock secret key %s: %v", ErrPassphrase, fp, err)
	}
	return nil
}

// splitArmor returns the armored blocks in text, each from its BEGIN line to
// its END line.
func splitArmor(text string) []string {
	var blocks []string
	for {
		i := strings.Index(text, armorBegin)
		if i < 0 {
			return blocks
		}
		text = text[i:]
		j := strings.Index(text, armorEnd)
		if j < 0 {
			// Truncated: let StripArmor report it.
			return append(blocks, text)
		}
		k := strings.IndexByte(text[j:], '\n')
		if k < 0 {
			return append(blocks, text)
		}
		blocks = append(blocks, text[:j+k+1])
		text = text[j+k+1:]
	}
}

// NewKeyRing returns a key ring holding keys, for instance those of several
// rings joined. Duplicates are merged as ReadKeyRing does.
func NewKeyRing(keys ...*Key) *KeyRing {
	kr := &KeyRing{}
	for _, k := range keys {
		if k != nil && k.entity != nil {
			kr.add(k)
		}
	}
	return kr
}

func (kr *KeyRing) add(k *Key) {
	for i, old := range kr.keys {
		if old.Fingerprint == k.Fingerprint {
			if k.Secret && !old.Secret {
				kr.keys[i] = k
			}
			return
		}
	}
	kr.keys = append(kr.keys, k)
}

// Keys returns the keys in the order they were read.
func (kr *KeyRing) Keys() []*Key {
	if kr == nil {
		return nil
	}
	return slices.Clone(kr.keys)
}

// Lookup finds a key by fingerprint (40 hex digits), long key ID (16 hex
// digits, of the primary key or a subkey), either with an optional "0x"
// prefix and spaces, or by an exact user ID or e-mail address. It returns an
// error matching ErrNoKey when nothing, or more than one key, matches.
func (kr *KeyRing) Lookup(id string) (*Key, error) {
	if kr == nil {
		return nil, fmt.Errorf("%w: no key ring", ErrNoKey)
	}
	hex := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(id, "0x"), "0X"), " ", ""))
	var found []*Key
	for _, k := range kr.keys {
		switch {
		case len(hex) == 40 && k.Fingerprint == hex:
		case len(hex) == 16 && isHex(hex) && k.hasKeyID(mustParseHex(hex)):
		case slices.Contains(k.UserIDs, id):
		case strings.Contains(id, "@") && !strings.ContainsAny(id, "<> ") && hasEmail(k, id):
		default:
			continue
		}
		found = append(found, k)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("%w: no key matches %q", ErrNoKey, id)
	default:
		return nil, fmt.Errorf("%w: %d keys match %q", ErrNoKey, len(found), id)
	}
}

func hasEmail(k *Key, addr string) bool {
	for _, id := range k.entity.Identities {
		if id.UserId != nil && strings.EqualFold(id.UserId.Email, addr) {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func mustParseHex(s string) uint64 {
	v, _ := strconv.ParseUint(s, 16, 64)
	return v
}

// byKeyID returns the key holding the (sub)key id.
func (kr *KeyRing) byKeyID(id uint64) *Key {
	if kr == nil {
		return nil
	}
	for _, k := range kr.keys {
		if k.hasKeyID(id) {
			return k
		}
	}
	return nil
}

// byEntity returns the Key wrapping e.
func (kr *KeyRing) byEntity(e *pgp.Entity) *Key {
	if kr == nil || e == nil {
		return nil
	}
	for _, k := range kr.keys {
		if k.entity == e {
			return k
		}
	}
	return nil
}

// entities returns the go-crypto key ring.
func (kr *KeyRing) entities() pgp.EntityList {
	if kr == nil {
		return nil
	}
	el := make(pgp.EntityList, len(kr.keys))
	for i, k := range kr.keys {
		el[i] = k.entity
	}
	return el
}

func algoName(a packet.PublicKeyAlgorithm) string {
	switch a {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSAEncryptOnly, packet.PubKeyAlgoRSASignOnly:
		return "RSA"
	case packet.PubKeyAlgoElGamal:
		return "ElGamal"
	case packet.PubKeyAlgoDSA:
		return "DSA"
	case packet.PubKeyAlgoECDH:
		return "ECDH"
	case packet.PubKeyAlgoECDSA:
		return "ECDSA"
	case packet.PubKeyAlgoEdDSA:
		return "EdDSA"
	case packet.PubKeyAlgoX25519:
		return "X25519"
	case packet.PubKeyAlgoX448:
		return "X448"
	case packet.PubKeyAlgoEd25519:
		return "Ed25519"
	case packet.PubKeyAlgoEd448:
		return "Ed448"
	}
	return "algorithm " + strconv.Itoa(int(a))
}

// keyError turns a go-crypto key selection or validation error into one of
// ours.
func keyError(op string, k *Key, err error) error {
	var weak pgperrors.WeakAlgorithmError
	if errors.As(err, &weak) {
		return refused(fmt.Sprintf("%s: key %s: %v", op, k.Fingerprint, err), "")
	}
	return fmt.Errorf("%w: %s: key %s: %v", ErrNoKey, op, k.Fingerprint, err)
}

// Package openpgp implements XEP-0027, Current Jabber OpenPGP Usage (version
// 1.4, Obsolete/Historical), on top of github.com/ProtonMail/go-crypto's
// openpgp/v2 package.
//
// XEP-0027 puts the output of an OpenPGP program, ASCII armored with the armor
// headers removed, into one of two elements:
//
//   - §2 Signing: <x xmlns='jabber:x:signed'/> carries a detached signature
//     over the XML character data of <status/> (presence). The text MAY be
//     empty. [Config.SignPresence] and [Config.VerifyPresence] work on whole
//     stanzas, [Config.SignStatus] and [Config.VerifyStatus] on the strings.
//   - §3 Encrypting: <x xmlns='jabber:x:encrypted'/> carries the encrypted
//     XML character data of <body/> (message); the plaintext <body/> is
//     replaced by a fallback that says the message is encrypted.
//     [Config.EncryptMessage] and [Config.DecryptMessage] work on stanzas,
//     [Config.EncryptBody] and [Config.DecryptBody] on strings.
//
// # Armor
//
// §1 says the data is US-ASCII armored "with the headers removed". On the wire
// this package writes only the base64 lines and the "=XXXX" CRC-24 line (the
// XEP's examples keep it), one line per 64 characters, separated by LF. On
// input, [Armor] restores the BEGIN line, the blank line and the END line;
// whitespace (indentation, leading and trailing newlines) is ignored, the CRC
// line is optional and checked when present, and a fully armored block (some
// clients send one) is accepted as well. [StripArmor] goes the other way.
//
// # What is signed
//
// The signed text is the character data after XML parsing. An XML parser
// turns CRLF and lone CR into LF, so a binary signature made over text with
// CRLF would not verify at the receiver. Signatures made here are therefore
// text signatures (signature type 0x01, like `gpg --textmode` and the XEP's
// example), which OpenPGP hashes with line endings canonicalised to CRLF
// (RFC 4880 §5.2.1). Receivers verify with the type the signature packet says.
// Nothing else is altered: trailing white space and a final newline are
// signed as they are.
//
// # Keys and algorithms
//
// Keys are OpenPGP v4 keys ([ReadKeyRing]): RSA (2048 bits or more), EdDSA
// (Ed25519) with Curve25519 ECDH, and the other modern algorithms that
// go-crypto supports. GnuPG 2.2, the reference peer, reads neither v6 keys nor
// SEIPD v2, so v5 and v6 keys are refused and messages are written as SEIPD v1
// (with MDC) unless every recipient advertises SEIPD v2.
//
// Legacy clients still send what XEP-0027's own examples show: DSA keys,
// SHA-1 signatures, ElGamal keys and encrypted data without MDC (packet tag
// 9). Each is refused with an error that matches [ErrRefused] and names the
// Config field that accepts it: AllowDSA, AllowSHA1, AllowElGamal,
// AllowNoMDC. MD5 and RIPEMD-160 signatures and v3 signatures are refused
// always.
//
// # Results and errors
//
// A successful verification returns a [Signature] naming the signing key and
// its holder; a signer that is not in the key ring is an [*UnknownKeyError]
// (it carries the key ID, so that the caller can fetch the key, as §2
// suggests) and a signature that does not match is [ErrBadSignature]. Errors
// start with "openpgp:" and match the sentinel errors of this package with
// errors.Is.
//
// # Stanzas
//
// The stanza functions take one stanza as bytes (a <presence/> or <message/>
// in jabber:client, jabber:server, jabber:component:accept or no namespace),
// and return new stanza bytes in which only the affected children are
// rewritten; everything else is copied byte for byte. The parser is
// encoding/xml in strict mode, with the restrictions of RFC 6120 §11.1: no
// DTD, no comments, no processing instructions other than an XML declaration,
// bounded size ([Config.MaxStanzaSize]) and depth.
//
// # Security
//
// XEP-0027 §5 lists what it does not protect: keys are trusted through the
// web of trust only, signed presence and encrypted messages can be replayed,
// only <status/> and <body/> are covered, and signing and encryption are not
// combined. This package does not change that; it is meant for interoperation
// with legacy clients and gateways. EncryptMessage removes every <body/> and
// the XHTML-IM <html/> element, which would repeat the plaintext.
package openpgp

// Package smime implements RFC 3923, End-to-End Signing and Object
// Encryption for the Extensible Messaging and Presence Protocol (XMPP):
// S/MIME signatures and encryption of stanzas, carried in
//
//	<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'><![CDATA[ MIME entity ]]></e2e>
//
// An Agent holds one party's certificate, key and trust roots. Seal (and
// Sign, Encrypt, SignAndEncrypt) secures a stanza; Open checks and opens
// one; ErrorReply answers a stanza that failed.
//
// # What is implemented
//
//   - §3 messages: the <message/> becomes a Message/CPIM object (RFC 3862,
//     through package cpim and its RFC 3922 mapping), headers and content
//     both protected.
//   - §4 presence: directed presence becomes a PIDF document
//     (application/pidf+xml, RFC 3863) whose tuples carry the timestamp.
//     Undirected presence is refused (§4.1 step 3).
//   - §5 any stanza: the stanza becomes an application/xmpp+xml document
//     (§10) encapsulated in a Message/CPIM object, which gives it the
//     DateTime that §6.9 checks. FormStanza does this for messages and
//     presence too, for extension elements that do not map to CPIM or PIDF.
//   - §6.5 order: signed first (multipart/signed, RFC 1847, with a
//     detached application/pkcs7-signature, RFC 5751 §3.5.3), then
//     encrypted (application/pkcs7-mime EnvelopedData, RFC 5751 §3.3, or
//     AuthEnvelopedData, RFC 8551 §3.4, as Agent.Cipher says).
//     Open also takes opaque signed-data (application/pkcs7-mime;
//     smime-type=signed-data) and the bare base64 CMS blob that Examples 6
//     and 12 show.
//   - §6.1 to §6.3, §6.6 certificates: the signer's certificate must chain
//     to Agent.Roots at the receiver's clock and must name the stanza's
//     sender, resources ignored, in subjectAltName: an id-on-xmppAddr
//     otherName (RFC 6120 §13.7.1.4) or an im:, pres: or xmpp: URI (see
//     Addresses). The sender named inside the object (CPIM From, PIDF
//     entity, the from of an application/xmpp+xml stanza) must match too.
//   - Revocation: with Agent.CRLs (RFC 5280), a signer whose certificate,
//     or a CA certificate above it, is revoked by a list its issuer signed
//     is refused (ErrRevoked); lists are taken as given, not fetched.
//     OpenSSL's `openssl ca -gencrl` lists work, and `openssl cms -verify
//     -crl_check_all` judges as Open does. With Agent.OCSP (RFC 6960),
//     the responders the certificates name are asked, over HTTP, with
//     answers cached until their nextUpdate; a revoked answer is refused,
//     and no answer is too when OCSP.Require is set. Responses must be
//     signed by the issuer or a responder it made for OCSP, and current.
//     Tested against `openssl ocsp` as the responder.
//   - Recipients: Seal encrypts to the certificates it is given;
//     Agent.CheckRecipient checks one first as Open checks a signer's
//     (chain, validity, the address it names, key usage, revocation).
//   - §6.7, §6.8: a signature goes with the signer's certificate and chain.
//     Agent.RequireSignature refuses unsigned encrypted stanzas.
//   - §6.9 timestamps: sent timestamps are UTC, in milliseconds, strictly
//     increasing; received ones must be UTC ('Z'), within MaxClockSkew of
//     Agent.Now, and greater than the sender's last one seen in the last
//     ReplayWindow (a bounded cache; signed stanzas only, since an unsigned
//     one could poison another sender's entry).
//   - §6.10 algorithms: SHA-256 signatures by default (Agent.Hash),
//     SHA-1, SHA-384 and SHA-512 accepted. Encryption is described below.
//   - §7 errors: every failure of Open is an *e2e.Error (package e2e) that
//     renders the stanza error to send back.
//   - §8 gateways: the CDATA section keeps the CRLF line ends of the
//     S/MIME object, so a gateway that strips the XML wrapper forwards
//     the bytes that were signed.
//
// # Content encryption
//
// Sent, as Agent.Cipher says:
//
//   - AES-128-CBC (the default, the RFC's mandatory algorithm, which every
//     S/MIME peer opens), AES-192-CBC or AES-256-CBC in EnvelopedData
//     (RFC 5652 §6, RFC 3565), as application/pkcs7-mime;
//     smime-type=enveloped-data;
//   - AES-128-GCM or AES-256-GCM in AuthEnvelopedData (RFC 5083,
//     RFC 5084: 12-byte nonce, 16-byte ICV, no authenticated attributes),
//     as application/pkcs7-mime; smime-type=authEnveloped-data. S/MIME 4.0
//     (RFC 8551 §2.7) requires these; peers older than it, OpenSSL before
//     3.0 among them, cannot open them, hence CBC by default.
//
// The content-encryption key goes to each recipient by RSA PKCS #1 v1.5
// key transport (RFC 3370 §4.2.1), named by issuer and serial number.
//
// Accepted:
//
//   - EnvelopedData with AES-128-CBC, AES-192-CBC, AES-256-CBC or
//     DES-EDE3-CBC (OpenSSL's default, a MUST for S/MIME 3.1 receivers);
//   - AuthEnvelopedData with AES-128-GCM, AES-192-GCM or AES-256-GCM:
//     a 12-byte nonce with an ICV of 12 to 16 bytes, or another nonce
//     length with a 16-byte ICV; authenticated attributes, if any, are
//     authenticated (their DER under a SET OF tag is the GCM associated
//     data, RFC 5083 §2.2), not interpreted. No content is returned before
//     the MAC has been checked;
//   - key transport by RSA PKCS #1 v1.5 or RSA-OAEP (RFC 3560; SHA-1 to
//     SHA-512, any label), to a recipient named by issuer and serial
//     number or by subject key identifier (`openssl cms -keyid`);
//   - DER, or BER as OpenSSL streams it (`-stream`: indefinite lengths,
//     the content in 4 KiB chunks).
//
// Refused, with ErrUnsupportedCipher as the cause: single DES; the AES-GCM
// inside EnvelopedData that github.com/smallstep/pkcs7 writes (RFC 5083
// puts GCM in AuthEnvelopedData, where the MAC has a field) and CBC inside
// AuthEnvelopedData; other algorithms (Camellia, ChaCha20-Poly1305 of
// RFC 8103) and key transport other than RSA. Recipients by key agreement,
// KEK or password are skipped: with only those, ErrNotRecipient. A
// message that does not authenticate fails with ErrAuthFailed. To resist
// Bleichenbacher's attack, a PKCS #1 v1.5 key that does not decrypt
// becomes a random key (RFC 3218 §2.3.2), so it fails like a wrong key:
// ErrAuthFailed with GCM, a padding error with CBC.
//
// # Wire details
//
// XML parsers turn CRLF into LF, inside CDATA too, so Open puts the signed
// part back in CRLF form before checking its digest, as OpenSSL does in
// text mode. The pkcs7 parts are base64 although §6.4 asks for binary
// transfer encoding: DER holds bytes that XML 1.0 forbids even in CDATA.
// "]]>" inside the object is split across two CDATA sections. MIME
// parameters are read leniently (the RFC's unquoted
// protocol=application/pkcs7-signature, OpenSSL's x-pkcs7 media types and
// its mixed line ends). See the e2e digest, part A.12, in the project's
// specification notes.
//
// # Why github.com/smallstep/pkcs7
//
// Signatures are done by github.com/smallstep/pkcs7, the maintained fork
// of go.mozilla.org/pkcs7. The original is archived and fails on what
// OpenSSL sends: streamed signatures over 4 KiB (`openssl cms -sign
// -nodetach -stream`, BER with chunked content). Because pkcs7 indexes
// slices with lengths from its input, its calls run under recover and
// behind a BER walker that bounds nesting.
//
// Encryption is not: pkcs7 v0.2.3 has no AuthEnvelopedData, no AES-192,
// no recipients by subject key identifier, and its Decrypt does key
// transport and content decryption in one call, while its Encrypt takes
// its algorithm from package variables and defaults to DES, with AES-GCM
// in EnvelopedData as its other choice. EnvelopedData and
// AuthEnvelopedData are read and written in this package (envelope.go)
// with golang.org/x/crypto/cryptobyte; crypto/rsa, crypto/aes,
// crypto/des and crypto/cipher do the cryptography.
package smime // import "github.com/s2sd/s2sd/e2e/smime"

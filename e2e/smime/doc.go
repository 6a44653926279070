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
//     encrypted (application/pkcs7-mime EnvelopedData, RFC 5751 §3.3).
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
//     SHA-1, SHA-384 and SHA-512 accepted; AES-128-CBC by default
//     (Agent.Cipher) or AES-256-CBC with RSA PKCS#1 v1.5 key transport;
//     received: AES-128-CBC, AES-256-CBC and DES-EDE3-CBC (OpenSSL's
//     default, an S/MIME 3.1 MUST for receivers), with PKCS#1 v1.5 or
//     RSA-OAEP key transport. Single DES and the AES-GCM that the pkcs7
//     library puts in EnvelopedData are refused in both directions.
//   - §7 errors: every failure of Open is an *e2e.Error (package e2e) that
//     renders the stanza error to send back.
//   - §8 gateways: the CDATA section keeps the CRLF line ends of the
//     S/MIME object, so a gateway that strips the XML wrapper forwards
//     the bytes that were signed.
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
// CMS is done by github.com/smallstep/pkcs7, the maintained fork of
// go.mozilla.org/pkcs7. The original is archived and fails on what
// OpenSSL sends: streamed signatures over 4 KiB (`openssl cms -sign
// -nodetach -stream`, BER with chunked content), RSA-OAEP key transport on
// decryption; and it panics when encrypting to a certificate whose key is
// not RSA. Two defaults of both are unsafe and never used here: DES for
// encryption and AES-GCM inside EnvelopedData (RFC 5083 puts GCM in
// AuthEnvelopedData). Because pkcs7.Encrypt reads its algorithm from
// package variables, this package sets them under a lock on every call;
// and because pkcs7 indexes slices with lengths from its input, its calls
// run under recover and behind a BER walker that bounds nesting.
package smime // import "github.com/s2sd/s2sd/e2e/smime"

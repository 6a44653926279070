// Package e2e holds what the end-to-end security packages share: the
// result of opening a protected stanza and the errors a recipient returns.
//
// Two mechanisms implement it:
//
//   - e2e/smime: RFC 3923, End-to-End Signing and Object Encryption for
//     XMPP (S/MIME over Message/CPIM and PIDF, carried in
//     <e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/>).
//   - e2e/openpgp: XEP-0027, Current Jabber OpenPGP Usage.
//
// Errors follow RFC 3923 §7 (Recipient Error Handling): each failure is an
// *Error that works with errors.Is and errors.As and renders the stanza
// error a recipient sends back (StanzaError). RFC 3923 is inconsistent
// about the wire form of these errors; this package decides as follows and
// accepts every variant on input:
//
//   - namespace urn:ietf:params:xml:ns:xmpp-e2e (§9, §12.1, Appendix A),
//     not urn:ietf:params:xml:xmpp-e2e (Examples 16 to 18);
//   - element signature-unverified (Appendix A schema), not
//     unverified-signature (§7 prose, Example 17);
//   - the error stanza itself has type='error' (RFC 6120 §8.3), not the
//     type='chat' of Examples 16 to 18.
package e2e // import "github.com/s2sd/s2sd/e2e"

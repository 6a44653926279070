// Package omemo implements OMEMO Encryption (XEP-0384) version 0.3, the
// end-to-end encryption that Conversations, Gajim, Dino, Monal and Siskin
// speak, in the namespace eu.siacs.conversations.axolotl:
//
//	<encrypted xmlns='eu.siacs.conversations.axolotl'>
//	  <header sid='27183'><key rid='31415'>…</key><iv>…</iv></header>
//	  <payload>…</payload>
//	</encrypted>
//
// # Licence
//
// This package is its own Go module because it links go.mau.fi/libsignal,
// which is licensed under the GNU General Public License version 3. A
// program that imports it (the example command omemobot included) is a
// work based on libsignal and is distributed under the terms of the GPL
// version 3. The rest of s2sd (Apache-2.0) never imports this module.
//
// # What is implemented
//
//   - X3DH and the Double Ratchet are go.mau.fi/libsignal's (a Go port of
//     libsignal-protocol-java, the library of Conversations), with its wire
//     format: a <key/> holds a SignalMessage or, with prekey='true', a
//     PreKeySignalMessage. Nothing cryptographic is implemented here
//     beyond the AES-128-GCM of the payload that XEP-0384 0.3 §4.5
//     specifies (a 16-byte key and 12-byte IV; the key element carries the
//     key followed by the 16-byte tag, the payload the ciphertext without
//     it). On input a 16-byte key with the tag at the end of the payload
//     (old Conversations) and a 16-byte IV are accepted too.
//   - Device (§4.1): an identity key, a random device id, a signed pre-key
//     rotated by Maintain, and one-time pre-keys replaced as soon as one
//     is used (Message.BundleChanged then says to publish the bundle
//     again).
//   - Device lists and bundles (§4.2, §4.3): DeviceList and Bundle encode
//     and decode the payloads of the PEP nodes NodeDeviceList and
//     NodeBundle. Keys on the wire are 33 bytes: the type byte 0x05 and the
//     Curve25519 key. The signed pre-key signature is XEdDSA-like with the
//     sign bit of the identity key's Ed25519 form in its last byte, as
//     libsignal and python-oldmemo write it.
//   - Sending (§4.4, §4.5): Encrypt encrypts one message to every device in
//     the recipients' device lists and to the sender's own other devices,
//     starting sessions from bundles (Config.FetchBundle) where needed.
//     KeyTransport and EmptyMessage make key transport elements (§4.6).
//   - Receiving (§4.5): Decrypt opens pre-key messages (starting a
//     session) and normal ones, including messages that arrive out of
//     order or after skipped ones, within libsignal's limit of 2000
//     skipped messages per chain.
//   - Storage: a Store keeps everything, keyed by strings; each operation
//     writes all its changes in one atomic Apply, and a failed operation
//     writes nothing. MemStore is in memory; BoltStore is a bbolt file
//     that survives restarts (fsync on each Apply).
//   - Trust: blind trust before verification (BlindTrust, the default, as
//     Conversations and Gajim do) or ManualTrust. Fingerprints (Devices,
//     Message.Fingerprint) let an application verify, pin (Verified) or
//     reject (Distrusted) each device with SetTrust.
//   - Errors: every failure a user can act on is an *Error of a Kind —
//     NoSession, Untrusted, NotForThisDevice, Duplicate, Corrupt — tested
//     with errors.Is(err, ErrUntrusted) and the like. Malformed input is
//     an error, never a panic: keys are checked before libsignal sees them.
//
// OMEMO 2 (urn:xmpp:omemo:2, XEP-0384 0.8 and later) is not supported. It
// changes the primitives, not only the XML: Ed25519 identity keys, other
// key derivation labels, another message format, and a payload encrypted
// with AES-256-CBC and HMAC-SHA-256 inside a Stanza Content Encryption
// (XEP-0420) envelope. libsignal implements none of them, and building
// them here would mean a hand-rolled ratchet.
//
// Interoperability is tested against python-omemo with python-oldmemo
// (Debian packages python3-omemo, python3-oldmemo), an independent
// implementation, in both directions and across restarts; see
// interop_test.go.
//
// # Threat model
//
// OMEMO protects the content of a message body: neither servers on the
// path nor anyone reading the streams can read or undetectably alter it.
// The Double Ratchet gives forward secrecy (a key stolen today does not
// open yesterday's messages) and recovers after a compromise once both
// sides have sent again.
//
// It does not protect:
//
//   - Metadata: who talks to whom and when, the message sizes, the device
//     ids and the device lists, and every stanza other than the body
//     (subject, chat states, receipts, and the unencrypted fallback body)
//     are visible to the servers.
//   - The device lists: they are published by the account's server, which
//     can add a device of its own to them. Under blind trust such a device
//     receives the messages until the user verifies a device of the
//     account, after which new devices are not used until decided on.
//     Compare fingerprints out of band, and SetTrust.
//   - The endpoints: a device that is compromised reads what it receives,
//     and the Store holds private keys and session state in clear; protect
//     the file.
//   - Replays across devices: each device refuses a message it already
//     decrypted (Duplicate), but cannot know what the account's other
//     devices saw.
//
// libsignal's package-level logger is replaced when this package is
// initialised: libsignal prints its warnings on standard output otherwise,
// and every failure is reported here as an error.
package omemo // import "github.com/s2sd/s2sd/e2e/omemo"

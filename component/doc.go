// Package component implements XEP-0114: Jabber Component Protocol, on both
// sides of the stream.
//
// Server accepts external components (bridges, bots, gateways) the way
// Prosody and ejabberd do, and hands what they send to a route.Handler;
// Dial, Conn and Component make any Go program a component of s2sd, Prosody
// or ejabberd.
//
// # What is implemented
//
// XEP-0114 §3 (Protocol Flow): the component opens a stream in the
// jabber:component:accept namespace whose 'to' is the component's domain;
// the server answers with a stream header of its own that carries a fresh
// stream id; the component proves it knows the shared secret with
// <handshake/> holding the lowercase hexadecimal SHA-1 of the stream id
// concatenated with the secret; the server answers with an empty
// <handshake/>, or with the not-authorized stream error and closes the
// stream. Stanzas then flow both ways in the component's namespace.
//
// XEP-0114 §4 (Security Considerations): components are trusted and the
// secret crosses the connection in no protected form; XEP-0114 defines no
// TLS, so run components on loopback or inside a trusted network (the
// default listening address is loopback). §7.1 (the jabber:component:accept
// schema) is the namespace accepted here; jabber:component:connect is not
// implemented.
//
// The XEP defers the rest to the XMPP core, RFC 6120:
//
//   - Stream errors (RFC 6120 §4.9): every violation is answered by sending
//     the stream error, </stream:stream>, then closing the connection ("send
//     the alert, then return the error"). An error found while the stream is
//     being set up is still preceded by a stream header (§4.9.1.2).
//   - Unknown component domain: host-unknown (§4.9.3.6). Wrong default
//     namespace: invalid-namespace (§4.9.3.10). Bad handshake or anything
//     sent before it: not-authorized (§4.9.3.12). No handshake before
//     Server.HandshakeTimeout: connection-timeout (§4.9.3.4).
//   - Addressing: a stanza from a component must carry 'to' and 'from'
//     (as between servers, RFC 6120 §4.9.3.7): a missing or
//     empty one, or a 'from' that is not a JID, is improper-addressing. The
//     'from' must be at exactly the authenticated domain (the domain itself
//     or any JID at it, user@domain/resource, but not a subdomain):
//     otherwise invalid-from (§4.9.3.9), and the stream is closed, as
//     Prosody does. A malformed 'to' is not fatal: the stanza is answered
//     with jid-malformed (§8.3.3.8). Prosody instead fills in a missing
//     'from' and answers a missing 'to' with bad-request; s2sd is strict.
//   - A stanza in jabber:client on a component stream is accepted as if it
//     were in jabber:component:accept, as Prosody accepts it; any other
//     top-level element after the handshake is unsupported-stanza-type
//     (§4.9.3.24).
//   - Conflict: a second stream for a connected domain is resolved by
//     Server.Conflict, with the conflict stream error (§4.9.3.3) for the
//     loser. Shutdown ends every stream with system-shutdown (§4.9.3.20).
//   - Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1) and is
//     accepted at any time.
//
// Stanzas are never decoded on the way through: the raw bytes read are
// written to the other stream, with only the top-level start tag adjusted
// to the destination's namespace (see internal/xmlstream, Element.AppendTo).
package component

// Package route carries stanzas between the parts of a federation server:
// remote servers (package s2s), external components (package component)
// and the server's own services.
//
// A Stanza is the envelope (kind, addresses, type, id) of a stanza read from
// a stream plus its raw bytes; the payload is never decoded on the relay
// path. A Router sends each stanza to the Handler for its 'to' domain the way
// a DNS mux picks a zone: one of our own domains goes to the local services,
// a component's domain to that component, any other domain to the
// server-to-server pool. Stanzas from a remote server are never relayed to
// another remote server (RFC 6120 §13.7.1.1 and §10.4).
//
// What cannot be delivered is returned to its sender as the stanza error
// RFC 6120 §8.3 names; an error stanza is never answered with an error
// (§8.3.1), it is logged and counted instead.
//
// Addresses are mellium.im/xmpp/jid values per RFC 7622, parsed by ParseJID
// with the PRECIS profiles jid.Parse uses, except that the Bidi Rule
// applies to a localpart only when it holds a right-to-left character
// (RFC 8265 §3.3, Directionality Rule): "2ème@example.fr" is an address here, as it is for
// other servers, though golang.org/x/text's profile refuses it
// (golang/go#17383). Every address a peer sends goes through ParseJID.
package route

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
// Addresses are JIDs per RFC 7622, parsed and compared with the PRECIS
// profiles of mellium.im/xmpp/jid.
package route

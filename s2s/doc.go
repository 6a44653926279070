// Package s2s implements XMPP server-to-server streams (RFC 6120) for the
// domains a server hosts, in both directions.
//
// What it implements:
//
//   - Resolution (resolve.go): RFC 6120 §3.2 with github.com/miekg/dns:
//     _xmpps-server._tcp (XEP-0368 direct TLS) and _xmpp-server._tcp SRV
//     records merged in RFC 2782 priority and weight order, a lone "."
//     target meaning no service, and the A/AAAA fallback on port 5269;
//     CNAME chains, TTL caching, configurable nameservers.
//   - Negotiation (dial.go, server.go): stream headers and features (§4),
//     STARTTLS with TLS 1.2 or later (§5), stream restarts, SASL EXTERNAL
//     with certificates checked per RFC 6125 and XEP-0178 (external.go:
//     DNS-ID, SRV-ID, XmppAddr), and Server Dialback (XEP-0220) with keys
//     per XEP-0185 (key.go), verified with the authoritative server found
//     through DNS. Policy (policy.go) says per remote domain whether a valid
//     certificate is required, dialback over TLS is enough, or plaintext is
//     allowed.
//   - Delivery (pool.go): one outbound stream per remote domain, further
//     local domains multiplexed onto it with dialback (XEP-0220 §2.4); a
//     bounded queue while the stream comes up; retries with exponential
//     backoff and jitter; bounces with remote-server-not-found or
//     remote-server-timeout (RFC 6120 §8.3.3.16-17), never for an error;
//     XEP-0198 acknowledgements on s2s streams, what was not acknowledged
//     sent again on the next stream; an optional durable queue (store.go,
//     s2s/boltstore, on bbolt) across restarts.
//   - Inbound checks (server.go): a stanza's 'from' must be a domain
//     authenticated on its stream for its 'to' domain (invalid-from, §4.9.3.9),
//     its 'to' domain must be hosted (host-unknown); limits on connections,
//     negotiation time, idle time and stanza rate. Addresses are parsed with
//     route.ParseJID (RFC 7622; the Bidi Rule only for right-to-left
//     localparts, so "2ème@example.fr" is valid).
//   - Malformed addresses: a 'from' (or 'to') that does not parse, from a
//     sender whose domain is authenticated on the stream for the stanza's
//     'to' domain, is answered with the stanza error jid-malformed (§8.3.3.8)
//     and the stream goes on; the domain is the 'from' split as RFC 7622
//     §3.1 says (jid.SplitString) and normalized. A stream error there would
//     also lose every stanza behind it on the stream and make the peer
//     reconnect and authenticate again, for one bad address its server
//     vouched for; the stanza error costs that stanza only. The error comes
//     from the stanza's 'to' (our domain when that is the bad address) and
//     goes to the 'from' as written, through the Handler like any stanza of
//     ours; a stanza of type error is not answered, and a refused stanza
//     counts as handled for XEP-0198. When the 'from' does not split, or its
//     domain is not authenticated for the 'to', nothing vouches for the
//     sender: the stream ends with invalid-from (§4.9.3.9).
//
// How a stanza flows: Server accepts a connection, negotiates, and hands
// each stanza to its Handler (a route.Router), which sends stanzas for
// remote domains to a Pool; the Pool's Dialer resolves, connects,
// negotiates and authenticates; stanzas go out on the stream, and those
// that cannot go return to their senders through the Router. With
// Server.Lend, a stanza reaches the Handler in the stream's read buffer,
// valid until Deliver returns. The Pool's queue keeps a stanza's bytes
// alone, copied when lent (route.Stanza.KeepBytes), and builds the stanza
// again from them for a bounce or Evict. Package s2stest starts servers
// and a DNS zone on loopback for tests.
package s2s

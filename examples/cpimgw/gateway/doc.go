// Package gateway is the reusable part of the cpimgw example: an XEP-0114
// component that maps XMPP stanzas to CPIM objects and back with package
// cpim.
//
// Outbound (XMPP to CPIM), Gateway is a route.Handler for a
// component.Component. Each message becomes a Message/CPIM object
// (RFC 3862, mapped by RFC 3922 §4.1) and each presence notification a PIDF
// document (RFC 3863, mapped by RFC 3922 §5.1). The object goes to a Sink:
// a writer (WriterSink), a spool directory (DirSink) or an HTTP endpoint
// (HTTPSink). What cannot be delivered is answered, never dropped:
//
//   - A sink's error becomes a stanza error for the sender (RFC 6120
//     §8.3): remote-server-timeout when the sink timed out, not-acceptable
//     when it refused the object (HTTP 4xx), service-unavailable otherwise.
//   - A stanza that cannot be mapped at all (an address without a localpart,
//     a subscription request, RFC 3923 secured content) is answered with
//     not-acceptable or feature-not-implemented, with a text saying why.
//   - A mapping that loses parts of the stanza (*cpim.UnmappedError) is
//     accepted by default and the lost parts are logged by name;
//     Gateway.AcceptLoss can refuse it instead.
//   - An iq get or set is answered with service-unavailable (RFC 6120 §8.4);
//     iq results are ignored. Error stanzas are never answered (RFC 6120
//     §8.3): error messages still go to the sink, so that the CPIM side
//     learns of bounces, and anything else is logged.
//
// Inbound (CPIM to XMPP), Inbox watches a spool directory for Message/CPIM
// objects, maps each with Gateway.Stanzas (Message.Stanza, or
// Message.Presence for a PIDF payload, RFC 3922 §4.2 and §5.2) and sends
// the result on the component stream. The From of every object must be at
// the gateway's domain: a component may only send from its own domain
// (XEP-0114, RFC 6120 §4.9.3.9).
package gateway

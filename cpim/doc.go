// Package cpim implements the Common Presence and Instant Messaging formats
// and their mapping to XMPP.
//
// Implemented:
//
//   - RFC 3862, Message/CPIM: §2 (object structure, header rules, the
//     character escapes of §2.3, the encapsulated MIME entity), §3 (header
//     names, parameters, language tags, namespaces, Require, the collected
//     ABNF of §3.6) and the headers of §4 (From, To, cc, DateTime,
//     Subject, NS, Require). See Message, Parse and Message.Marshal.
//   - RFC 3922, mapping XMPP to CPIM: §3 address mapping (XMPPToIM,
//     IMToXMPP, XMPPToPres, PresToXMPP), §4 messages (FromStanza,
//     Message.Stanza), §5 presence (PresenceToPIDF, PIDFToPresence, and
//     with the Message/CPIM carrier PresenceMessage, Message.Presence), the
//     one-stanza-per-tuple rule of §6.3.1 and the zero-tuple rule of §6.3.2.
//     Resources that are not XML IDs become tuple ids by TupleID's escape.
//     §6 subscriptions as operations of the common presence profile
//     (Subscription): an XMPP request to a watcher's operation
//     (SubscriptionFromStanza) and its result back to the XMPP watcher
//     (Subscription.Answer), a foreign watcher's operation to XMPP
//     (Subscription.Stanza) and the XMPP user's answer back
//     (SubscriptionAnswer). CPP defines operations, not a wire format:
//     carrying them to a presence service is the gateway's business.
//   - RFC 3863, PIDF: the parts the RFC 3922 mapping uses (presence,
//     tuple, status, basic, contact with priority, note, timestamp) and
//     the RFC 3863 §4.4 qvalue syntax; the "im" status extension
//     (urn:ietf:params:xml:ns:pidf:im).
//
// RFC 3923 uses Message.MarshalMIME for the object it signs and encrypts.
//
// # Lossless mapping
//
// RFC 3922 lets a gateway ignore the stanza type, the thread, resources and
// extension elements. This package keeps them instead, as extension headers
// in the namespace NamespaceXMPP under the prefix "XMPP" (XMPP.Type,
// XMPP.ID, XMPP.Lang, XMPP.FromResource, XMPP.ToResource, XMPP.Thread,
// XMPP.ThreadParent, XMPP.Body, XMPP.Extension), so that a message survives
// XMPP -> CPIM -> XMPP. RFC 3862 §3.4 makes unknown prefixed headers
// harmless to other CPIM processors.
//
// What a conversion cannot carry is never silently dropped: the result is
// returned together with an *UnmappedError that names each dropped part.
//
// # Limits
//
// Parse is bounded by a Parser's limits (object size, header count, line
// length). The XML readers reject DTDs and any directive, and bound input
// size, depth, token and attribute counts. No input makes them panic.
package cpim

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
//     Resources that are not xs:IDs become tuple ids by TupleID's escape.
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
// # What is written and what is read
//
// Addresses. An im: or pres: URI has the localpart escaped as RFC 3922 §3
// says and the domain in ASCII: XMPPToIM and XMPPToPres, and through them
// every From, To and cc header, PIDF entity and contact and subscription
// URI, write each U-label of a JID's domainpart as its A-label (IDNA
// ToASCII with the UTS #46 nontransitional mapping of golang.org/x/net/idna's
// Lookup profile, which accepts every domainpart mellium.im/xmpp/jid does).
// ASCII domainparts and IP literals are copied. IMToXMPP and PresToXMPP read
// A-labels and U-labels alike and return the JID's U-labels, so that
// "im:juliet@xn--exmple-cua.example" and "im:juliet@exämple.example" both
// read as "juliet@exämple.example", which writes as the first.
//
// DateTime. Marshal writes time.RFC3339Nano: upper-case "T", "Z" for a
// zero offset, fractions without trailing zeros. Parse reads every RFC 3339
// §5.6 date-time: "t" and "z" in either case, any number of fraction digits
// (kept to the nanosecond), any offset from -23:59 to +23:59 (+00:00 and
// -00:00 are a zero offset, written back as Z), and a leap second, second
// 60, where RFC 3339 §5.7 lets one be: at 23:59:60 UTC on the last day of
// a month, as in §5.8's 1990-12-31T15:59:60-08:00. time.Time has no leap
// second; it is read as second 59 of the same minute, and so written back.
// Days are checked against their month and year; a space in place of "T"
// (which RFC 3339 §5.6 leaves to applications) is not read.
//
// Tuple ids. RFC 3863 types the tuple id xs:ID, an NCName of XML Schema 1.0,
// whose letters, digits, combining characters and extenders are those of
// XML 1.0 fourth edition Appendix B. TupleID escapes every character of a
// resource outside those classes, or not allowed where it stands (a leading
// digit, '.' or '-'), as _xHHHH_ or _xHHHHHHHH_, and a '_' that leads or
// precedes 'x' likewise; TupleResource reverses it exactly. Emoji, most
// punctuation and symbols, and the letters Unicode added after version 2.0
// are escaped, though an XML 1.0 fifth edition name could hold them:
// schema validators check the older classes.
//
// Header lines. Marshal ends no header line in whitespace (RFC 3862 §2.2),
// so it writes no Subject or extension header with an empty value, whose
// line would end in the space the §3.6 grammar puts before the value: it
// returns an error instead, and Parse rejects "Subject: " and the like as
// an object Marshal could not write back. An empty MIME header of the
// encapsulated entity is written "Name:", without the space.
//
// # Lossless mapping
//
// RFC 3922 lets a gateway ignore the stanza type, the thread, resources and
// extension elements. This package keeps them instead, as extension headers
// in the namespace NamespaceXMPP under the prefix "XMPP" (XMPP.Type,
// XMPP.ID, XMPP.Lang, XMPP.FromResource, XMPP.ToResource, XMPP.ExactBody,
// XMPP.Body, XMPP.Thread, XMPP.ThreadParent, XMPP.Extension), so that a
// message survives XMPP -> CPIM -> XMPP. RFC 3862 §3.4 makes unknown
// prefixed headers harmless to other CPIM processors.
//
// The content is the text of one <body/>, its line breaks written as CRLF
// (text/plain's canonical form). When that cannot give the text back, because
// it holds CR characters, XMPP.ExactBody carries the <body/> element as it
// was, and Message.Stanza uses it while it matches the content. An element
// that would need an empty header value (an empty <subject/>, <body/> or
// <thread/>, an empty body with xml:lang) travels whole in XMPP.Extension,
// as every element that is not simple text does. Message.Stanza writes the
// subjects, the content body, the other bodies, the thread, then the
// XMPP.Extension elements, each group in its own order: children of
// different kinds may come back in another order than they went.
//
// What a conversion cannot carry is never silently dropped: the result is
// returned together with an *UnmappedError that names each dropped part
// (an empty type, id or xml:lang attribute of a message, for one).
//
// # Limits
//
// Parse is bounded by a Parser's limits (object size, header count, line
// length). The XML readers reject DTDs and any directive, and bound input
// size, depth, token and attribute counts. No input makes them panic.
package cpim

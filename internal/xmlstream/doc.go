// Package xmlstream reads and writes XMPP XML streams (RFC 6120 §4 and §11).
//
// The Reader scans a stream one top-level element at a time with a
// purpose-built scanner instead of a full token pass: it finds element
// boundaries, checks well-formedness, namespace prefixes and UTF-8, refuses
// what RFC 6120 §11.1 restricts (comments, processing instructions, DTDs,
// entity declarations and references other than the five predefined ones)
// with the restricted-xml stream error, and enforces the size, depth and
// attribute limits of Limits with policy-violation. Each element keeps its
// raw bytes, so a relay forwards a stanza without re-encoding its payload;
// Element.AppendTo adjusts only the top-level start tag when the element
// moves to a stream of another default namespace (RFC 6120 §4.8.3,
// XEP-0114). Code that needs a tree (negotiation, local services) decodes an
// Element with encoding/xml.
package xmlstream

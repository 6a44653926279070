package component

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/stream"
)

// NS is the namespace of component streams (XEP-0114 §3).
const NS = xmlstream.NSComponent

// Timeouts of the closing handshake (RFC 6120 §4.4): how long the last
// bytes may take to leave, and how long the peer has to answer
// </stream:stream> before the connection is closed anyway.
const (
	closeTimeout  = 5 * time.Second
	lingerTimeout = 2 * time.Second
)

// aLongTimeAgo is a deadline in the past, to unblock I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// streamCtx is the context of the streams this package opens: the
// component namespace as the default and the stream prefix bound, no
// xml:lang. Stanzas written to a component stream are reframed for it.
var streamCtx = xmlstream.StreamContext{
	NS:    NS,
	Decls: []xmlstream.Decl{{Prefix: "", NS: NS}, {Prefix: "stream", NS: xmlstream.NSStream}},
}

// handshakeDigest is the handshake value of XEP-0114 §3: the
// SHA-1 of the stream id concatenated with the secret, in lowercase hex.
func handshakeDigest(id, secret string) []byte {
	sum := sha1.Sum([]byte(id + secret))
	d := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(d, sum[:])
	return d
}

// checkHandshake compares a received handshake value with the expected one
// in constant time. Whitespace around the value and uppercase hex digits are
// tolerated.
func checkHandshake(got []byte, id, secret string) bool {
	got = bytes.ToLower(bytes.TrimSpace(got))
	return subtle.ConstantTimeCompare(got, handshakeDigest(id, secret)) == 1
}

// newStreamID returns a fresh unguessable stream id (RFC 6120 §4.7.3: at
// least 128 bits of randomness), which also salts the handshake.
func newStreamID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
}

// isStreamError reports whether el is <stream:error/>.
func isStreamError(el *xmlstream.Element) bool {
	return el.Space == xmlstream.NSStream && el.Local == "error"
}

// parseStreamError decodes a <stream:error/> element read on a stream with
// context ctx.
func parseStreamError(el *xmlstream.Element, ctx xmlstream.StreamContext) *stream.Error {
	se, err := stream.Parse(el.AppendTo(nil, ctx, xmlstream.StreamContext{}))
	if err != nil {
		return &stream.Error{Condition: stream.UndefinedCondition, Remote: true, Text: "unparsable stream error"}
	}
	return se
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeWrite half-closes nc when it can, so that the peer reads our last
// bytes and its end of the stream before the connection goes away.
func closeWrite(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// isStanza reports whether el is a message, presence or iq stanza in a
// namespace a component stream accepts: its own, or jabber:client as
// Prosody also accepts.
func isStanza(el *xmlstream.Element) bool {
	switch el.Local {
	case "message", "presence", "iq":
	default:
		return false
	}
	return el.Space == NS || el.Space == xmlstream.NSClient
}

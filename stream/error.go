package stream

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// NS is the namespace of the stream element (RFC 6120 §4.8.1).
const NS = "http://etherx.jabber.org/streams"

// NSErrors is the namespace of stream error conditions (RFC 6120 §4.9.3).
const NSErrors = "urn:ietf:params:xml:ns:xmpp-streams"

// Condition is a defined stream error condition (RFC 6120 §4.9.3).
type Condition string

// The defined conditions of RFC 6120 §4.9.3, in the order of the RFC.
const (
	// BadFormat: the entity has sent XML that cannot be processed (§4.9.3.1).
	BadFormat Condition = "bad-format"
	// BadNamespacePrefix: a namespace prefix is unsupported, or the default
	// namespace is missing (§4.9.3.2).
	BadNamespacePrefix Condition = "bad-namespace-prefix"
	// Conflict: the server closes the stream because a new stream conflicts
	// with it (§4.9.3.3).
	Conflict Condition = "conflict"
	// ConnectionTimeout: one party is closing the stream because it has
	// reason to believe the other has lost the connection (§4.9.3.4).
	ConnectionTimeout Condition = "connection-timeout"
	// HostGone: the 'to' address names a service no longer hosted here
	// (§4.9.3.5).
	HostGone Condition = "host-gone"
	// HostUnknown: the 'to' address names a service not hosted here
	// (§4.9.3.6).
	HostUnknown Condition = "host-unknown"
	// ImproperAddressing: a stanza lacks a 'to' or 'from' where one is
	// required (§4.9.3.7).
	ImproperAddressing Condition = "improper-addressing"
	// InternalServerError: the server has experienced a misconfiguration or
	// other internal error (§4.9.3.8).
	InternalServerError Condition = "internal-server-error"
	// InvalidFrom: the data in a 'from' attribute does not match an
	// authorized JID or validated domain (§4.9.3.9).
	InvalidFrom Condition = "invalid-from"
	// InvalidNamespace: the stream or content namespace is not supported
	// (§4.9.3.10).
	InvalidNamespace Condition = "invalid-namespace"
	// InvalidXML: the entity has sent invalid XML to a validating server
	// (§4.9.3.11).
	InvalidXML Condition = "invalid-xml"
	// NotAuthorized: the entity tried to send data before the stream was
	// authenticated (§4.9.3.12).
	NotAuthorized Condition = "not-authorized"
	// NotWellFormed: the data is not well-formed XML (§4.9.3.13).
	NotWellFormed Condition = "not-well-formed"
	// PolicyViolation: the entity violated a local service policy, such as
	// a stanza size limit (§4.9.3.14).
	PolicyViolation Condition = "policy-violation"
	// RemoteConnectionFailed: the server cannot connect to a remote entity
	// needed for authentication (§4.9.3.15).
	RemoteConnectionFailed Condition = "remote-connection-failed"
	// Reset: the server is closing the stream because of new security
	// information, and the stream must be renegotiated (§4.9.3.16).
	Reset Condition = "reset"
	// ResourceConstraint: the server lacks the resources to service the
	// stream (§4.9.3.17).
	ResourceConstraint Condition = "resource-constraint"
	// RestrictedXML: the entity sent a comment, processing instruction, DTD
	// subset or entity reference (§4.9.3.18, §11.1).
	RestrictedXML Condition = "restricted-xml"
	// SeeOtherHost: the server will not serve the stream but redirects it to
	// another host (§4.9.3.19).
	SeeOtherHost Condition = "see-other-host"
	// SystemShutdown: the server is being shut down (§4.9.3.20).
	SystemShutdown Condition = "system-shutdown"
	// UndefinedCondition: none of the other conditions apply (§4.9.3.21).
	UndefinedCondition Condition = "undefined-condition"
	// UnsupportedEncoding: the stream is not in UTF-8 (§4.9.3.22).
	UnsupportedEncoding Condition = "unsupported-encoding"
	// UnsupportedFeature: a mandatory stream feature is not supported
	// (§4.9.3.23).
	UnsupportedFeature Condition = "unsupported-feature"
	// UnsupportedStanzaType: a first-level child of the stream is not
	// supported (§4.9.3.24).
	UnsupportedStanzaType Condition = "unsupported-stanza-type"
	// UnsupportedVersion: the 'version' of the stream is not supported
	// (§4.9.3.25).
	UnsupportedVersion Condition = "unsupported-version"
)

// Conditions lists every defined condition.
var Conditions = []Condition{
	BadFormat, BadNamespacePrefix, Conflict, ConnectionTimeout, HostGone,
	HostUnknown, ImproperAddressing, InternalServerError, InvalidFrom,
	InvalidNamespace, InvalidXML, NotAuthorized, NotWellFormed, PolicyViolation,
	RemoteConnectionFailed, Reset, ResourceConstraint, RestrictedXML,
	SeeOtherHost, SystemShutdown, UndefinedCondition, UnsupportedEncoding,
	UnsupportedFeature, UnsupportedStanzaType, UnsupportedVersion,
}

// Error is a stream error (RFC 6120 §4.9.2).
type Error struct {
	Condition Condition
	// Text is optional descriptive text for the peer's logs (§4.9.2). It is
	// sent on the wire: never put secrets in it.
	Text string
	// SeeOtherHost is the host named by a see-other-host condition.
	SeeOtherHost string
	// App is an optional application-specific condition element, as raw XML.
	App []byte
	// Remote is true for an error received from the peer rather than raised
	// locally.
	Remote bool
}

// New returns a stream error with the given condition and text.
func New(c Condition, text string) *Error { return &Error{Condition: c, Text: text} }

// Errorf returns a stream error with a formatted text.
func Errorf(c Condition, format string, args ...any) *Error {
	return &Error{Condition: c, Text: fmt.Sprintf(format, args...)}
}

// Sentinel values for errors.Is; they match any *Error of the same condition.
var (
	ErrBadFormat             = &Error{Condition: BadFormat}
	ErrConflict              = &Error{Condition: Conflict}
	ErrConnectionTimeout     = &Error{Condition: ConnectionTimeout}
	ErrHostUnknown           = &Error{Condition: HostUnknown}
	ErrImproperAddressing    = &Error{Condition: ImproperAddressing}
	ErrInternalServerError   = &Error{Condition: InternalServerError}
	ErrInvalidFrom           = &Error{Condition: InvalidFrom}
	ErrInvalidNamespace      = &Error{Condition: InvalidNamespace}
	ErrNotAuthorized         = &Error{Condition: NotAuthorized}
	ErrNotWellFormed         = &Error{Condition: NotWellFormed}
	ErrPolicyViolation       = &Error{Condition: PolicyViolation}
	ErrRemoteConnFailed      = &Error{Condition: RemoteConnectionFailed}
	ErrResourceConstraint    = &Error{Condition: ResourceConstraint}
	ErrRestrictedXML         = &Error{Condition: RestrictedXML}
	ErrSystemShutdown        = &Error{Condition: SystemShutdown}
	ErrUndefinedCondition    = &Error{Condition: UndefinedCondition}
	ErrUnsupportedEncoding   = &Error{Condition: UnsupportedEncoding}
	ErrUnsupportedFeature    = &Error{Condition: UnsupportedFeature}
	ErrUnsupportedStanzaType = &Error{Condition: UnsupportedStanzaType}
	ErrUnsupportedVersion    = &Error{Condition: UnsupportedVersion}
)

func (e *Error) Error() string {
	var b strings.Builder
	if e.Remote {
		b.WriteString("stream error from peer: ")
	} else {
		b.WriteString("stream error: ")
	}
	b.WriteString(string(e.Condition))
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	return b.String()
}

// Is reports whether target is a *Error with the same condition. A target
// with an empty condition matches any stream error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Condition == "" || t.Condition == e.Condition
}

// AppendXML appends the <stream:error/> element to b. The stream prefix must
// be bound to NS on the stream, as it always is on the streams this project
// opens.
func (e *Error) AppendXML(b []byte) []byte {
	b = append(b, "<stream:error><"...)
	b = append(b, e.Condition...)
	b = append(b, " xmlns='"+NSErrors+"'"...)
	if e.Condition == SeeOtherHost && e.SeeOtherHost != "" {
		b = append(b, '>')
		b = appendEscaped(b, e.SeeOtherHost)
		b = append(b, "</"...)
		b = append(b, e.Condition...)
		b = append(b, '>')
	} else {
		b = append(b, "/>"...)
	}
	if e.Text != "" {
		b = append(b, "<text xmlns='"+NSErrors+"'>"...)
		b = appendEscaped(b, e.Text)
		b = append(b, "</text>"...)
	}
	b = append(b, e.App...)
	return append(b, "</stream:error>"...)
}

func appendEscaped(b []byte, s string) []byte {
	var buf bytes.Buffer
	xml.EscapeText(&buf, []byte(s))
	return append(b, buf.Bytes()...)
}

// Parse decodes the content of a <stream:error/> element received from a
// peer. The result has Remote set.
func Parse(raw []byte) (*Error, error) {
	var v struct {
		Inner []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
			Inner   []byte `xml:",innerxml"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("stream: bad stream error element: %w", err)
	}
	e := &Error{Remote: true, Condition: UndefinedCondition}
	found := false
	for _, c := range v.Inner {
		switch {
		case c.XMLName.Space == NSErrors && c.XMLName.Local == "text":
			e.Text = c.Text
		case c.XMLName.Space == NSErrors && !found:
			e.Condition = Condition(c.XMLName.Local)
			found = true
			if e.Condition == SeeOtherHost {
				e.SeeOtherHost = strings.TrimSpace(c.Text)
			}
		}
	}
	return e, nil
}

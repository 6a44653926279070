package e2e

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
)

// Namespaces used in RFC 3923 errors.
const (
	// NS is the RFC 3923 namespace (§9, §12.1) of <e2e/> and of the
	// application-specific error conditions.
	NS = "urn:ietf:params:xml:ns:xmpp-e2e"

	// NSStanzas is the namespace of the defined stanza error conditions
	// (RFC 6120 §8.3.3).
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

	// nsExamples is the namespace RFC 3923 Examples 16 to 18 print; it is
	// accepted on input and never sent.
	nsExamples = "urn:ietf:params:xml:xmpp-e2e"
)

// Condition is an RFC 3923 application-specific error condition: an empty
// element in NS that goes with a defined stanza error condition.
type Condition string

// The application-specific conditions of RFC 3923 §7 and Appendix A.
const (
	// BadTimestamp: "the recipient is able to decrypt and verify the
	// signature but the timestamp is not within the acceptable range"
	// (§7 case 3, §6.9).
	BadTimestamp Condition = "bad-timestamp"

	// SignatureUnverified: "the recipient is able to decrypt but unable to
	// verify the signature" (§7 case 4). The §7 prose and Example 17 spell
	// it unverified-signature; the Appendix A schema's spelling is sent and
	// both are accepted.
	SignatureUnverified Condition = "signature-unverified"

	// DecryptionFailed: "the recipient is unable to decrypt the stanza"
	// (§7 case 5).
	DecryptionFailed Condition = "decryption-failed"
)

// Error is an RFC 3923 §7 recipient error. Its Type and Condition are the
// stanza error that is sent back; E2E is the optional application-specific
// condition; Err is the local cause, which is never sent.
//
// The package-level Err values are the four errors the RFC defines; an
// *Error matches one of them under errors.Is when its Condition (and E2E,
// when the target has one) are the same, so that
//
//	errors.Is(err, e2e.ErrBadTimestamp)
//
// holds for every timestamp failure whatever its cause.
type Error struct {
	// Type is the stanza error type: "modify" or "cancel".
	Type string

	// Condition is the defined stanza error condition (RFC 6120 §8.3.3),
	// such as "not-acceptable".
	Condition string

	// E2E is the application-specific condition, or empty.
	E2E Condition

	// Err is the cause, for logs and errors.Is/As; it is never sent.
	Err error
}

// The errors of RFC 3923 §7.
var (
	// ErrServiceUnavailable: "the recipient does not understand the
	// protocol" or cannot process this kind of protected object (§7 case 1).
	ErrServiceUnavailable = &Error{Type: "cancel", Condition: "service-unavailable"}

	// ErrBadTimestamp: not-acceptable with bad-timestamp (§7 case 3).
	ErrBadTimestamp = &Error{Type: "modify", Condition: "not-acceptable", E2E: BadTimestamp}

	// ErrSignatureUnverified: not-acceptable with signature-unverified
	// (§7 case 4).
	ErrSignatureUnverified = &Error{Type: "modify", Condition: "not-acceptable", E2E: SignatureUnverified}

	// ErrDecryptionFailed: bad-request with decryption-failed (§7 case 5).
	ErrDecryptionFailed = &Error{Type: "modify", Condition: "bad-request", E2E: DecryptionFailed}
)

// Wrap returns a copy of kind (one of the Err values) with cause as Err.
func Wrap(kind *Error, cause error) *Error {
	e := *kind
	e.Err = cause
	return &e
}

// Error implements error.
func (e *Error) Error() string {
	s := "e2e: " + e.Condition
	if e.E2E != "" {
		s += " (" + string(e.E2E) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same condition: its
// Condition, Type and E2E must match where the target sets them.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return (t.Condition == "" || t.Condition == e.Condition) &&
		(t.Type == "" || t.Type == e.Type) &&
		(t.E2E == "" || t.E2E == e.E2E)
}

// StanzaError returns the <error/> element to put in the error stanza sent
// back to the sender, for example:
//
//	<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><bad-timestamp xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error>
func (e *Error) StanzaError() []byte {
	var b bytes.Buffer
	b.WriteString("<error type='")
	xml.EscapeText(&b, []byte(e.Type))
	b.WriteString("'><")
	b.WriteString(e.Condition)
	b.WriteString(" xmlns='" + NSStanzas + "'/>")
	if e.E2E != "" {
		b.WriteString("<")
		b.WriteString(string(e.E2E))
		b.WriteString(" xmlns='" + NS + "'/>")
	}
	b.WriteString("</error>")
	return b.Bytes()
}

// MarshalXML implements xml.Marshaler; it writes the same element as
// StanzaError.
func (e *Error) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	start = xml.StartElement{
		Name: xml.Name{Local: "error"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: e.Type}},
	}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	cond := xml.StartElement{Name: xml.Name{Space: NSStanzas, Local: e.Condition}}
	if err := enc.EncodeToken(cond); err != nil {
		return err
	}
	if err := enc.EncodeToken(cond.End()); err != nil {
		return err
	}
	if e.E2E != "" {
		app := xml.StartElement{Name: xml.Name{Space: NS, Local: string(e.E2E)}}
		if err := enc.EncodeToken(app); err != nil {
			return err
		}
		if err := enc.EncodeToken(app.End()); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// UnmarshalXML implements xml.Unmarshaler. It accepts the RFC's variants:
// both namespaces of the application-specific condition and both spellings
// of signature-unverified. Unknown children (such as <text/>) are skipped.
func (e *Error) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	*e = Error{}
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "type" {
			e.Type = a.Value
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Space {
			case NSStanzas:
				if t.Name.Local != "text" && e.Condition == "" {
					e.Condition = t.Name.Local
				}
			case NS, nsExamples:
				switch t.Name.Local {
				case string(BadTimestamp), string(SignatureUnverified), string(DecryptionFailed):
					e.E2E = Condition(t.Name.Local)
				case "unverified-signature":
					e.E2E = SignatureUnverified
				}
			}
			if err := dec.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			if e.Condition == "" {
				return errors.New("e2e: <error/> without a defined condition")
			}
			return nil
		}
	}
}

// ParseError parses an <error/> element (the child of an error stanza)
// into an *Error, accepting the variants UnmarshalXML accepts.
func ParseError(b []byte) (*Error, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("e2e: parse error: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "error" {
				return nil, fmt.Errorf("e2e: parse error: element <%s/> is not <error/>", t.Name.Local)
			}
			e := new(Error)
			if err := e.UnmarshalXML(dec, t); err != nil {
				return nil, fmt.Errorf("e2e: parse error: %w", err)
			}
			return e, nil
		case xml.Directive:
			return nil, errors.New("e2e: parse error: DTDs are not allowed")
		}
	}
}

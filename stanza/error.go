package stanza

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// NS is the namespace of stanza error conditions (RFC 6120 §8.3.3).
const NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Type is the error type (RFC 6120 §8.3.2).
type Type string

// Error types.
const (
	Auth     Type = "auth"     // retry after providing credentials
	Cancel   Type = "cancel"   // do not retry (the error cannot be remedied)
	Continue Type = "continue" // proceed (the condition was only a warning)
	Modify   Type = "modify"   // retry after changing the data sent
	Wait     Type = "wait"     // retry after waiting (the error is temporary)
)

// Condition is a defined stanza error condition (RFC 6120 §8.3.3).
type Condition string

// The defined conditions of RFC 6120 §8.3.3.
const (
	BadRequest            Condition = "bad-request"             // §8.3.3.1, modify
	Conflict              Condition = "conflict"                // §8.3.3.2, cancel
	FeatureNotImplemented Condition = "feature-not-implemented" // §8.3.3.3, cancel
	Forbidden             Condition = "forbidden"               // §8.3.3.4, auth
	Gone                  Condition = "gone"                    // §8.3.3.5, cancel
	InternalServerError   Condition = "internal-server-error"   // §8.3.3.6, cancel
	ItemNotFound          Condition = "item-not-found"          // §8.3.3.7, cancel
	JIDMalformed          Condition = "jid-malformed"           // §8.3.3.8, modify
	NotAcceptable         Condition = "not-acceptable"          // §8.3.3.9, modify
	NotAllowed            Condition = "not-allowed"             // §8.3.3.10, cancel
	NotAuthorized         Condition = "not-authorized"          // §8.3.3.11, auth
	PolicyViolation       Condition = "policy-violation"        // §8.3.3.12, modify
	RecipientUnavailable  Condition = "recipient-unavailable"   // §8.3.3.13, wait
	Redirect              Condition = "redirect"                // §8.3.3.14, modify
	RegistrationRequired  Condition = "registration-required"   // §8.3.3.15, auth
	RemoteServerNotFound  Condition = "remote-server-not-found" // §8.3.3.16, cancel
	RemoteServerTimeout   Condition = "remote-server-timeout"   // §8.3.3.17, wait
	ResourceConstraint    Condition = "resource-constraint"     // §8.3.3.18, wait
	ServiceUnavailable    Condition = "service-unavailable"     // §8.3.3.19, cancel
	SubscriptionRequired  Condition = "subscription-required"   // §8.3.3.20, auth
	UndefinedCondition    Condition = "undefined-condition"     // §8.3.3.21
	UnexpectedRequest     Condition = "unexpected-request"      // §8.3.3.22, wait
)

// DefaultType is the error type RFC 6120 §8.3.3 gives each condition.
func (c Condition) DefaultType() Type {
	switch c {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolation, Redirect:
		return Modify
	case Forbidden, NotAuthorized, RegistrationRequired, SubscriptionRequired:
		return Auth
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraint, UnexpectedRequest:
		return Wait
	}
	return Cancel
}

// Error is a stanza error (RFC 6120 §8.3.2).
type Error struct {
	Type      Type // zero means Condition.DefaultType()
	Condition Condition
	// By is the entity that generated the error (§8.3.2), often our domain.
	By   string
	Text string
	Lang string
	// App is an optional application-specific condition, as raw XML with its
	// own namespace declaration.
	App []byte
}

// name returns the condition as an element name: undefined-condition for
// one that cannot be (a condition read from a peer always can).
func (c Condition) name() string {
	if c == "" {
		return string(UndefinedCondition)
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || b == '-' || b == '_' || i > 0 && ('0' <= b && b <= '9' || b == '.')) {
			return string(UndefinedCondition)
		}
	}
	return string(c)
}

// New returns an error with the condition's default type.
func New(c Condition, text string) *Error { return &Error{Condition: c, Text: text} }

func (e *Error) typ() Type {
	if e.Type != "" {
		return e.Type
	}
	return e.Condition.DefaultType()
}

func (e *Error) Error() string {
	s := "stanza error: " + string(e.typ()) + " " + string(e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is a *Error with the same condition and, if the
// target's type is set, the same type.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Condition != "" && t.Condition != e.Condition {
		return false
	}
	return t.Type == "" || t.Type == e.typ()
}

// AppendXML appends the <error/> child element to b.
func (e *Error) AppendXML(b []byte) []byte {
	b = append(b, "<error type='"...)
	b = AppendEscaped(b, string(e.typ()))
	b = append(b, '\'')
	if e.By != "" {
		b = append(b, " by='"...)
		b = AppendEscaped(b, e.By)
		b = append(b, '\'')
	}
	b = append(b, "><"...)
	b = append(b, e.Condition.name()...)
	b = append(b, " xmlns='"+NS+"'/>"...)
	if e.Text != "" {
		b = append(b, "<text xmlns='"+NS+"'"...)
		if e.Lang != "" {
			b = append(b, " xml:lang='"...)
			b = AppendEscaped(b, e.Lang)
			b = append(b, '\'')
		}
		b = append(b, '>')
		b = AppendEscaped(b, e.Text)
		b = append(b, "</text>"...)
	}
	b = append(b, e.App...)
	return append(b, "</error>"...)
}

// MarshalXML implements xml.Marshaler.
func (e *Error) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	d := xml.NewDecoder(bytes.NewReader(e.AppendXML(nil)))
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if err := enc.EncodeToken(tok); err != nil {
			return err
		}
	}
	return enc.Flush()
}

// AppendEscaped appends s to b, escaped for use in XML text or in an
// attribute value delimited by ' or ".
func AppendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\'':
			esc = "&apos;"
		case '"':
			esc = "&quot;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// ParseError decodes an <error/> element (the element itself, as raw XML).
func ParseError(raw []byte) (*Error, error) {
	var v struct {
		Type  string `xml:"type,attr"`
		By    string `xml:"by,attr"`
		Inner []struct {
			XMLName xml.Name
			Lang    string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
			Text    string `xml:",chardata"`
			Inner   []byte `xml:",innerxml"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("stanza: bad error element: %w", err)
	}
	e := &Error{Type: Type(v.Type), By: v.By, Condition: UndefinedCondition}
	found := false
	for _, c := range v.Inner {
		switch {
		case c.XMLName.Space == NS && c.XMLName.Local == "text":
			e.Text, e.Lang = c.Text, c.Lang
		case c.XMLName.Space == NS && !found:
			// A name that could not be written back ("A:", which
			// encoding/xml lets through) is no condition: undefined.
			if cond := Condition(c.XMLName.Local); cond.name() == c.XMLName.Local {
				e.Condition = cond
			}
			found = true
		case c.XMLName.Space != NS && e.App == nil:
			var buf bytes.Buffer
			buf.WriteString("<" + c.XMLName.Local + " xmlns='")
			xml.EscapeText(&buf, []byte(c.XMLName.Space))
			buf.WriteString("'")
			if len(c.Inner) == 0 {
				buf.WriteString("/>")
			} else {
				buf.WriteString(">")
				buf.Write(c.Inner)
				buf.WriteString("</" + c.XMLName.Local + ">")
			}
			// encoding/xml lets a prefixed name with a bad local part
			// through ("A0:0"); such an element would not parse once
			// written, so it is left out.
			if xml.Unmarshal(buf.Bytes(), new(struct{})) == nil {
				e.App = buf.Bytes()
			}
		}
	}
	if !strings.Contains(string(raw), NS) {
		return e, fmt.Errorf("stanza: error element without a defined condition")
	}
	return e, nil
}

package smime

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/s2sd/s2sd/e2e"
)

// Namespaces of stanzas.
const (
	nsClient = "jabber:client"
	nsServer = "jabber:server"

	// nsE2EExamples is the namespace RFC 3923 Examples 16 to 18 print;
	// accepted on input only.
	nsE2EExamples = "urn:ietf:params:xml:xmpp-e2e"
)

const maxDepth = 64

// ErrNotSecured is returned by Open for a stanza without an <e2e/> child.
var ErrNotSecured = errors.New("smime: stanza has no <e2e/> element")

// stanza is one top-level XMPP element as read from its bytes.
type stanza struct {
	raw     []byte
	name    string // local name: message, presence, iq
	qname   string // name as written, for the end tag
	ns      string // resolved namespace of the element
	attrs   map[string]string
	start   []byte // start tag as written, always ending in '>'
	inner   []byte // raw children
	e2eRaw  []byte // the <e2e/> element as written, nil if none
	e2eText []byte // character data of <e2e/>, CDATA and text concatenated
	hasE2E  bool
}

func (s *stanza) attr(name string) string { return s.attrs[name] }

// parseStanza reads one stanza. Only the outer element and the <e2e/>
// child are looked at; the rest is kept as written. DTDs are refused and
// depth is bounded; the caller bounds the size.
func parseStanza(b []byte) (*stanza, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	s := &stanza{raw: b, attrs: map[string]string{}}
	depth := 0
	var innerStart, e2eStart int64
	inE2E := false
	var text bytes.Buffer
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			if s.name == "" {
				return nil, errors.New("smime: no stanza")
			}
			return nil, errors.New("smime: stanza not closed")
		}
		if err != nil {
			return nil, fmt.Errorf("smime: stanza: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errors.New("smime: stanza: DTDs are not allowed")
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return nil, errors.New("smime: stanza nested too deeply")
			}
			switch {
			case depth == 1:
				s.name, s.ns = t.Name.Local, t.Name.Space
				for _, a := range t.Attr {
					if a.Name.Space == "" {
						s.attrs[a.Name.Local] = a.Value
					}
				}
				tag := b[off:d.InputOffset()]
				s.qname = tagName(tag)
				if bytes.HasSuffix(tag, []byte("/>")) {
					tag = append(bytes.TrimRight(tag[:len(tag)-2], " \t\r\n"), '>')
				}
				s.start = tag
				innerStart = d.InputOffset()
			case depth == 2 && t.Name.Local == "e2e" && (t.Name.Space == e2e.NS || t.Name.Space == nsE2EExamples) && !s.hasE2E:
				s.hasE2E, inE2E = true, true
				e2eStart = off
			case inE2E:
				return nil, errors.New("smime: <e2e/> has a child element")
			}
		case xml.EndElement:
			depth--
			switch depth {
			case 1:
				if inE2E {
					inE2E = false
					s.e2eRaw = b[e2eStart:d.InputOffset()]
					s.e2eText = bytes.Clone(text.Bytes())
				}
			case 0:
				s.inner = b[innerStart:off]
				return s, nil
			}
		case xml.CharData:
			if inE2E {
				text.Write(t)
			}
		}
	}
}

// tagName returns the qualified name of a raw start tag.
func tagName(tag []byte) string {
	tag = bytes.TrimPrefix(tag, []byte("<"))
	end := bytes.IndexAny(tag, " \t\r\n/>")
	if end < 0 {
		return string(tag)
	}
	return string(tag[:end])
}

// secured returns the stanza with its children replaced by an <e2e/>
// carrying entity in a CDATA section (RFC 3923 §3.1, §4.1, §5).
func (s *stanza) secured(entity []byte) []byte {
	var b bytes.Buffer
	b.Write(s.start)
	b.WriteString("<e2e xmlns='" + e2e.NS + "'><![CDATA[")
	// "]]>" cannot occur in CDATA: close and reopen around its '>'
	// (digest A.12 item 3).
	b.Write(bytes.ReplaceAll(entity, []byte("]]>"), []byte("]]]]><![CDATA[>")))
	b.WriteString("]]></e2e></" + s.qname + ">")
	return b.Bytes()
}

// withChildren returns the stanza's start tag, children and end tag.
func (s *stanza) withChildren(children []byte) []byte {
	var b bytes.Buffer
	b.Write(s.start)
	b.Write(children)
	b.WriteString("</" + s.qname + ">")
	return b.Bytes()
}

// withAttr returns the stanza with attribute name added to its start tag.
func (s *stanza) withAttr(name, value string) []byte {
	var b bytes.Buffer
	b.WriteString("<" + s.qname)
	writeAttr(&b, name, value)
	b.Write(s.start[1+len(s.qname):])
	b.Write(s.inner)
	b.WriteString("</" + s.qname + ">")
	return b.Bytes()
}

// xmppDocument wraps a stanza in an application/xmpp+xml document
// (RFC 3923 §5, §10): an <xmpp/> root in the stanza's namespace with the
// stanza as its only child.
func (s *stanza) xmppDocument() []byte {
	ns := nsClient
	if s.ns == nsServer {
		ns = nsServer
	}
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0' encoding='UTF-8'?>\n<xmpp xmlns='" + ns + "'>")
	b.Write(s.withChildren(s.inner))
	b.WriteString("</xmpp>\n")
	return b.Bytes()
}

// parseXMPPDocument returns the one stanza of an application/xmpp+xml
// document (RFC 3923 §5): root <xmpp/> in jabber:client or jabber:server,
// exactly one child that is a message, presence or iq.
func parseXMPPDocument(b []byte) (*stanza, error) {
	var child *stanza
	childStart := int64(-1)
	rootNS := nsClient
	err := guardedTokens(b, "application/xmpp+xml", func(tok xml.Token, off, end int64, depth int) error {
		switch t := tok.(type) {
		case xml.StartElement:
			switch depth {
			case 1:
				if t.Name.Local != "xmpp" || (t.Name.Space != nsClient && t.Name.Space != nsServer) {
					return fmt.Errorf("smime: application/xmpp+xml root is {%s}%s", t.Name.Space, t.Name.Local)
				}
				rootNS = t.Name.Space
			case 2:
				if child != nil || childStart >= 0 {
					return errors.New("smime: application/xmpp+xml has more than one stanza")
				}
				switch t.Name.Local {
				case "message", "presence", "iq":
				default:
					return fmt.Errorf("smime: application/xmpp+xml holds <%s/>, not a stanza", t.Name.Local)
				}
				childStart = off
			}
		case xml.EndElement:
			if depth == 1 && childStart >= 0 && child == nil {
				var err error
				if child, err = parseStanza(b[childStart:end]); err != nil {
					return err
				}
				// The child inherits the default namespace of <xmpp/>.
				if child.ns == "" {
					child.ns = rootNS
				}
			}
		case xml.CharData:
			if depth == 1 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("smime: application/xmpp+xml has text outside the stanza")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if child == nil {
		return nil, errors.New("smime: application/xmpp+xml holds no stanza")
	}
	return child, nil
}

// guardedTokens walks the XML document b with encoding/xml, refusing DTDs
// and nesting deeper than maxDepth, and calls f for each token with its
// start and end offsets and the depth after it (a start tag counts itself,
// an end tag does not).
func guardedTokens(b []byte, what string, f func(tok xml.Token, off, end int64, depth int) error) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth := 0
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("smime: %s: %w", what, err)
		}
		switch tok.(type) {
		case xml.Directive:
			return fmt.Errorf("smime: %s: DTDs are not allowed", what)
		case xml.StartElement:
			if depth++; depth > maxDepth {
				return fmt.Errorf("smime: %s nested too deeply", what)
			}
		case xml.EndElement:
			depth--
		}
		if err := f(tok, off, d.InputOffset(), depth); err != nil {
			return err
		}
	}
}

// ErrorReply returns the error stanza to send back for a stanza that Open
// refused (RFC 3923 §7, Examples 16 to 18, with type='error' as RFC 6120
// §8.3 requires): the same element with 'from' and 'to' swapped, the same
// 'id', the received <e2e/> element, and the <error/> of err. An err that
// is not an *e2e.Error is answered with service-unavailable. It returns
// nil, nil for a stanza of type 'error', which is never answered.
func ErrorReply(stanzaBytes []byte, err error) ([]byte, error) {
	s, perr := parseStanza(stanzaBytes)
	if perr != nil {
		return nil, perr
	}
	if s.attr("type") == "error" {
		return nil, nil
	}
	var ee *e2e.Error
	if !errors.As(err, &ee) {
		ee = e2e.ErrServiceUnavailable
	}
	var b bytes.Buffer
	b.WriteString("<" + s.name)
	if s.ns != "" {
		writeAttr(&b, "xmlns", s.ns)
	}
	if v := s.attr("to"); v != "" {
		writeAttr(&b, "from", v)
	}
	if v := s.attr("from"); v != "" {
		writeAttr(&b, "to", v)
	}
	if v := s.attr("id"); v != "" {
		writeAttr(&b, "id", v)
	}
	writeAttr(&b, "type", "error")
	b.WriteString(">")
	b.Write(s.e2eRaw)
	b.Write(ee.StanzaError())
	b.WriteString("</" + s.name + ">")
	return b.Bytes(), nil
}

func writeAttr(b *bytes.Buffer, name, value string) {
	b.WriteString(" " + name + "='")
	xml.EscapeText(b, []byte(value))
	b.WriteString("'")
}

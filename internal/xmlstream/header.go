package xmlstream

import (
	"bytes"
	"strings"

	"github.com/s2sd/s2sd/stream"
)

// Namespaces of XMPP streams.
const (
	NSClient    = "jabber:client"                        // RFC 6120 §4.8.3
	NSServer    = "jabber:server"                        // RFC 6120 §4.8.3
	NSComponent = "jabber:component:accept"              // XEP-0114
	NSDialback  = "jabber:server:dialback"               // XEP-0220 §2.1
	NSStream    = stream.NS                              // RFC 6120 §4.8.1
	NSXML       = "http://www.w3.org/XML/1998/namespace" // the xml: prefix
)

// Decl is a namespace declaration on a stream header.
type Decl struct {
	Prefix string // "" for the default namespace
	NS     string
}

// Header is a stream header (RFC 6120 §4.7).
type Header struct {
	NS      string // the default namespace: jabber:server, jabber:component:accept…
	From    string
	To      string
	ID      string
	Version string
	Lang    string
	// Decls are the namespace declarations on the header, the stream prefix
	// among them.
	Decls []Decl
}

// Dialback reports whether the header declares the dialback namespace
// (XEP-0220 §2.1: a server that supports dialback declares it).
func (h Header) Dialback() bool {
	for _, d := range h.Decls {
		if d.NS == NSDialback {
			return true
		}
	}
	return false
}

func (h Header) streamPrefix() string {
	for _, d := range h.Decls {
		if d.NS == NSStream {
			if d.Prefix == "" {
				return ""
			}
			return d.Prefix + ":"
		}
	}
	return "stream:"
}

// AppendHeader appends a stream header to b: an XML declaration and the
// <stream:stream> start tag with the stream prefix bound, the default
// namespace h.NS, the dialback prefix when dialback is true, and the
// addressing attributes that are set.
func AppendHeader(b []byte, h Header, dialback bool) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='"...)
	b = appendEscaped(b, h.NS)
	b = append(b, "' xmlns:stream='"+NSStream+"'"...)
	if dialback {
		b = append(b, " xmlns:db='"+NSDialback+"'"...)
	}
	for _, a := range [...][2]string{{"from", h.From}, {"to", h.To}, {"id", h.ID}, {"version", h.Version}, {"xml:lang", h.Lang}} {
		if a[1] == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, a[0]...)
		b = append(b, "='"...)
		b = appendEscaped(b, a[1])
		b = append(b, '\'')
	}
	return append(b, '>')
}

// StreamEnd closes a stream.
const StreamEnd = "</stream:stream>"

// AppendStreamError appends a stream error and the end of the stream
// (RFC 6120 §4.9.1.1).
func AppendStreamError(b []byte, e *stream.Error) []byte {
	b = e.AppendXML(b)
	return append(b, StreamEnd...)
}

// header scans an optional XML declaration and the stream start tag.
func (s *scanner) streamHeader() (Header, error) {
	if ok, err := s.hasPrefix("<?xml"); err != nil {
		return Header{}, err
	} else if ok {
		if err := s.ensure(6); err != nil {
			return Header{}, err
		}
		if c := s.at(s.pos + 5); !isSpace(c) && c != '?' {
			return Header{}, errRestricted("processing instruction")
		}
		// The XML declaration: up to "?>", no markup inside.
		for {
			i := bytes.Index(s.bytes(s.pos, s.avail()), []byte("?>"))
			if i >= 0 {
				decl := string(s.bytes(s.pos, s.pos+i))
				s.pos += i + 2
				if j := strings.Index(decl, "encoding"); j >= 0 {
					enc := strings.ToLower(decl[j:])
					if !strings.Contains(enc, "utf-8") && !strings.Contains(enc, "utf8") {
						return Header{}, stream.New(stream.UnsupportedEncoding, "streams are UTF-8")
					}
				}
				break
			}
			if err := s.more(); err != nil {
				return Header{}, err
			}
		}
		if _, err := s.skipWS(); err != nil {
			return Header{}, err
		}
	}
	if err := s.ensure(2); err != nil {
		return Header{}, err
	}
	if s.at(s.pos) != '<' {
		return Header{}, errSyntax("expected a stream header")
	}
	switch s.at(s.pos + 1) {
	case '!':
		if ok, _ := s.hasPrefix("<!--"); ok {
			return Header{}, errRestricted("comment")
		}
		return Header{}, errRestricted("DTD or declaration")
	case '?':
		return Header{}, errRestricted("processing instruction")
	}
	name, _, attrs, empty, err := s.startTag(nil)
	if err != nil {
		return Header{}, err
	}
	var h Header
	for _, a := range attrs {
		an := s.span(a.name)
		v := headerValue(s, a)
		switch {
		case string(an) == "xmlns":
			h.NS = v
			h.Decls = append(h.Decls, Decl{"", v})
		case bytes.HasPrefix(an, []byte("xmlns:")):
			h.Decls = append(h.Decls, Decl{knownPrefix(an[6:]), v})
		case string(an) == "from":
			h.From = v
		case string(an) == "to":
			h.To = v
		case string(an) == "id":
			h.ID = v
		case string(an) == "version":
			h.Version = v
		case string(an) == "xml:lang":
			h.Lang = v
		}
	}
	qn := string(s.span(name))
	prefix, local := "", qn
	if i := strings.IndexByte(qn, ':'); i >= 0 {
		prefix, local = qn[:i], qn[i+1:]
	}
	ns := ""
	bound := false
	for _, d := range h.Decls {
		if d.Prefix == prefix {
			ns, bound = d.NS, true
		}
	}
	switch {
	case !bound && prefix != "":
		return Header{}, stream.Errorf(stream.BadNamespacePrefix, "unbound prefix %q on the stream header", prefix)
	case ns != NSStream || local != "stream":
		return Header{}, stream.New(stream.InvalidNamespace, "the stream element is not {http://etherx.jabber.org/streams}stream")
	case empty:
		return Header{}, errSyntax("empty stream element")
	}
	if h.NS == "" {
		// RFC 6120 §4.8.2: the default namespace must be declared.
		return Header{}, stream.New(stream.InvalidNamespace, "no default namespace on the stream header")
	}
	if s.pos > s.limit {
		// As in finish: a header that arrived whole in one read.
		return Header{}, stream.Errorf(stream.PolicyViolation, "stream header larger than %d bytes", s.limit)
	}
	s.r.r = s.start + s.pos
	return h, nil
}

// headerValue returns the value of a header's attribute. The values most
// headers carry (the namespaces, the version, the language) are returned as
// constants: every stream keeps its header for its whole life, and idle
// streams are many.
func headerValue(s *scanner, a attr) string {
	if a.escaped {
		return s.unescape(a)
	}
	switch v := s.span(a.value); string(v) {
	case NSServer:
		return NSServer
	case NSClient:
		return NSClient
	case NSComponent:
		return NSComponent
	case NSDialback:
		return NSDialback
	case NSStream:
		return NSStream
	case "1.0":
		return "1.0"
	case "en":
		return "en"
	default:
		return string(v)
	}
}

// knownPrefix returns the prefix of a namespace declaration, as a constant
// when it is one headers use (see headerValue).
func knownPrefix(p []byte) string {
	switch string(p) {
	case "stream":
		return "stream"
	case "db":
		return "db"
	default:
		return string(p)
	}
}

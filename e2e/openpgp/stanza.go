package openpgp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// XML namespaces of XEP-0027 (§4, XML Schemas) and of the stanzas.
const (
	NSSigned    = "jabber:x:signed"
	NSEncrypted = "jabber:x:encrypted"

	nsClient    = "jabber:client"
	nsServer    = "jabber:server"
	nsComponent = "jabber:component:accept"
	nsXHTMLIM   = "http://jabber.org/protocol/xhtml-im"
)

// SignPresence signs the <status/> of a presence stanza (XEP-0027 §2) and
// returns the stanza with <x xmlns='jabber:x:signed'/> added as its last
// child; an existing one is replaced. The text signed is the character data
// exactly as an XML parser returns it. A presence without <status/> is signed
// over the empty string. When there are several <status/> elements
// (xml:lang), the first is signed.
func (c *Config) SignPresence(stanza []byte) ([]byte, error) {
	st, err := c.parse(stanza, "presence")
	if err != nil {
		return nil, err
	}
	text, err := st.text("status")
	if err != nil {
		return nil, err
	}
	// Sign the text exactly as the receiver's parser will see it: the
	// stanza's bytes are copied, so a CR written as &#xD; stays a CR.
	wire, err := c.sign(text)
	if err != nil {
		return nil, err
	}
	var edits []edit
	for _, x := range st.find(NSSigned, "x") {
		edits = append(edits, edit{x.start, x.end, ""})
	}
	edits = append(edits, st.appendChild("<x xmlns='"+NSSigned+"'>"+wire+"</x>"))
	return c.output(st.splice(edits))
}

// VerifyPresence verifies the <x xmlns='jabber:x:signed'/> of a presence
// stanza against its first <status/> (the empty string if it has none), as
// VerifyStatus does. A presence without the element is ErrNotSigned.
func (c *Config) VerifyPresence(stanza []byte) (*Signature, error) {
	st, err := c.parse(stanza, "presence")
	if err != nil {
		return nil, err
	}
	x, err := st.one(NSSigned, ErrNotSigned)
	if err != nil {
		return nil, err
	}
	text, err := st.text("status")
	if err != nil {
		return nil, err
	}
	return c.VerifyStatus(text, x.text)
}

// EncryptMessage encrypts the <body/> of a message stanza to the keys to
// (XEP-0027 §3) and returns the stanza with the body replaced by the fallback
// body (Config.FallbackBody) followed by <x xmlns='jabber:x:encrypted'/>.
// Other <body/> elements (xml:lang) and the XHTML-IM <html/> element are
// removed, since they would carry the plaintext; the rest of the stanza is
// kept as it is. A message without <body/> or already encrypted is an
// ErrStanza.
func (c *Config) EncryptMessage(stanza []byte, to ...*Key) ([]byte, error) {
	st, err := c.parse(stanza, "message")
	if err != nil {
		return nil, err
	}
	if len(st.find(NSEncrypted, "x")) > 0 {
		return nil, badStanza("message is already encrypted")
	}
	bodies := st.find(st.name.Space, "body")
	if len(bodies) == 0 {
		return nil, badStanza("message has no <body/> to encrypt")
	}
	text, err := bodies[0].chars()
	if err != nil {
		return nil, err
	}
	wire, err := c.EncryptBody(text, to...)
	if err != nil {
		return nil, err
	}
	edits := []edit{{bodies[0].start, bodies[0].end,
		st.element("body", escapeText(c.fallback())) + "<x xmlns='" + NSEncrypted + "'>" + wire + "</x>"}}
	for _, b := range bodies[1:] {
		edits = append(edits, edit{b.start, b.end, ""})
	}
	for _, h := range st.find(nsXHTMLIM, "html") {
		edits = append(edits, edit{h.start, h.end, ""})
	}
	return c.output(st.splice(edits))
}

// DecryptMessage decrypts the <x xmlns='jabber:x:encrypted'/> of a message
// stanza, as DecryptBody does, and returns the stanza with that element
// replaced by a <body/> holding the plaintext; the fallback <body/> elements
// are removed. A message without the element is ErrNotEncrypted.
func (c *Config) DecryptMessage(stanza []byte) ([]byte, *Message, error) {
	st, err := c.parse(stanza, "message")
	if err != nil {
		return nil, nil, err
	}
	x, err := st.one(NSEncrypted, ErrNotEncrypted)
	if err != nil {
		return nil, nil, err
	}
	m, err := c.DecryptBody(x.text)
	if err != nil {
		return nil, nil, err
	}
	edits := []edit{{x.start, x.end, st.element("body", escapeText(m.Body))}}
	for _, b := range st.find(st.name.Space, "body") {
		edits = append(edits, edit{b.start, b.end, ""})
	}
	out, err := c.output(st.splice(edits))
	if err != nil {
		return nil, nil, err
	}
	return out, m, nil
}

func (c *Config) output(b []byte) ([]byte, error) {
	if len(b) > c.maxSize() {
		return nil, fmt.Errorf("%w: %w: resulting stanza is %d bytes, limit %d", ErrStanza, ErrTooLarge, len(b), c.maxSize())
	}
	return b, nil
}

// A child is a child element of the stanza, located in the raw bytes.
type child struct {
	name       xml.Name
	start, end int    // the element, from '<' to after its end tag
	text       string // its character data (CDATA included)
	nested     bool   // it has child elements
}

// chars returns the character data of a text-only element.
func (ch *child) chars() (string, error) {
	if ch.nested {
		return "", badStanza("<%s/> has child elements; XEP-0027 covers text only", ch.name.Local)
	}
	return ch.text, nil
}

// A parsed stanza: the root element, its direct children and where they are.
type parsed struct {
	raw         []byte
	name        xml.Name
	rawName     string // the root's qualified name as written ("presence", "c:presence")
	prefix      string // its prefix, or ""
	openEnd     int    // offset after the root's start tag
	closeStart  int    // offset of the root's end tag
	selfClosing bool
	children    []child
}

// parse reads one stanza of the given kind with encoding/xml, under the
// restrictions of RFC 6120 §11.1 and the size and depth limits.
func (c *Config) parse(raw []byte, kind string) (*parsed, error) {
	if len(raw) > c.maxSize() {
		return nil, fmt.Errorf("%w: %w: stanza is %d bytes, limit %d", ErrStanza, ErrTooLarge, len(raw), c.maxSize())
	}
	if !utf8.Valid(raw) {
		return nil, badStanza("not UTF-8")
	}
	st := &parsed{raw: raw}
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var (
		depth          int
		seen, done     bool
		cur            *child
		text           strings.Builder
		onlyWhitespace = func(b []byte) bool { return len(bytes.TrimLeft(b, " \t\r\n")) == 0 }
	)
	for {
		off := int(d.InputOffset())
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, badStanza("XML syntax error at line %d: %s", se.Line, se.Msg)
			}
			return nil, badStanza("XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" || seen || !onlyWhitespace(raw[:off]) {
				return nil, badStanza("processing instruction <?%s?> not allowed (RFC 6120 §11.1)", clip(t.Target))
			}
		case xml.Directive:
			return nil, badStanza("DTD or directive <!%s> not allowed (RFC 6120 §11.1)", clip(string(t)))
		case xml.Comment:
			return nil, badStanza("comment not allowed (RFC 6120 §11.1)")
		case xml.CharData:
			switch {
			case depth == 0:
				if !onlyWhitespace(t) {
					return nil, badStanza("text outside the stanza element")
				}
			case depth == 2 && cur != nil:
				if text.Len()+len(t) > c.maxSize() {
					return nil, fmt.Errorf("%w: %w: element text too long", ErrStanza, ErrTooLarge)
				}
				text.Write(t)
			}
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return nil, badStanza("elements nested deeper than %d", maxDepth)
			}
			switch depth {
			case 1:
				if done {
					return nil, badStanza("more than one element")
				}
				seen = true
				st.name = t.Name
				st.openEnd = int(d.InputOffset())
				st.selfClosing = bytes.HasSuffix(raw[off:st.openEnd], []byte("/>"))
				st.rawName = rawName(raw[off:])
				if i := strings.IndexByte(st.rawName, ':'); i >= 0 {
					st.prefix = st.rawName[:i]
				}
				if t.Name.Local != kind {
					return nil, badStanza("<%s/> is not a <%s/> stanza", t.Name.Local, kind)
				}
				switch t.Name.Space {
				case "", nsClient, nsServer, nsComponent:
				default:
					return nil, badStanza("stanza namespace %q is not %s, %s or %s", t.Name.Space, nsClient, nsServer, nsComponent)
				}
			case 2:
				cur = &child{name: t.Name, start: off}
				text.Reset()
			case 3:
				cur.nested = true
			}
		case xml.EndElement:
			switch depth {
			case 1:
				st.closeStart = off
				done = true
			case 2:
				cur.end = int(d.InputOffset())
				cur.text = text.String()
				st.children = append(st.children, *cur)
				cur = nil
			}
			depth--
		}
	}
	if !done {
		return nil, badStanza("no complete <%s/> element (truncated?)", kind)
	}
	if st.selfClosing {
		st.closeStart = st.openEnd
	}
	return st, nil
}

// rawName returns the element name at the start of b ("<name ...").
func rawName(b []byte) string {
	b = b[1:]
	if i := bytes.IndexAny(b, " \t\r\n/>"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// find returns the children named space/local.
func (st *parsed) find(space, local string) []*child {
	var out []*child
	for i := range st.children {
		if ch := &st.children[i]; ch.name.Space == space && ch.name.Local == local {
			out = append(out, ch)
		}
	}
	return out
}

// one returns the single <x xmlns=space/> child, or notFound.
func (st *parsed) one(space string, notFound error) (*child, error) {
	xs := st.find(space, "x")
	switch len(xs) {
	case 0:
		return nil, notFound
	case 1:
		if xs[0].nested {
			return nil, badStanza("<x xmlns='%s'/> has child elements", space)
		}
		return xs[0], nil
	}
	return nil, badStanza("more than one <x xmlns='%s'/>", space)
}

// text returns the character data of the first child named local in the
// stanza's namespace, or "" if there is none.
func (st *parsed) text(local string) (string, error) {
	chs := st.find(st.name.Space, local)
	if len(chs) == 0 {
		return "", nil
	}
	return chs[0].chars()
}

// element renders <local>content</local> in the stanza's namespace: with
// the root's prefix when it has one, else in the default namespace, which is
// the root's.
func (st *parsed) element(local, content string) string {
	name := local
	if st.prefix != "" {
		name = st.prefix + ":" + local
	}
	return "<" + name + ">" + content + "</" + name + ">"
}

// appendChild returns the edit that adds content as the last child.
func (st *parsed) appendChild(content string) edit {
	if st.selfClosing {
		return edit{st.openEnd - 2, st.openEnd, ">" + content + "</" + st.rawName + ">"}
	}
	return edit{st.closeStart, st.closeStart, content}
}

// An edit replaces raw[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// splice applies non-overlapping edits to the raw stanza.
func (st *parsed) splice(edits []edit) []byte {
	slices.SortStableFunc(edits, func(a, b edit) int { return a.start - b.start })
	var out bytes.Buffer
	pos := 0
	for _, e := range edits {
		out.Write(st.raw[pos:e.start])
		out.WriteString(e.text)
		pos = e.end
	}
	out.Write(st.raw[pos:])
	return out.Bytes()
}

// escapeText escapes s as XML character data. Unlike xml.EscapeText it keeps
// LF and tab as they are; CR is written as a character reference so that it
// survives parsing, and characters XML 1.0 forbids become U+FFFD.
func escapeText(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			sb.WriteString("&amp;")
		case r == '<':
			sb.WriteString("&lt;")
		case r == '>':
			sb.WriteString("&gt;")
		case r == '\r':
			sb.WriteString("&#xD;")
		case r == '\n' || r == '\t' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF:
			sb.WriteRune(r)
		default:
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String()
}

package cpim

import (
	"encoding/xml"
	"fmt"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/s2sd/s2sd/route"
)

// Stanza namespaces accepted by FromStanza and written by Message.Stanza.
const (
	NSClient    = "jabber:client"
	NSServer    = "jabber:server"
	NSComponent = "jabber:component:accept"

	// NamespaceXMPP is the namespace of the extension headers that carry
	// what RFC 3922 does not map (see the package documentation).
	NamespaceXMPP = "https://github.com/s2sd/s2sd/cpim/xmpp"

	// NamespaceE2E is the RFC 3923 <e2e/> namespace.
	NamespaceE2E = "urn:ietf:params:xml:ns:xmpp-e2e"
)

// textPlainUTF8 is the content type RFC 3922 §4.1 requires.
const textPlainUTF8 = "text/plain; charset=utf-8"

func stanzaNS(ns string) bool {
	switch ns {
	case NSClient, NSServer, NSComponent:
		return true
	}
	return false
}

// FromStanza maps an XMPP <message/> (raw XML in any of the stanza
// namespaces) to a Message/CPIM object (RFC 3922 §4.1).
//
// from and to become From and To (resources dropped, im: URIs with the
// domain in A-labels, RFC 3922 §4.1.1, §4.1.2); an id of the msg-id form
// local@domain becomes Content-ID (§4.1.3: treated as globally unique);
// each <subject/> becomes a Subject with ;lang= from its xml:lang (§4.1.6);
// the first <body/> without xml:lang (else the first <body/>, with
// Content-Language) that holds text and nothing else becomes the
// text/plain; charset=utf-8 content, its line breaks turned into CRLF
// (§4.1.7). The rest (type, other ids, the stanza's xml:lang, resources,
// thread, more bodies, extension elements) is kept in XMPP.* extension
// headers; see the package documentation. A message with an <e2e/> child
// gives ErrSecured.
//
// No header is written with an empty value (RFC 3862 §2.2): an empty
// <subject/>, <body/> or <thread/> is kept whole in XMPP.Extension, and an
// empty type, id or xml:lang attribute is named in the *UnmappedError. A
// body whose text holds CR characters, which the CRLF line ends of
// text/plain cannot carry, still becomes the content, and is also kept
// exactly in XMPP.ExactBody.
func FromStanza(stanza []byte) (*Message, error) {
	root, err := parseXML(stanza)
	if err != nil {
		return nil, err
	}
	ns := root.name.Space
	if root.name.Local != "message" || !(stanzaNS(ns) || ns == "") {
		return nil, fmt.Errorf("%w: not a message stanza: %s", ErrSyntax, clark(root.name))
	}
	for _, c := range root.elems() {
		if c.name.Space == NamespaceE2E && c.name.Local == "e2e" {
			return nil, ErrSecured
		}
	}
	var (
		un  unmapped
		m   = &Message{ContentType: textPlainUTF8}
		ext []Header
	)
	// The XMPP.* headers go out in a fixed order, the one Stanza writes the
	// elements in: attributes, bodies, thread, other elements.
	var bodyExt, threadExt, rawExt []Header
	add := func(to *[]Header, local, params, v string) {
		switch {
		case v == "":
			un.add(local + ` "" (empty)`)
			return
		case checkText(v) != nil:
			un.add(local + " " + fmt.Sprintf("%q", v) + " (leading or trailing spaces)")
			return
		}
		*to = append(*to, Header{Name: "XMPP." + local, Params: params, Value: v})
	}
	x := func(local, params, v string) { add(&ext, local, params, v) }
	xmlValue := func(n *node) string {
		var b strings.Builder
		writeXML(&b, n, ns)
		return b.String()
	}
	raw := func(n *node) { add(&rawExt, "Extension", "", xmlValue(n)) }
	var fromRes, toRes string
	if v, ok := root.getAttr("from"); ok {
		if m.FromURI, fromRes, err = addrOut(v); err != nil {
			return nil, err
		}
	}
	if v, ok := root.getAttr("to"); ok {
		if m.ToURI, toRes, err = addrOut(v); err != nil {
			return nil, err
		}
	}
	if v, ok := root.getAttr("type"); ok {
		x("Type", "", v)
	}
	if v, ok := root.getAttr("id"); ok {
		if isMsgID(v) {
			m.ContentHeaders = append(m.ContentHeaders, Header{Name: "Content-ID", Value: "<" + v + ">"})
		} else {
			x("ID", "", v)
		}
	}
	if v, ok := root.lang(); ok {
		x("Lang", "", v)
	}
	if fromRes != "" {
		x("FromResource", "", fromRes)
	}
	if toRes != "" {
		x("ToResource", "", toRes)
	}
	for _, a := range root.otherAttrs("from", "to", "type", "id", "xml:lang") {
		un.add(a)
	}
	if t, _ := root.text(); strings.TrimSpace(t) != "" {
		un.add("text directly inside <message/>")
	}

	// A child maps to a header when it is simple: text only, not empty, no
	// attributes but the ones the header carries, and text a header line
	// can hold. Any other child is kept whole as XMPP.Extension.
	simple := func(n *node, attrs ...string) (string, bool) {
		t, elems := n.text()
		return t, !elems && len(n.otherAttrs(attrs...)) == 0 && t != "" && checkText(t) == nil
	}
	// The content body has text and nothing else; any text, since the
	// content is not a header line.
	contentBody := func(n *node, withLang bool) bool {
		t, _ := n.text()
		l, hasLang := n.lang()
		return textBody(n, ns) && t != "" && hasLang == withLang && (!hasLang || validLang(l))
	}
	var (
		main     *node
		thread   bool
		children = root.elems()
	)
	for _, withLang := range []bool{false, true} {
		if i := slices.IndexFunc(children, func(c *node) bool { return contentBody(c, withLang) }); i >= 0 {
			main = children[i]
			break
		}
	}
	if main != nil {
		t, _ := main.text()
		if l, ok := main.lang(); ok {
			m.ContentHeaders = append(m.ContentHeaders, Header{Name: "Content-Language", Value: l})
		}
		m.Body = []byte(toCRLF(t))
		if fromCRLF(string(m.Body)) != t {
			// The text has CR characters: text/plain's line ends
			// cannot give it back (§4.2.9 turns CRLF into LF).
			add(&bodyExt, "ExactBody", "", xmlValue(main))
		}
	}
	for _, c := range children {
		if c.name.Space != ns {
			raw(c)
			continue
		}
		switch c.name.Local {
		case "subject":
			l, hasLang := c.lang()
			t, ok := simple(c, "xml:lang")
			if !ok || (hasLang && !validLang(l)) {
				raw(c)
				continue
			}
			m.Subjects = append(m.Subjects, Subject{Lang: l, Text: t})
		case "body":
			if c == main {
				continue
			}
			l, hasLang := c.lang()
			t, ok := simple(c, "xml:lang")
			if !ok || (hasLang && !validLang(l)) {
				raw(c)
				continue
			}
			p := ""
			if hasLang {
				p = ";lang=" + l
			}
			add(&bodyExt, "Body", p, t)
		case "thread":
			t, ok := simple(c, "parent")
			p, hasParent := c.getAttr("parent")
			if thread || !ok || (hasParent && (p == "" || checkText(p) != nil)) {
				raw(c)
				continue
			}
			thread = true
			add(&threadExt, "Thread", "", t)
			if hasParent {
				add(&threadExt, "ThreadParent", "", p)
			}
		default:
			raw(c)
		}
	}
	ext = append(append(append(ext, bodyExt...), threadExt...), rawExt...)
	if len(ext) > 0 {
		m.NS = []Namespace{{Prefix: "XMPP", URI: NamespaceXMPP}}
		m.Extensions = ext
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, un.err()
}

// addrOut maps a stanza address to an im: URI and its resource.
func addrOut(v string) (uri, res string, err error) {
	j, err := route.ParseJID(v)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q: %v", ErrAddress, v, err)
	}
	uri, err = XMPPToIM(j.String())
	if err != nil {
		return "", "", err
	}
	return uri, j.Resourcepart(), nil
}

// addrIn maps an im: (or pres:) URI and a resource to a JID.
func addrIn(uri, res string) (string, error) {
	var (
		bare string
		err  error
	)
	if s, _, _ := strings.Cut(uri, ":"); strings.EqualFold(s, "pres") {
		bare, err = PresToXMPP(uri)
	} else {
		bare, err = IMToXMPP(uri)
	}
	if err != nil || res == "" {
		return bare, err
	}
	j, err := route.ParseJID(bare + "/" + res)
	if err != nil {
		return "", fmt.Errorf("%w: resource %q: %v", ErrAddress, res, err)
	}
	return j.String(), nil
}

// isMsgID reports whether an id has the msg-id form local@domain (RFC 5322
// §3.6.4) and can therefore be written as a Content-ID.
func isMsgID(v string) bool {
	l, r, ok := strings.Cut(v, "@")
	if !ok || l == "" || r == "" || strings.Contains(r, "@") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()[]\",;:`, c) >= 0 {
			return false
		}
	}
	return true
}

// toCRLF writes text in the canonical form of text/plain (RFC 2046
// §4.1.1): every line break, LF, CR or CRLF, as CRLF, and no CR or LF
// alone.
func toCRLF(s string) string {
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// fromCRLF turns the CRLF line ends of text/plain into XML's LF (RFC 3922
// §4.2.9). It reverses toCRLF for text without CR.
func fromCRLF(s string) string {
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// Stanza maps m to an XMPP <message/> written in the default namespace ns
// (RFC 3922 §4.2).
//
// From and To become from and to (URI scheme and Formal-name stripped,
// §4.2.1, §4.2.2; the domain read from A-labels or U-labels), with the
// resources of XMPP.FromResource and XMPP.ToResource; Content-ID becomes
// the id (§4.2.8) unless XMPP.ID gives one; each Subject becomes a
// <subject/> (§4.2.5); text/plain content in US-ASCII or UTF-8 becomes the
// <body/>, CRLF turned into LF (§4.2.9), with Content-Language as its
// xml:lang (empty content without a language is no <body/>), or the body of
// XMPP.ExactBody when that is the content's exact form; the XMPP.* headers
// are restored. More To headers, cc, DateTime, Require (§4.2.7: the sender
// should be warned), other extension and content headers and content of any
// other type are not mapped: the stanza is returned with an *UnmappedError
// naming them. NS headers are never passed (§4.2.6).
func (m *Message) Stanza(ns string) ([]byte, error) {
	if !stanzaNS(ns) {
		return nil, fmt.Errorf("cpim: %q is not a stanza namespace", ns)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	var un unmapped
	root := &node{name: xml.Name{Space: ns, Local: "message"}}
	attr := func(name xml.Name, v string) { root.attr = append(root.attr, xml.Attr{Name: name, Value: v}) }
	elem := func(local, lang, text string) *node {
		n := &node{name: xml.Name{Space: ns, Local: local}}
		if lang != "" {
			n.attr = []xml.Attr{{Name: xml.Name{Space: xmlNS, Local: "lang"}, Value: lang}}
		}
		if text != "" {
			n.kids = []any{text}
		}
		return n
	}

	// Collect the XMPP.* headers.
	var (
		typ, id, lang, fromRes, toRes, thread, parent      string
		haveType, haveID, haveLang, haveThread, haveParent bool
		bodies, exts                                       []*node
		exact                                              *node
		exactHeader                                        string
	)
	s := newNSState()
	for _, n := range m.NS {
		s.declare(n)
	}
	for _, h := range m.Extensions {
		uri, local := s.resolve(h.Name)
		if uri != NamespaceXMPP {
			un.add("header " + h.Name)
			continue
		}
		if !xmlText(h.Value) {
			un.add("header " + h.Name + " (not XML text)")
			continue
		}
		switch local {
		case "Type":
			typ, haveType = h.Value, true
		case "ID":
			id, haveID = h.Value, true
		case "Lang":
			lang, haveLang = h.Value, true
		case "FromResource":
			fromRes = h.Value
		case "ToResource":
			toRes = h.Value
		case "Thread":
			thread, haveThread = h.Value, true
		case "ThreadParent":
			parent, haveParent = h.Value, true
		case "Body":
			bodies = append(bodies, elem("body", paramLang(h.Params), h.Value))
		case "ExactBody":
			n, err := parseFragment(h.Value, ns)
			if err != nil || exact != nil || !textBody(n, ns) {
				un.add("header " + h.Name)
				continue
			}
			exact, exactHeader = n, h.Name
		case "Extension":
			n, err := parseFragment(h.Value, ns)
			if err != nil {
				un.add("header " + h.Name + ": " + err.Error())
				continue
			}
			exts = append(exts, n)
		default:
			un.add("header " + h.Name)
		}
	}

	if m.FromURI != "" {
		from, err := addrIn(m.FromURI, fromRes)
		if err != nil {
			return nil, err
		}
		attr(xml.Name{Local: "from"}, from)
	} else if fromRes != "" {
		un.add("XMPP.FromResource without From")
	}
	if m.ToURI != "" {
		to, err := addrIn(m.ToURI, toRes)
		if err != nil {
			return nil, err
		}
		attr(xml.Name{Local: "to"}, to)
	} else if toRes != "" {
		un.add("XMPP.ToResource without To")
	}
	if haveParent && !haveThread {
		un.add("XMPP.ThreadParent without XMPP.Thread")
	}
	cid, haveCID := m.ContentHeader("Content-ID")
	switch {
	case haveID:
		attr(xml.Name{Local: "id"}, id)
		if haveCID {
			un.add("Content-ID")
		}
	case haveCID:
		v := strings.TrimSuffix(strings.TrimPrefix(cid, "<"), ">")
		if xmlText(v) {
			attr(xml.Name{Local: "id"}, v)
		} else {
			un.add("Content-ID")
		}
	}
	if haveType {
		attr(xml.Name{Local: "type"}, typ)
	}
	if haveLang {
		attr(xml.Name{Space: xmlNS, Local: "lang"}, lang)
	}
	for _, v := range m.MoreTo {
		un.add("To: " + v)
	}
	for _, v := range m.CC {
		un.add("cc: " + v)
	}
	if !m.DateTime.IsZero() {
		un.add("DateTime")
	}
	for _, r := range m.Require {
		if uri, _ := s.resolve(r); uri != NamespaceXMPP && s.standard(r) == "" {
			un.add("Require: " + r)
		}
	}
	for _, sub := range m.Subjects {
		if !xmlText(sub.Text) {
			un.add("Subject (not XML text)")
			continue
		}
		root.kids = append(root.kids, elem("subject", sub.Lang, sub.Text))
	}

	// The content (§4.2.9). An empty text content is no <body/>, unless it
	// has a language (FromStanza keeps an empty <body/> in XMPP.Extension).
	// XMPP.ExactBody stands for the content it was written with: the same
	// text in text/plain's canonical form, the same language.
	body, bodyLang, isText := m.textContent(&un)
	if exact != nil {
		t, _ := exact.text()
		l, _ := exact.lang()
		if isText && toCRLF(t) == string(m.Body) && l == bodyLang {
			root.kids = append(root.kids, exact)
			isText = false
		} else {
			un.add("header " + exactHeader + " (does not match the content)")
		}
	}
	if isText && (body != "" || bodyLang != "") {
		root.kids = append(root.kids, elem("body", bodyLang, body))
	}
	for _, b := range bodies {
		root.kids = append(root.kids, b)
	}
	if haveThread {
		t := elem("thread", "", thread)
		if haveParent {
			t.attr = append(t.attr, xml.Attr{Name: xml.Name{Local: "parent"}, Value: parent})
		}
		root.kids = append(root.kids, t)
	}
	for _, n := range exts {
		root.kids = append(root.kids, n)
	}
	var b strings.Builder
	writeXML(&b, root, "")
	return []byte(b.String()), un.err()
}

// textBody reports whether n is a <body/> in namespace ns with text only
// and no attribute but xml:lang.
func textBody(n *node, ns string) bool {
	_, elems := n.text()
	return n.name == xml.Name{Space: ns, Local: "body"} && !elems && len(n.otherAttrs("xml:lang")) == 0
}

// textContent returns the text of a text/plain US-ASCII or UTF-8 content
// and its Content-Language; anything else is added to un.
func (m *Message) textContent(un *unmapped) (text, lang string, isText bool) {
	mt, params, perr := mime.ParseMediaType(m.ContentType)
	if perr != nil {
		mt, _, _ = strings.Cut(m.ContentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	ok := mt == "text/plain"
	if ok && perr == nil {
		switch cs := strings.ToLower(params["charset"]); cs {
		case "", "us-ascii":
			for _, c := range m.Body {
				if c >= 0x80 {
					ok = false
				}
			}
		case "utf-8":
			ok = utf8.Valid(m.Body)
		default:
			ok = false // §4.2.9: other charsets SHOULD NOT be mapped
		}
	} else if ok {
		ok = utf8.Valid(m.Body) // unparsable parameters: read as UTF-8
	}
	for _, h := range m.ContentHeaders {
		switch strings.ToLower(h.Name) {
		case "content-id":
		case "content-language":
			lang = h.Value
		case "content-transfer-encoding":
			switch strings.ToLower(h.Value) {
			case "7bit", "8bit", "binary":
			default:
				ok = false
			}
		default:
			un.add("content header " + h.Name)
		}
	}
	if ok {
		text = fromCRLF(string(m.Body))
		ok = xmlText(text) && (lang == "" || xmlText(lang))
	}
	if !ok {
		if len(m.Body) > 0 {
			un.add("content " + m.ContentType)
		}
		return "", "", false
	}
	return text, lang, true
}

func paramLang(params string) string {
	ps, _, _ := parseParams(params)
	for _, p := range ps {
		if p.name == "lang" {
			return p.value
		}
	}
	return ""
}

// parseFragment reads one element written by writeXML with parent
// namespace ns.
func parseFragment(frag, ns string) (*node, error) {
	var b strings.Builder
	b.WriteString("<w xmlns=")
	writeAttrValue(&b, ns)
	b.WriteString(">")
	b.WriteString(frag)
	b.WriteString("</w>")
	w, err := parseXML([]byte(b.String()))
	if err != nil {
		return nil, err
	}
	t, _ := w.text()
	if es := w.elems(); len(es) != 1 || strings.TrimSpace(t) != "" {
		return nil, fmt.Errorf("%w: not exactly one element", ErrSyntax)
	}
	return w.elems()[0], nil
}

package cpim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Limits of the XML readers (stanzas, PIDF documents, extension elements).
const (
	maxXMLSize  = 256 << 10
	maxXMLDepth = 32
	maxXMLToken = 10000
	maxXMLAttrs = 64
)

const xmlNS = "http://www.w3.org/XML/1998/namespace"

// node is an element read by parseXML. kids holds *node and string
// (character data) values.
type node struct {
	name xml.Name
	attr []xml.Attr
	kids []any
}

// parseXML reads one element from b through a guarded decoder: no DTD or
// other directive, no processing instruction except the XML declaration,
// bounded size, depth, token and attribute counts, nothing but whitespace
// around the element.
func parseXML(b []byte) (*node, error) {
	if len(b) > maxXMLSize {
		return nil, fmt.Errorf("%w: XML of %d bytes, limit %d", ErrTooLarge, len(b), maxXMLSize)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var (
		root   *node
		stack  []*node
		tokens int
	)
	for {
		t, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		if tokens++; tokens > maxXMLToken {
			return nil, fmt.Errorf("%w: more than %d XML tokens", ErrTooLarge, maxXMLToken)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("%w: more than one XML element", ErrSyntax)
			}
			if len(stack) >= maxXMLDepth {
				return nil, fmt.Errorf("%w: XML deeper than %d", ErrTooLarge, maxXMLDepth)
			}
			if len(t.Attr) > maxXMLAttrs {
				return nil, fmt.Errorf("%w: more than %d XML attributes", ErrTooLarge, maxXMLAttrs)
			}
			if !ncName(t.Name.Local) {
				return nil, fmt.Errorf("%w: bad XML name %q", ErrSyntax, t.Name.Local)
			}
			for _, a := range t.Attr {
				if !ncName(a.Name.Local) {
					return nil, fmt.Errorf("%w: bad XML attribute name %q", ErrSyntax, a.Name.Local)
				}
			}
			n := &node{name: t.Name, attr: t.Copy().Attr}
			if len(stack) == 0 {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack[len(stack)-1].mergeText()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, fmt.Errorf("%w: text outside the XML element", ErrSyntax)
				}
				continue
			}
			p := stack[len(stack)-1]
			p.kids = append(p.kids, string(t)) // merged at the end tag
		case xml.Directive:
			return nil, fmt.Errorf("%w: XML directive (DTD) not allowed", ErrSyntax)
		case xml.ProcInst:
			if t.Target != "xml" || root != nil {
				return nil, fmt.Errorf("%w: XML processing instruction not allowed", ErrSyntax)
			}
		case xml.Comment:
			// Ignored, as XMPP forbids them and PIDF gives them no meaning.
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no XML element", ErrSyntax)
	}
	return root, nil
}

// mergeText joins adjacent character data (split by comments), in linear
// time.
func (n *node) mergeText() {
	out := n.kids[:0]
	for i := 0; i < len(n.kids); {
		s, ok := n.kids[i].(string)
		if !ok {
			out = append(out, n.kids[i])
			i++
			continue
		}
		j := i + 1
		for j < len(n.kids) {
			if _, ok := n.kids[j].(string); !ok {
				break
			}
			j++
		}
		if j > i+1 {
			var b strings.Builder
			for _, k := range n.kids[i:j] {
				b.WriteString(k.(string))
			}
			s = b.String()
		}
		out = append(out, s)
		i = j
	}
	n.kids = out
}

// text returns the character data directly inside n, and whether n has
// child elements.
func (n *node) text() (string, bool) {
	var b strings.Builder
	elems := false
	for _, k := range n.kids {
		switch k := k.(type) {
		case string:
			b.WriteString(k)
		case *node:
			elems = true
		}
	}
	return b.String(), elems
}

// elems returns the child elements of n.
func (n *node) elems() []*node {
	var out []*node
	for _, k := range n.kids {
		if c, ok := k.(*node); ok {
			out = append(out, c)
		}
	}
	return out
}

// getAttr returns the value of the unqualified attribute local.
func (n *node) getAttr(local string) (string, bool) {
	for _, a := range n.attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// lang returns n's own xml:lang attribute.
func (n *node) lang() (string, bool) {
	for _, a := range n.attr {
		if isXMLLang(a.Name) {
			return a.Value, true
		}
	}
	return "", false
}

func isXMLLang(n xml.Name) bool {
	return (n.Space == xmlNS || n.Space == "xml") && n.Local == "lang"
}

// isNSDecl reports whether a is a namespace declaration.
func isNSDecl(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
}

// otherAttrs names the attributes of n other than namespace declarations
// and the ones listed.
func (n *node) otherAttrs(known ...string) []string {
	var out []string
outer:
	for _, a := range n.attr {
		if isNSDecl(a) {
			continue
		}
		if a.Name.Space == "" {
			for _, k := range known {
				if a.Name.Local == k {
					continue outer
				}
			}
		}
		if isXMLLang(a.Name) {
			for _, k := range known {
				if k == "xml:lang" {
					continue outer
				}
			}
		}
		out = append(out, "attribute "+clark(a.Name))
	}
	return out
}

func clark(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// writeXML writes n in a canonical form: namespaces declared with xmlns
// where an element's namespace differs from its parent's (parentNS),
// namespaced attributes under generated prefixes, text escaped, attribute
// values in single quotes. The output is stable: parsing and writing it
// again yields the same bytes.
func writeXML(b *strings.Builder, n *node, parentNS string) {
	b.WriteByte('<')
	b.WriteString(n.name.Local)
	if n.name.Space != parentNS {
		b.WriteString(" xmlns=")
		writeAttrValue(b, n.name.Space)
	}
	pfx := 0
	for _, a := range n.attr {
		if isNSDecl(a) {
			continue
		}
		b.WriteByte(' ')
		switch {
		case a.Name.Space == "":
			b.WriteString(a.Name.Local)
		case isXMLLang(a.Name) || a.Name.Space == xmlNS || a.Name.Space == "xml":
			b.WriteString("xml:" + a.Name.Local)
		default:
			p := fmt.Sprintf("ns%d", pfx)
			pfx++
			b.WriteString("xmlns:" + p + "=")
			writeAttrValue(b, a.Name.Space)
			b.WriteString(" " + p + ":" + a.Name.Local)
		}
		b.WriteByte('=')
		writeAttrValue(b, a.Value)
	}
	if len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	for _, k := range n.kids {
		switch k := k.(type) {
		case string:
			writeText(b, k)
		case *node:
			writeXML(b, k, n.name.Space)
		}
	}
	b.WriteString("</")
	b.WriteString(n.name.Local)
	b.WriteByte('>')
}

func writeAttrValue(b *strings.Builder, v string) {
	b.WriteByte('\'')
	writeText(b, v)
	b.WriteByte('\'')
}

func writeText(b *strings.Builder, s string) {
	_ = xml.EscapeText(b, []byte(s))
}

// xmlText reports whether s can be written as XML character data: valid
// UTF-8 of characters XML 1.0 allows (xml.EscapeText would replace the
// others with U+FFFD).
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9, r == 0xA, r == 0xD,
			0x20 <= r && r <= 0xD7FF,
			0xE000 <= r && r <= 0xFFFD,
			0x10000 <= r && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// ncName reports whether s is an XML NCName. encoding/xml lets some
// invalid names through (a local part after a colon is not checked).
func ncName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !isNCNameChar(r, i == 0) {
			return false
		}
	}
	return true
}

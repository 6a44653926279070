package xmlstream

import (
	"bytes"
	"encoding/xml"
	"strings"
	"unsafe"
)

// Element is one top-level element of a stream: a stanza, or a negotiation
// or dialback element. Raw holds its bytes exactly as the peer sent them, so
// that a relay forwards it without decoding or re-encoding its payload.
// Raw is read-only: its bytes are never to be modified, nor Raw replaced
// (strings made from it may share its bytes: AttrStringAt).
type Element struct {
	Raw []byte
	// Local and Space are the element's local name and resolved namespace.
	Local, Space string

	attrs     []attr
	inherited []string // prefixes bound only on the stream header
	hdrDecls  *[]Decl  // the header's, shared by its elements
	// The fields without pointers come last, so that the collector scans
	// only the words above. Six attributes inline cover a stanza's usual
	// from, to, type, id and xml:lang, and fill the 256-byte size class.
	nameEnd  int32
	startEnd int32
	borrowed bool // Raw is in a Reader's buffer (Reader.SetBorrow)
	private  bool // Raw is a copy made for the element, never written again
	attrBuf  [6]attr
}

// Borrowed reports whether Raw is in the buffer of the Reader that read
// the element (Reader.SetBorrow): the element is valid only until that
// Reader is used again, unless Own is called first.
func (e *Element) Borrowed() bool { return e.borrowed }

// Own gives a borrowed element bytes of its own, and takes it from its
// Reader, so that it stays valid after the Reader reads on: code that
// keeps an element, or hands it to another goroutine, calls it first. It
// does nothing for an element that is not borrowed. It is not safe to
// call while another goroutine uses the element.
func (e *Element) Own() {
	if e.borrowed {
		raw := make([]byte, len(e.Raw))
		copy(raw, e.Raw)
		e.Raw, e.borrowed, e.private = raw, false, true
	}
}

// Name returns the element's expanded name.
func (e *Element) Name() xml.Name { return xml.Name{Space: e.Space, Local: e.Local} }

// Attr returns the unescaped value of the top-level attribute with the given
// qualified name ("to", "xml:lang"), or "" when it is absent.
func (e *Element) Attr(name string) string {
	v, _ := e.LookupAttr(name)
	return v
}

// LookupAttr is Attr that also reports whether the attribute is present.
func (e *Element) LookupAttr(name string) (string, bool) {
	for _, a := range e.attrs {
		if string(e.Raw[a.name.start:a.name.end]) == name {
			v := e.Raw[a.value.start:a.value.end]
			if a.escaped {
				return unescape(v), true
			}
			return string(v), true
		}
	}
	return "", false
}

// AttrBytes is LookupAttr without a string: the unescaped value, which is
// a slice of Raw (never to be modified) unless the value holds a
// reference. The stanza path uses it to look addresses up in a cache
// keyed by their text, and so allocates nothing for them.
func (e *Element) AttrBytes(name string) ([]byte, bool) {
	for _, a := range e.attrs {
		if string(e.Raw[a.name.start:a.name.end]) == name {
			v := e.Raw[a.value.start:a.value.end:a.value.end]
			if a.escaped {
				return []byte(unescape(v)), true
			}
			return v, true
		}
	}
	return nil, false
}

// NumAttr returns the number of the element's top-level attributes, for
// AttrAt.
func (e *Element) NumAttr() int { return len(e.attrs) }

// AttrAt returns the qualified name and the unescaped value of the i-th
// top-level attribute, in the order of the start tag: slices of Raw (never
// to be modified), unless the value holds a reference. Code that reads
// several attributes reads them this way in one pass.
func (e *Element) AttrAt(i int) (name, value []byte) {
	a := e.attrs[i]
	v := e.Raw[a.value.start:a.value.end:a.value.end]
	if a.escaped {
		v = []byte(unescape(v))
	}
	return e.Raw[a.name.start:a.name.end:a.name.end], v
}

// AttrStringAt is AttrAt's value as a string. Where the element's bytes
// are its own (read without SetBorrow, or after Own), the string is
// those bytes, without a copy: they are never written again. Otherwise
// (lent, or ParseElement's caller's) it is a copy.
func (e *Element) AttrStringAt(i int) string {
	a := e.attrs[i]
	if a.escaped {
		return unescape(e.Raw[a.value.start:a.value.end])
	}
	v := e.Raw[a.value.start:a.value.end]
	if !e.private || len(v) == 0 {
		return string(v)
	}
	return unsafe.String(&v[0], len(v))
}

// Inner returns the element's content: the bytes between its start and end
// tags (nil for an empty element).
func (e *Element) Inner() []byte {
	if int(e.startEnd) >= len(e.Raw) {
		return nil
	}
	end := bytes.LastIndexByte(e.Raw, '<')
	if end < int(e.startEnd) {
		return nil
	}
	return e.Raw[e.startEnd:end]
}

// Decoder returns an encoding/xml decoder of the element, for the code that
// needs the whole tree (negotiation, local services). Prefixes bound on the
// stream header are declared for it.
func (e *Element) Decoder() *xml.Decoder {
	var decls []Decl
	if e.hdrDecls != nil {
		decls = *e.hdrDecls
	}
	return xml.NewDecoder(bytes.NewReader(e.AppendTo(nil, StreamContext{Decls: decls}, StreamContext{})))
}

// Unmarshal decodes the element into v with encoding/xml.
func (e *Element) Unmarshal(v any) error { return e.Decoder().Decode(v) }

// StreamContext is what an element inherits from the stream it travels on:
// the default namespace, the prefixes bound on the header and xml:lang.
type StreamContext struct {
	NS    string
	Lang  string
	Decls []Decl
}

// Context returns the context the element was read in.
func (h Header) Context() StreamContext { return StreamContext{NS: h.NS, Lang: h.Lang, Decls: h.Decls} }

// stanzaNS reports whether ns is one of the namespaces stanzas take from
// their stream (RFC 6120 §4.8.3; XEP-0114).
func stanzaNS(ns string) bool {
	switch ns {
	case NSClient, NSServer, NSComponent:
		return true
	}
	return false
}

// Reframe returns the element's bytes for a stream with context dst: Raw
// itself (shared, never to be modified) when nothing needs to change, else
// a new slice as AppendTo builds it.
func (e *Element) Reframe(src, dst StreamContext) []byte {
	insert, xmlns := e.plan(src, dst)
	if insert == nil && xmlns == nil {
		return e.Raw
	}
	return e.build(nil, insert, xmlns, dst)
}

// ReframeRoom is about the most AppendTo adds to an element's raw bytes
// when it moves the element between streams (a namespace, inherited prefix
// declarations, xml:lang): a size hint for buffers, not a limit.
const ReframeRoom = 256

// AppendTo appends the element to b for writing on a stream with context
// dst, given that it was read on a stream with context src. When the two
// differ in what the element depends on, the top-level start tag is
// adjusted: a stanza namespace declared on the element itself becomes dst's,
// prefixes bound only on the source header are declared on the element, and
// the source stream's xml:lang is made explicit. The payload is never
// re-encoded.
func (e *Element) AppendTo(b []byte, src, dst StreamContext) []byte {
	insert, xmlns := e.plan(src, dst)
	if insert == nil && xmlns == nil {
		return append(b, e.Raw...)
	}
	return e.build(b, insert, xmlns, dst)
}

// plan works out what the start tag needs for dst: attributes to insert,
// and an explicit stanza namespace to replace.
func (e *Element) plan(src, dst StreamContext) (insert []byte, xmlns *attr) {
	for _, p := range e.inherited {
		ns := ""
		for _, d := range src.Decls {
			if d.Prefix == p {
				ns = d.NS
			}
		}
		declared := false
		for _, d := range dst.Decls {
			if d.Prefix == p && d.NS == ns {
				declared = true
			}
		}
		if !declared {
			insert = append(insert, " xmlns:"...)
			insert = append(insert, p...)
			insert = append(insert, "='"...)
			insert = appendEscaped(insert, ns)
			insert = append(insert, '\'')
		}
	}
	if src.Lang != "" && src.Lang != dst.Lang {
		if _, ok := e.LookupAttr("xml:lang"); !ok {
			insert = append(insert, " xml:lang='"...)
			insert = appendEscaped(insert, src.Lang)
			insert = append(insert, '\'')
		}
	}
	// An explicit stanza namespace on the element must follow the stream.
	if dst.NS != "" {
		for i := range e.attrs {
			a := &e.attrs[i]
			if string(e.Raw[a.name.start:a.name.end]) == "xmlns" {
				if v := e.Raw[a.value.start:a.value.end]; stanzaNS(string(v)) && string(v) != dst.NS {
					xmlns = a
				}
			}
		}
	}
	return insert, xmlns
}

func (e *Element) build(b, insert []byte, xmlns *attr, dst StreamContext) []byte {
	if xmlns == nil {
		b = append(b, e.Raw[:e.nameEnd]...)
		b = append(b, insert...)
		return append(b, e.Raw[e.nameEnd:]...)
	}
	b = append(b, e.Raw[:e.nameEnd]...)
	b = append(b, insert...)
	b = append(b, e.Raw[e.nameEnd:xmlns.value.start]...)
	b = append(b, dst.NS...)
	return append(b, e.Raw[xmlns.value.end:]...)
}

func appendEscaped(b []byte, s string) []byte {
	var buf bytes.Buffer
	xml.EscapeText(&buf, []byte(s))
	return append(b, bytes.ReplaceAll(buf.Bytes(), []byte("'"), []byte("&#39;"))...)
}

// unescape resolves the predefined entities and character references in v,
// which the scanner has already checked.
func unescape(v []byte) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		j := bytes.IndexByte(v[i:], ';')
		if j < 0 {
			b.Write(v[i:])
			break
		}
		ref := string(v[i+1 : i+j])
		i += j
		switch ref {
		case "amp":
			b.WriteByte('&')
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "quot":
			b.WriteByte('"')
		case "apos":
			b.WriteByte('\'')
		default:
			var r rune
			if strings.HasPrefix(ref, "#x") {
				for _, d := range ref[2:] {
					r = r*16 + hexVal(d)
				}
			} else if strings.HasPrefix(ref, "#") {
				for _, d := range ref[1:] {
					r = r*10 + d - '0'
				}
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hexVal(d rune) rune {
	switch {
	case d >= '0' && d <= '9':
		return d - '0'
	case d >= 'a' && d <= 'f':
		return d - 'a' + 10
	case d >= 'A' && d <= 'F':
		return d - 'A' + 10
	}
	return 0
}

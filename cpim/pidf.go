package cpim

import (
	"encoding/xml"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/s2sd/s2sd/route"
)

// PIDF names (RFC 3863, RFC 3922 §5).
const (
	NamespacePIDF   = "urn:ietf:params:xml:ns:pidf"
	NamespacePIDFIM = "urn:ietf:params:xml:ns:pidf:im"
	MediaTypePIDF   = "application/pidf+xml"
)

// bareTupleID is the tuple id used for presence from a bare JID. TupleID
// never produces it for a non-empty resource (a leading '_' is escaped).
const bareTupleID = "_"

// TupleID maps an XMPP resource (UTF-8, as every resource is) to a PIDF
// tuple id (RFC 3922 §5.1.1). The id must be an xs:ID (RFC 3863 §4.4): an
// NCName of XML Schema 1.0, whose letters, digits, combining characters and
// extenders are the classes of XML 1.0 fourth edition Appendix B, narrower
// than the fifth edition's (schema validators such as libxml2 check these).
// Resources need not be NCNames, so every character outside those classes
// at its place (a leading digit, '-' or '.'; space, '/', '@', ':', symbols,
// emoji, most characters added to Unicode after 2.0) is escaped as _xHHHH_
// (or _xHHHHHHHH_ above U+FFFF), the XML name escape of ISO/IEC 9075-14 and
// .NET XmlConvert.EncodeName; a '_' is escaped too when it leads or is
// followed by 'x', so TupleResource decodes exactly. A resource that is
// already such an NCName without "_x" and not starting with '_' is its own
// id, as in the RFC ("balcony"). The empty resource maps to "_".
func TupleID(resource string) string {
	if resource == "" {
		return bareTupleID
	}
	var b strings.Builder
	for i, r := range resource {
		ok := isXSDNCNameChar(r, i == 0)
		if r == '_' && (i == 0 || strings.HasPrefix(resource[i+1:], "x")) {
			ok = false
		}
		if ok {
			b.WriteRune(r)
		} else if r <= 0xFFFF {
			fmt.Fprintf(&b, "_x%04X_", r)
		} else {
			fmt.Fprintf(&b, "_x%08X_", r)
		}
	}
	return b.String()
}

// TupleResource reverses TupleID: TupleResource(TupleID(r)) == r for every
// UTF-8 string r. Ids from elsewhere are decoded the same way; malformed
// escapes are kept literally.
func TupleResource(id string) string {
	if id == bareTupleID {
		return ""
	}
	if !strings.Contains(id, "_x") {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); {
		if strings.HasPrefix(id[i:], "_x") {
			if r, n := tupleEscape(id[i+2:]); n > 0 {
				b.WriteRune(r)
				i += 2 + n
				continue
			}
		}
		b.WriteByte(id[i])
		i++
	}
	return b.String()
}

// tupleEscape reads HHHH_ or HHHHHHHH_ and returns the rune and the length
// read, or n == 0.
func tupleEscape(s string) (rune, int) {
	for _, digits := range []int{4, 8} {
		if len(s) <= digits || s[digits] != '_' {
			continue
		}
		v, err := strconv.ParseUint(s[:digits], 16, 32)
		if err != nil {
			continue
		}
		if r := rune(v); utf8.ValidRune(r) {
			return r, digits + 1
		}
	}
	return 0, 0
}

// isNCNameChar reports whether r may appear in an NCName, at its start if
// first (XML 1.0 fifth edition NameStartChar and NameChar, without ':').
func isNCNameChar(r rune, first bool) bool {
	switch {
	case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', r == '_',
		0xC0 <= r && r <= 0xD6, 0xD8 <= r && r <= 0xF6, 0xF8 <= r && r <= 0x2FF,
		0x370 <= r && r <= 0x37D, 0x37F <= r && r <= 0x1FFF, 0x200C <= r && r <= 0x200D,
		0x2070 <= r && r <= 0x218F, 0x2C00 <= r && r <= 0x2FEF, 0x3001 <= r && r <= 0xD7FF,
		0xF900 <= r && r <= 0xFDCF, 0xFDF0 <= r && r <= 0xFFFD, 0x10000 <= r && r <= 0xEFFFF:
		return true
	case first:
		return false
	case r == '-', r == '.', '0' <= r && r <= '9', r == 0xB7,
		0x300 <= r && r <= 0x36F, 0x203F <= r && r <= 0x2040:
		return true
	}
	return false
}

// PriorityToQ maps an XMPP priority 0..127 to a PIDF contact priority
// (RFC 3922 §5.1.7): q = floor(p*1000/127)/1000, so 0 -> "0", 1 -> "0.007",
// 13 -> "0.102", 126 -> "0.992", 127 -> "1". ok is false for negative
// priorities, which MUST NOT be mapped, and values above 127.
func PriorityToQ(p int) (q string, ok bool) {
	switch {
	case p < 0 || p > 127:
		return "", false
	case p == 0:
		return "0", true
	case p == 127:
		return "1", true
	}
	return fmt.Sprintf("0.%03d", p*1000/127), true
}

// QToPriority maps a PIDF qvalue (RFC 3863 §4.4: 0(.[0-9]{0,3})? or
// 1(.0{0,3})?) to an XMPP priority: 0 -> 0, 1 -> 127, otherwise
// min(126, ceil(q*127)). It reverses PriorityToQ for every priority.
func QToPriority(q string) (int, bool) {
	ip, frac, _ := strings.Cut(q, ".")
	if (ip != "0" && ip != "1") || len(frac) > 3 {
		return 0, false
	}
	t := 0
	for i := 0; i < 3; i++ {
		t *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			t += int(c - '0')
		}
	}
	if ip == "1" {
		if t != 0 {
			return 0, false
		}
		return 127, true
	}
	if t == 0 {
		return 0, true
	}
	return min(126, (t*127+999)/1000), true
}

// PresenceToPIDF maps an XMPP <presence/> (raw XML in any stanza namespace)
// to a PIDF document (RFC 3922 §5.1): from gives the entity (pres: URI,
// §5.1.1) and the resource the tuple id (TupleID); no type gives
// <basic>open</basic> and type='unavailable' <basic>closed</basic>
// (§5.1.4); <show/> gives <im:im> (§5.1.5); each <status/> a <note/> with
// its xml:lang (§5.1.6) when XML Schema takes it for one (another value is
// left out and named unmapped: the document would not validate); a
// priority 0..127 a <contact priority='q'> with the sender's im: URI
// (§5.1.7). Subscription types, probes and errors give
// ErrNotMappable (they are RFC 3922 §6 operations); an <e2e/> child gives
// ErrSecured. Everything else (to, id, xml:lang, negative priorities,
// extension elements) is named in an *UnmappedError returned with the
// document.
func PresenceToPIDF(stanza []byte) ([]byte, error) {
	_, pidf, err := presenceToPIDF(stanza)
	return pidf, err
}

// presenceToPIDF also returns the stanza's to attribute.
func presenceToPIDF(stanza []byte) (to string, pidf []byte, err error) {
	root, err := parseXML(stanza)
	if err != nil {
		return "", nil, err
	}
	ns := root.name.Space
	if root.name.Local != "presence" || !(stanzaNS(ns) || ns == "") {
		return "", nil, fmt.Errorf("%w: not a presence stanza: %s", ErrSyntax, clark(root.name))
	}
	var un unmapped
	basic := "open"
	switch t, _ := root.getAttr("type"); t {
	case "":
	case "unavailable":
		basic = "closed"
	default:
		return "", nil, fmt.Errorf("%w: presence of type %q is not a notification (RFC 3922 §6)", ErrNotMappable, t)
	}
	from, ok := root.getAttr("from")
	if !ok {
		return "", nil, fmt.Errorf("%w: presence without from has no PIDF entity", ErrNotMappable)
	}
	fj, err := route.ParseJID(from)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %q: %v", ErrAddress, from, err)
	}
	entity, err := XMPPToPres(from)
	if err != nil {
		return "", nil, err
	}
	to, _ = root.getAttr("to")
	if v, ok := root.getAttr("id"); ok {
		un.add("id " + strconv.Quote(v))
	}
	if _, ok := root.lang(); ok {
		un.add("xml:lang")
	}
	for _, a := range root.otherAttrs("from", "to", "type", "id", "xml:lang") {
		un.add(a)
	}
	var (
		show     string
		notes    []*node
		priority = -1
		seen     = map[string]bool{}
	)
	for _, c := range root.elems() {
		if c.name.Space == NamespaceE2E && c.name.Local == "e2e" {
			return "", nil, ErrSecured
		}
		if c.name.Space != ns {
			un.add("extension " + clark(c.name))
			continue
		}
		t, elems := c.text()
		if elems || len(c.otherAttrs("xml:lang")) > 0 {
			un.add("element " + c.name.Local + " with children or attributes")
			continue
		}
		switch c.name.Local {
		case "show":
			switch {
			case seen["show"]:
				un.add("second show")
			case t == "away" || t == "chat" || t == "dnd" || t == "xa":
				show = t
			default:
				un.add("show " + strconv.Quote(t))
			}
			seen["show"] = true
		case "status":
			notes = append(notes, c)
		case "priority":
			p, err := strconv.Atoi(strings.TrimSpace(t))
			switch {
			case seen["priority"]:
				un.add("second priority")
			case err != nil || p < -128 || p > 127:
				un.add("priority " + strconv.Quote(t))
			case p < 0:
				un.add("negative priority " + t) // §5.1.7: MUST NOT be mapped
			default:
				priority = p
			}
			seen["priority"] = true
		default:
			un.add("element " + c.name.Local)
		}
	}

	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='UTF-8'?>\n<presence xmlns='" + NamespacePIDF + "'")
	if show != "" {
		b.WriteString(" xmlns:im='" + NamespacePIDFIM + "'")
	}
	b.WriteString(" entity=")
	writeAttrValue(&b, entity)
	b.WriteString(">\n  <tuple id=")
	writeAttrValue(&b, TupleID(fj.Resourcepart()))
	b.WriteString(">\n    <status>\n      <basic>" + basic + "</basic>\n")
	if show != "" {
		b.WriteString("      <im:im>" + show + "</im:im>\n")
	}
	b.WriteString("    </status>\n")
	if q, ok := PriorityToQ(priority); ok {
		im, err := XMPPToIM(from)
		if err != nil {
			return "", nil, err
		}
		b.WriteString("    <contact priority='" + q + "'>")
		writeText(&b, im)
		b.WriteString("</contact>\n")
	}
	for _, n := range notes {
		t, _ := n.text()
		b.WriteString("    <note")
		if l, ok := n.lang(); ok {
			if schemaLang(l) {
				b.WriteString(" xml:lang=")
				writeAttrValue(&b, l)
			} else {
				// PIDF's xml:lang is XML Schema's: a note with
				// another would not validate.
				un.add("status xml:lang " + strconv.Quote(l))
			}
		}
		b.WriteString(">")
		writeText(&b, t)
		b.WriteString("</note>\n")
	}
	b.WriteString("  </tuple>\n</presence>\n")
	return to, []byte(b.String()), un.err()
}

// PIDFToPresence maps a PIDF document to XMPP presence (RFC 3922 §5.2),
// written in the default namespace ns: one <presence/> per tuple (§6.3.1),
// concatenated in document order; see PIDFToPresences.
func PIDFToPresence(pidf []byte, ns string) ([]byte, error) {
	ss, err := PIDFToPresences(pidf, ns)
	if ss == nil {
		return nil, err
	}
	var out []byte
	for _, s := range ss {
		out = append(out, s...)
	}
	return out, err
}

// PIDFToPresences maps a PIDF document to one <presence/> per tuple
// (RFC 3922 §5.2, §6.3.1): from is the entity (pres: stripped, §5.2.1)
// with the tuple id as resource (TupleResource); <basic>closed</basic>
// gives type='unavailable', open or none no type (§5.2.9); <im:im> gives
// <show/> (away, chat, dnd and xa as themselves, busy as dnd, online as no
// show, §5.2.10); each tuple <note/> a <status/> (§5.2.11), with its
// xml:lang when XML Schema takes it for one; the contact priority a
// <priority/> (§5.2.12). A document without tuples gives presence from
// the bare entity, unless its only children are notes (§6.3.2:
// ErrNotMappable). Contact addresses other than the entity's im: URI,
// timestamps, notes outside tuples, other xml:lang values of notes, other
// im:im values and extension elements are named in an *UnmappedError
// returned with the stanzas.
func PIDFToPresences(pidf []byte, ns string) ([][]byte, error) {
	_, ss, err := pidfToPresences(pidf, ns, "")
	return ss, err
}

func pidfToPresences(pidf []byte, ns, to string) (entityJID string, out [][]byte, err error) {
	if !stanzaNS(ns) {
		return "", nil, fmt.Errorf("cpim: %q is not a stanza namespace", ns)
	}
	root, err := parseXML(pidf)
	if err != nil {
		return "", nil, err
	}
	if root.name.Space != NamespacePIDF || root.name.Local != "presence" {
		return "", nil, fmt.Errorf("%w: not a PIDF document: %s", ErrSyntax, clark(root.name))
	}
	entity, ok := root.getAttr("entity")
	if !ok {
		return "", nil, fmt.Errorf("%w: PIDF presence without entity", ErrSyntax)
	}
	bare, err := addrIn(entity, "")
	if err != nil {
		return "", nil, err
	}
	var (
		un     unmapped
		tuples []*node
		notes  int
		others int
	)
	for _, c := range root.elems() {
		switch {
		case c.name.Space == NamespacePIDF && c.name.Local == "tuple":
			tuples = append(tuples, c)
		case c.name.Space == NamespacePIDF && c.name.Local == "note":
			notes++
			un.add("presence note")
		default:
			others++
			un.add("extension " + clark(c.name))
		}
	}
	for _, a := range root.otherAttrs("entity") {
		un.add(a)
	}
	if len(tuples) == 0 {
		if notes > 0 && others == 0 {
			return "", nil, fmt.Errorf("%w: PIDF document with notes and no tuples (RFC 3922 §6.3.2)", ErrNotMappable)
		}
		return bare, [][]byte{presenceXML(ns, bare, to, false, "", nil, -1)}, un.err()
	}
	for _, t := range tuples {
		s, err := tupleToPresence(t, ns, bare, to, entity, &un)
		if err != nil {
			return "", nil, err
		}
		out = append(out, s)
	}
	return bare, out, un.err()
}

func tupleToPresence(t *node, ns, bare, to, entity string, un *unmapped) ([]byte, error) {
	id, ok := t.getAttr("id")
	if !ok {
		return nil, fmt.Errorf("%w: PIDF tuple without id", ErrSyntax)
	}
	where := "tuple " + id + ": "
	from := bare
	if res := TupleResource(id); res != "" {
		j, err := route.ParseJID(bare + "/" + res)
		if err != nil {
			un.add(where + "id is not a resource")
		} else {
			from = j.String()
		}
	}
	var (
		closed   bool
		basic    bool
		show     string
		notes    []*node
		priority = -1
	)
	for _, a := range t.otherAttrs("id") {
		un.add(where + a)
	}
	for _, c := range t.elems() {
		if c.name.Space != NamespacePIDF {
			un.add(where + "extension " + clark(c.name))
			continue
		}
		switch c.name.Local {
		case "status":
			for _, s := range c.elems() {
				v, _ := s.text()
				v = strings.TrimSpace(v)
				switch {
				case s.name.Space == NamespacePIDF && s.name.Local == "basic" && !basic:
					basic = true
					switch v {
					case "open":
					case "closed":
						closed = true
					default:
						return nil, fmt.Errorf("%w: basic status %q", ErrSyntax, v)
					}
				case s.name.Space == NamespacePIDFIM && s.name.Local == "im" && show == "":
					switch v {
					case "away", "chat", "dnd", "xa":
						show = v
					case "busy":
						show = "dnd" // RFC 3922 §5.2.10 (provisional)
					case "online":
					default:
						un.add(where + "im " + strconv.Quote(v))
					}
				default:
					un.add(where + "status " + clark(s.name))
				}
			}
		case "contact":
			v, _ := c.text()
			// The entity's own im: URI, its domain in A-labels (as
			// XMPPToIM writes it) or U-labels.
			if j, err := IMToXMPP(strings.TrimSpace(v)); err != nil || j != bare {
				un.add(where + "contact " + strconv.Quote(v))
			}
			if q, ok := c.getAttr("priority"); ok {
				if p, ok := QToPriority(strings.TrimSpace(q)); ok {
					priority = p
				} else {
					un.add(where + "contact priority " + strconv.Quote(q))
				}
			}
		case "note":
			notes = append(notes, c)
		case "timestamp":
			un.add(where + "timestamp") // §5.2: SHOULD NOT be passed
		default:
			un.add(where + "element " + c.name.Local)
		}
	}
	if !basic {
		un.add(where + "no basic status (mapped as open)")
	}
	for _, n := range notes {
		if v, _ := n.text(); !xmlText(v) {
			return nil, fmt.Errorf("%w: note is not XML text", ErrSyntax)
		}
		// PIDF's xml:lang is XML Schema's: another value makes the
		// document invalid, and the note goes without it, as a status
		// with such a language does the other way (PresenceToPIDF).
		if l, ok := n.lang(); ok && !schemaLang(l) {
			un.add(where + "note xml:lang " + strconv.Quote(l))
			n.attr = slices.DeleteFunc(n.attr, func(a xml.Attr) bool { return isXMLLang(a.Name) })
		}
	}
	return presenceXML(ns, from, to, closed, show, notes, priority), nil
}

func presenceXML(ns, from, to string, closed bool, show string, notes []*node, priority int) []byte {
	root := &node{name: xml.Name{Space: ns, Local: "presence"}}
	root.attr = append(root.attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: from})
	if to != "" {
		root.attr = append(root.attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: to})
	}
	if closed {
		root.attr = append(root.attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: "unavailable"})
	}
	el := func(local, text string) *node {
		return &node{name: xml.Name{Space: ns, Local: local}, kids: []any{text}}
	}
	if show != "" {
		root.kids = append(root.kids, el("show", show))
	}
	for _, n := range notes {
		t, _ := n.text()
		s := el("status", t)
		if t == "" {
			s.kids = nil
		}
		if l, ok := n.lang(); ok {
			s.attr = []xml.Attr{{Name: xml.Name{Space: xmlNS, Local: "lang"}, Value: l}}
		}
		root.kids = append(root.kids, s)
	}
	if priority >= 0 {
		root.kids = append(root.kids, el("priority", strconv.Itoa(priority)))
	}
	var b strings.Builder
	writeXML(&b, root, "")
	return []byte(b.String())
}

// PresenceMessage maps an XMPP <presence/> to a Message/CPIM object that
// carries its PIDF document (RFC 3922 §5.1): From and To as im: URIs
// (§5.1.1, §5.1.2), content application/pidf+xml; charset=utf-8. Errors are
// those of PresenceToPIDF, except that to is mapped here.
func PresenceMessage(stanza []byte) (*Message, error) {
	to, pidf, err := presenceToPIDF(stanza)
	if pidf == nil {
		return nil, err
	}
	root, _ := parseXML(stanza) // parsed once already
	from, _ := root.getAttr("from")
	m := &Message{ContentType: MediaTypePIDF + "; charset=utf-8", Body: pidf}
	var aerr error
	if m.FromURI, aerr = XMPPToIM(from); aerr != nil {
		return nil, aerr
	}
	if to != "" {
		if m.ToURI, aerr = XMPPToIM(to); aerr != nil {
			return nil, aerr
		}
	}
	return m, err
}

// Presence maps a Message/CPIM object carrying a PIDF document to XMPP
// presence written in the default namespace ns (RFC 3922 §5.2): the PIDF
// document is mapped as by PIDFToPresence and To gives the to attribute
// (§5.2.2). From must name the PIDF entity. Content of another type gives
// ErrNotMappable (§5.2: MUST NOT be mapped). cc, DateTime, Subject and
// Require are named in an *UnmappedError (§5.2.3 to §5.2.7).
func (m *Message) Presence(ns string) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(m.ContentType)
	if mt != MediaTypePIDF {
		return nil, fmt.Errorf("%w: content %q is not PIDF", ErrNotMappable, m.ContentType)
	}
	var un unmapped
	to := ""
	if m.ToURI != "" {
		var err error
		if to, err = addrIn(m.ToURI, ""); err != nil {
			return nil, err
		}
	}
	bare, ss, err := pidfToPresences(m.Body, ns, to)
	if ss == nil {
		return nil, err
	}
	if ue, ok := err.(*UnmappedError); ok {
		un = ue.Items
	}
	if m.FromURI != "" {
		if from, err := addrIn(m.FromURI, ""); err != nil || from != bare {
			return nil, fmt.Errorf("%w: From %q is not the PIDF entity %q", ErrNotMappable, m.FromURI, bare)
		}
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
	if len(m.Subjects) > 0 {
		un.add("Subject")
	}
	for _, r := range m.Require {
		un.add("Require: " + r)
	}
	for _, h := range m.Extensions {
		un.add("header " + h.Name)
	}
	var out []byte
	for _, s := range ss {
		out = append(out, s...)
	}
	return out, un.err()
}

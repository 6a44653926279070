package cpim

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// NamespaceCPIM is the namespace of the RFC 3862 headers and the implied
// default namespace of a Message/CPIM header block (RFC 3862 §3.4, §6).
const NamespaceCPIM = "urn:ietf:params:cpim-headers:"

// namespaceCPIMTypo is the spelling RFC 3862 §6 prints once; it is read as
// NamespaceCPIM.
const namespaceCPIMTypo = "urn:ietf:params-cpim-headers:"

// MediaType is the MIME type of a Message/CPIM object (RFC 3862 §7.1).
const MediaType = "Message/CPIM"

// Default limits of the zero Parser.
const (
	DefaultMaxSize       = 1 << 20 // whole object, bytes
	DefaultMaxHeaders    = 256     // per header block
	DefaultMaxLineLength = 16 << 10
)

// Subject is one Subject header (RFC 3862 §4.5).
type Subject struct {
	Lang string // the ;lang= parameter (RFC 3066 tag); empty means i-default
	Text string // unescaped
}

// Namespace is one NS header (RFC 3862 §4.6). An empty Prefix changes the
// default namespace of the headers that follow.
type Namespace struct {
	Prefix string
	URI    string
}

// Header is an extension header of the message header block, or a MIME
// header of the encapsulated content.
type Header struct {
	// Name as written, with its namespace prefix if any
	// ("MyFeatures.WackyMessageOption"). MIME header names compare
	// case-insensitively, CPIM header names case-sensitively.
	Name string
	// Params are the header parameters as written, each with its leading
	// ';' (";lang=fr"). Always empty for MIME headers.
	Params string
	// Value of a CPIM extension header is unescaped (RFC 3862 §2.3); the
	// value of a MIME header is as written, unfolded.
	Value string
}

// Message is a Message/CPIM object (RFC 3862).
//
// Parse fills every field. Marshal writes the RFC 3862 headers in the order
// From, To, cc, DateTime, Subject, then NS, Require and the extension
// headers, then the content; a parsed object therefore re-encodes to a
// Message equal to itself, though not always to the same octets (RFC 3862
// §2.2 forbids gateways to re-encode: forward the original bytes).
type Message struct {
	// From and To are the From and To header values as written, escapes
	// included (`Juliet Capulet <im:juliet@example.com>`). FromURI and
	// ToURI are their URIs. To marshal, set either: with only the URI,
	// Marshal writes "<URI>"; with both, they must agree.
	From, To       string
	FromURI, ToURI string
	// MoreTo holds the To headers after the first (RFC 3862 §4.2 lets To
	// repeat), as written.
	MoreTo []string
	// CC holds the cc header values, as written.
	CC []string
	// DateTime is the DateTime header (RFC 3339); zero if absent. Its
	// offset is kept. Parse reads every RFC 3339 date-time (lower-case
	// "t" and "z", fractions of a second, offsets, a leap second read as
	// second 59); Marshal writes time.RFC3339Nano, "Z" for a zero offset.
	DateTime time.Time
	Subjects []Subject
	// NS holds the NS headers in order.
	NS []Namespace
	// Require holds the names listed by the Require headers.
	Require []string
	// Extensions holds every other header of the message header block, in
	// order.
	Extensions []Header

	// ContentType is the Content-Type of the encapsulated MIME entity
	// (required), e.g. "text/plain; charset=utf-8".
	ContentType string
	// ContentHeaders are the other MIME headers of the encapsulated entity,
	// in order (Content-ID, Content-Language, ...).
	ContentHeaders []Header
	// Body is the content of the encapsulated entity, unchanged.
	Body []byte
}

// Parser parses Message/CPIM objects within limits. The zero Parser uses
// the Default limits.
type Parser struct {
	MaxSize       int // whole object in bytes; default DefaultMaxSize
	MaxHeaders    int // headers per block; default DefaultMaxHeaders
	MaxLineLength int // bytes per header line; default DefaultMaxLineLength
}

func (p Parser) limits() Parser {
	if p.MaxSize <= 0 {
		p.MaxSize = DefaultMaxSize
	}
	if p.MaxHeaders <= 0 {
		p.MaxHeaders = DefaultMaxHeaders
	}
	if p.MaxLineLength <= 0 {
		p.MaxLineLength = DefaultMaxLineLength
	}
	return p
}

// Parse parses a Message/CPIM object with the default limits. See
// Parser.Parse.
func Parse(b []byte) (*Message, error) {
	return Parser{}.Parse(b)
}

// Parse parses a Message/CPIM object. b may start with the object's own
// MIME header block ("Content-Type: Message/CPIM" and a blank line) or
// directly with the CPIM message headers. Lines may end in CRLF or LF (XML
// turns CRLF into LF, see RFC 3923 §6 and the e2e digest A.12).
//
// Input is read tolerantly: MIME header names in any case, folded MIME
// headers, unknown escapes, a missing space after a header's colon, a
// quoted Formal-name with no space before '<', every RFC 3339 DateTime
// form. It is rejected when it exceeds p's limits, is not UTF-8, or holds
// something Marshal could not write back, such as a Subject or extension
// header with an empty value ("Subject: ").
func (p Parser) Parse(b []byte) (*Message, error) {
	p = p.limits()
	if len(b) > p.MaxSize {
		return nil, fmt.Errorf("%w: object of %d bytes, limit %d", ErrTooLarge, len(b), p.MaxSize)
	}
	rest := b
	block, rest, err := p.readBlock(rest)
	if err != nil {
		return nil, err
	}
	if isOuterMIME(block) {
		if err := checkOuterMIME(block); err != nil {
			return nil, err
		}
		block, rest, err = p.readBlock(rest)
		if err != nil {
			return nil, err
		}
	}
	m := new(Message)
	if err := m.parseHeaders(block); err != nil {
		return nil, err
	}
	content, rest, err := p.readBlock(rest)
	if err != nil {
		return nil, err
	}
	if err := m.parseContentHeaders(content); err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		m.Body = bytes.Clone(rest)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// readBlock splits one header block (up to and including the first empty
// line) off b. Lines end in CRLF or LF; the terminators are removed.
func (p Parser) readBlock(b []byte) (lines []string, rest []byte, err error) {
	for {
		if len(b) == 0 {
			return nil, nil, fmt.Errorf("%w: header block not terminated by an empty line", ErrSyntax)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b)
		}
		line := b[:i]
		if i > p.MaxLineLength {
			return nil, nil, fmt.Errorf("%w: header line of %d bytes, limit %d", ErrTooLarge, i, p.MaxLineLength)
		}
		if i == len(b) {
			return nil, nil, fmt.Errorf("%w: header block not terminated by an empty line", ErrSyntax)
		}
		b = b[i+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return lines, b, nil
		}
		if len(lines) >= p.MaxHeaders {
			return nil, nil, fmt.Errorf("%w: more than %d header lines", ErrTooLarge, p.MaxHeaders)
		}
		if !utf8.Valid(line) {
			return nil, nil, fmt.Errorf("%w: header line is not UTF-8", ErrSyntax)
		}
		lines = append(lines, string(line))
	}
}

// isOuterMIME reports whether a first header block is the MIME header block
// of the Message/CPIM entity rather than its CPIM headers.
func isOuterMIME(block []string) bool {
	if len(block) == 0 {
		return false
	}
	name, _, _ := strings.Cut(block[0], ":")
	name = strings.ToLower(name)
	return strings.HasPrefix(name, "content-") || name == "mime-version"
}

func checkOuterMIME(block []string) error {
	hs, err := mimeHeaders(block)
	if err != nil {
		return err
	}
	found := false
	for _, h := range hs {
		switch strings.ToLower(h.Name) {
		case "content-type":
			t, _, _ := strings.Cut(h.Value, ";")
			if !strings.EqualFold(strings.TrimSpace(t), MediaType) {
				return fmt.Errorf("%w: media type %q is not Message/CPIM", ErrSyntax, h.Value)
			}
			found = true
		case "content-transfer-encoding":
			// RFC 3862 §7.1: a tunnelling encoding must be reversed
			// before the object is used.
			switch strings.ToLower(h.Value) {
			case "7bit", "8bit", "binary":
			default:
				return fmt.Errorf("%w: Message/CPIM object in transfer encoding %q", ErrSyntax, h.Value)
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: MIME header block without Content-Type", ErrSyntax)
	}
	return nil
}

// nsState tracks namespace declarations while reading or writing a header
// block (RFC 3862 §3.4).
type nsState struct {
	def      string
	prefixes map[string]string
}

func newNSState() *nsState { return &nsState{def: NamespaceCPIM} }

func (s *nsState) declare(n Namespace) {
	uri := n.URI
	if uri == namespaceCPIMTypo {
		uri = NamespaceCPIM
	}
	if n.Prefix == "" {
		s.def = uri
		return
	}
	if s.prefixes == nil {
		s.prefixes = make(map[string]string)
	}
	s.prefixes[n.Prefix] = uri
}

// resolve returns the namespace URI and local name of a header name; uri is
// empty for an undeclared prefix.
func (s *nsState) resolve(name string) (uri, local string) {
	prefix, local, ok := strings.Cut(name, ".")
	if !ok {
		return s.def, name
	}
	return s.prefixes[prefix], local
}

// standard returns the RFC 3862 header a name denotes in state s, or "".
// NS and Require are recognised unprefixed whatever the default namespace:
// otherwise a header block that changed its default namespace could never
// declare another prefix.
func (s *nsState) standard(name string) string {
	if name == "NS" || name == "Require" {
		return name
	}
	uri, local := s.resolve(name)
	if uri != NamespaceCPIM {
		return ""
	}
	switch local {
	case "From", "To", "cc", "DateTime", "Subject", "NS", "Require":
		return local
	}
	return ""
}

// Resolve returns the namespace URI and local name that the header name has
// in m as Marshal writes it: after all of m.NS. uri is empty for an
// undeclared prefix.
func (m *Message) Resolve(name string) (uri, local string) {
	s := newNSState()
	for _, n := range m.NS {
		s.declare(n)
	}
	return s.resolve(name)
}

func (m *Message) parseHeaders(lines []string) error {
	ns := newNSState()
	for _, line := range lines {
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return fmt.Errorf("%w: header line without ':'", ErrSyntax)
		}
		name := line[:colon]
		if _, _, ok := splitHeaderName(name); !ok {
			return fmt.Errorf("%w: bad header name %q", ErrSyntax, name)
		}
		params, v, err := parseParams(line[colon+1:])
		if err != nil {
			return fmt.Errorf("header %s: %w", name, err)
		}
		rawParams := line[colon+1 : len(line)-len(v)]
		// Exactly one space is the rule; be lenient about more or none.
		v = strings.Trim(v, " \t")
		std := ns.standard(name)
		if std != "Subject" && std != "" && len(params) > 0 {
			return fmt.Errorf("%w: parameters on %s header", ErrSyntax, std)
		}
		switch std {
		case "From":
			if m.From != "" {
				return fmt.Errorf("%w: more than one From header", ErrSyntax)
			}
			a, err := ParseAddress(v)
			if err != nil {
				return err
			}
			m.From, m.FromURI = v, a.URI
		case "To":
			a, err := ParseAddress(v)
			if err != nil {
				return err
			}
			if m.To == "" {
				m.To, m.ToURI = v, a.URI
			} else {
				m.MoreTo = append(m.MoreTo, v)
			}
		case "cc":
			if _, err := ParseAddress(v); err != nil {
				return err
			}
			m.CC = append(m.CC, v)
		case "DateTime":
			if !m.DateTime.IsZero() {
				return fmt.Errorf("%w: more than one DateTime header", ErrSyntax)
			}
			t, err := parseDateTime(v)
			if err != nil {
				return err
			}
			m.DateTime = t
		case "Subject":
			s := Subject{Text: strings.Trim(unescape(v), " ")}
			for _, p := range params {
				if p.name == "lang" {
					if !validLang(p.value) {
						return fmt.Errorf("%w: bad language tag %q", ErrSyntax, p.value)
					}
					s.Lang = p.value
				}
			}
			m.Subjects = append(m.Subjects, s)
		case "NS":
			n, err := parseNS(v)
			if err != nil {
				return err
			}
			ns.declare(n)
			m.NS = append(m.NS, n)
		case "Require":
			names, err := parseRequire(v)
			if err != nil {
				return err
			}
			m.Require = append(m.Require, names...)
		default:
			m.Extensions = append(m.Extensions, Header{
				Name:   name,
				Params: rawParams,
				Value:  strings.Trim(unescape(v), " "),
			})
		}
	}
	return nil
}

// parseDateTime reads an RFC 3339 date-time, the DateTime of RFC 3862
// §4.4 (RFC 3339 §5.6):
//
//	date-time      = full-date "T" full-time
//	full-date      = date-fullyear "-" date-month "-" date-mday
//	full-time      = partial-time time-offset
//	partial-time   = time-hour ":" time-minute ":" time-second [time-secfrac]
//	time-secfrac   = "." 1*DIGIT
//	time-offset    = "Z" / time-numoffset
//	time-numoffset = ("+" / "-") time-hour ":" time-minute
//
// with "T" and "Z" in either case (the note in §5.6), any number of
// fraction digits (read to the nanosecond, the rest dropped) and the day
// checked against its month and year (§5.7). A leap second, second 60, is
// accepted where §5.7 lets one be, at 23:59:60 UTC on the last day of a
// month (the §5.8 example 1990-12-31T15:59:60-08:00 is one), and read as
// second 59 of the same minute: time.Time has no leap seconds. The offset
// is kept as written; an offset of zero other than Z (+00:00, or -00:00 for
// an unknown local offset, §4.3) is kept as a zero offset.
func parseDateTime(v string) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w: DateTime %q: %s", ErrSyntax, v, why)
	}
	// num reads the decimal digits v[i:j].
	num := func(i, j int) (int, bool) {
		n := 0
		for ; i < j; i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, false
			}
			n = n*10 + int(v[i]-'0')
		}
		return n, true
	}
	const layout = "YYYY-MM-DDThh:mm:ss"
	if len(v) < len(layout)+1 {
		return bad("too short for an RFC 3339 date-time")
	}
	for i, c := range []byte(layout) {
		switch c {
		case '-', ':':
			if v[i] != c {
				return bad("not an RFC 3339 date-time")
			}
		case 'T':
			if v[i] != 'T' && v[i] != 't' {
				return bad(`no "T" between date and time`)
			}
		}
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return bad("not an RFC 3339 date-time")
	}
	rest := v[len(layout):]
	nsec := 0
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return bad("no digit after the decimal point")
		}
		j := len(v) - len(rest)
		nsec, _ = num(j+1, j+min(i, 10))
		for range 10 - min(i, 10) {
			nsec *= 10
		}
		rest = rest[i:]
	}
	off := 0
	utc := false
	switch {
	case rest == "Z" || rest == "z":
		utc = true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		i := len(v) - len(rest)
		oh, ok1 := num(i+1, i+3)
		om, ok2 := num(i+4, i+6)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return bad("bad offset")
		}
		off = (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
	default:
		return bad(`no offset ("Z" or +hh:mm / -hh:mm)`)
	}
	switch {
	case month < 1 || month > 12:
		return bad("month out of range")
	case day < 1 || day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day():
		return bad("day out of range")
	case hour > 23:
		return bad("hour out of range")
	case minute > 59:
		return bad("minute out of range")
	case sec > 60:
		return bad("second out of range")
	case sec == 60:
		// §5.7: "at the end of months in which a leap second occurs",
		// shifted by the offset.
		u := time.Date(year, time.Month(month), day, hour, minute, 0, 0, time.FixedZone("", off)).UTC()
		if u.Hour() != 23 || u.Minute() != 59 || u.AddDate(0, 0, 1).Day() != 1 {
			return bad("second 60 where no leap second can be (23:59:60 UTC at the end of a month)")
		}
		sec = 59
	}
	loc := time.UTC
	if !utc {
		loc = time.FixedZone("", off)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), nil
}

func parseNS(v string) (Namespace, error) {
	lt := strings.IndexByte(v, '<')
	if lt < 0 || !strings.HasSuffix(v, ">") {
		return Namespace{}, fmt.Errorf("%w: NS header %q", ErrSyntax, v)
	}
	n := Namespace{Prefix: strings.TrimRight(v[:lt], " "), URI: v[lt+1 : len(v)-1]}
	if err := n.check(); err != nil {
		return Namespace{}, err
	}
	return n, nil
}

func (n Namespace) check() error {
	if n.Prefix != "" && !validName(n.Prefix) {
		return fmt.Errorf("%w: bad NS prefix %q", ErrSyntax, n.Prefix)
	}
	if err := checkURI(n.URI); err != nil {
		return err
	}
	if strings.Contains(n.URI, "#") {
		return fmt.Errorf("%w: NS URI %q has a fragment", ErrSyntax, n.URI)
	}
	return nil
}

func parseRequire(v string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if _, _, ok := splitHeaderName(n); !ok {
			return nil, fmt.Errorf("%w: bad name %q in Require", ErrSyntax, n)
		}
		names = append(names, n)
	}
	return names, nil
}

// mimeHeaders parses a MIME header block (RFC 5322 §2.2 syntax, folded
// lines unfolded).
func mimeHeaders(lines []string) ([]Header, error) {
	var (
		hs   []Header
		cont []string // the current header's value and continuation lines
	)
	flush := func() {
		if len(hs) > 0 {
			hs[len(hs)-1].Value = strings.TrimSpace(strings.Join(cont, " "))
		}
	}
	for _, line := range lines {
		if line[0] == ' ' || line[0] == '\t' {
			if len(hs) == 0 {
				return nil, fmt.Errorf("%w: continuation line before the first MIME header", ErrSyntax)
			}
			if t := strings.TrimSpace(line); t != "" {
				cont = append(cont, t)
			}
			continue
		}
		name, v, ok := strings.Cut(line, ":")
		if !ok || !validMIMEName(name) {
			return nil, fmt.Errorf("%w: bad MIME header line", ErrSyntax)
		}
		flush()
		hs = append(hs, Header{Name: name})
		cont = append(cont[:0], strings.TrimSpace(v))
	}
	flush()
	for _, h := range hs {
		if err := checkMIMEValue(h.Value); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

func validMIMEName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func checkMIMEValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("%w: control character in MIME header", ErrSyntax)
		}
	}
	if !utf8.ValidString(v) || strings.TrimSpace(v) != v {
		return fmt.Errorf("%w: bad MIME header value %q", ErrSyntax, v)
	}
	return nil
}

func (m *Message) parseContentHeaders(lines []string) error {
	hs, err := mimeHeaders(lines)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if strings.EqualFold(h.Name, "Content-Type") {
			if m.ContentType != "" {
				return fmt.Errorf("%w: more than one Content-Type in the encapsulated entity", ErrSyntax)
			}
			m.ContentType = h.Value
			continue
		}
		m.ContentHeaders = append(m.ContentHeaders, h)
	}
	return nil
}

// ContentHeader returns the value of the first content header named name
// (case-insensitively), "Content-Type" included.
func (m *Message) ContentHeader(name string) (string, bool) {
	if strings.EqualFold(name, "Content-Type") {
		return m.ContentType, m.ContentType != ""
	}
	for _, h := range m.ContentHeaders {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// check reports whether m can be written in the strict output form and read
// back to an equal Message.
func (m *Message) check() error {
	checkAddr := func(field, v, uri string) error {
		if v == "" {
			if uri != "" {
				return checkURI(uri)
			}
			return nil
		}
		a, err := ParseAddress(v)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if uri != "" && uri != a.URI {
			return fmt.Errorf("%w: %s %q disagrees with %sURI %q", ErrSyntax, field, v, field, uri)
		}
		return checkOneLine(v)
	}
	if err := checkAddr("From", m.From, m.FromURI); err != nil {
		return err
	}
	if err := checkAddr("To", m.To, m.ToURI); err != nil {
		return err
	}
	if len(m.MoreTo) > 0 && m.To == "" && m.ToURI == "" {
		return fmt.Errorf("%w: MoreTo without To", ErrSyntax)
	}
	for _, v := range m.MoreTo {
		if err := checkAddr("To", v, ""); err != nil {
			return err
		}
	}
	for _, v := range m.CC {
		if err := checkAddr("cc", v, ""); err != nil {
			return err
		}
	}
	if !m.DateTime.IsZero() && (m.DateTime.Year() < 0 || m.DateTime.Year() > 9999) {
		return fmt.Errorf("%w: DateTime year %d out of range", ErrSyntax, m.DateTime.Year())
	}
	for _, s := range m.Subjects {
		if s.Lang != "" && !validLang(s.Lang) {
			return fmt.Errorf("%w: bad language tag %q", ErrSyntax, s.Lang)
		}
		if err := checkValue(s.Text); err != nil {
			return fmt.Errorf("Subject: %w", err)
		}
	}
	ns := newNSState()
	for _, n := range m.NS {
		if err := n.check(); err != nil {
			return err
		}
		ns.declare(n)
	}
	for _, r := range m.Require {
		if _, _, ok := splitHeaderName(r); !ok {
			return fmt.Errorf("%w: bad name %q in Require", ErrSyntax, r)
		}
	}
	for _, h := range m.Extensions {
		if _, _, ok := splitHeaderName(h.Name); !ok {
			return fmt.Errorf("%w: bad header name %q", ErrSyntax, h.Name)
		}
		if std := ns.standard(h.Name); std != "" {
			return fmt.Errorf("%w: extension header %q would be read as the RFC 3862 %s header", ErrSyntax, h.Name, std)
		}
		ps, rest, err := parseParams(h.Params)
		if err != nil || rest != "" {
			return fmt.Errorf("%w: bad parameters %q on %s", ErrSyntax, h.Params, h.Name)
		}
		for _, p := range ps {
			if p.name == "lang" && !validLang(p.value) {
				return fmt.Errorf("%w: bad language tag %q", ErrSyntax, p.value)
			}
		}
		if err := checkValue(h.Value); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	if m.ContentType == "" {
		return fmt.Errorf("%w: encapsulated entity has no Content-Type (RFC 3862 §2.4)", ErrSyntax)
	}
	if err := checkMIMEValue(m.ContentType); err != nil {
		return err
	}
	if _, _, err := mime.ParseMediaType(m.ContentType); err != nil && !strings.Contains(m.ContentType, "/") {
		return fmt.Errorf("%w: bad Content-Type %q", ErrSyntax, m.ContentType)
	}
	for _, h := range m.ContentHeaders {
		if !validMIMEName(h.Name) || strings.EqualFold(h.Name, "Content-Type") {
			return fmt.Errorf("%w: bad content header name %q", ErrSyntax, h.Name)
		}
		if err := checkMIMEValue(h.Value); err != nil {
			return err
		}
	}
	return nil
}

// checkOneLine checks a value that is written as is (already escaped).
func checkOneLine(v string) error {
	if hasCTL(v) || !utf8.ValidString(v) || strings.Trim(v, " ") != v {
		return fmt.Errorf("%w: header value %q needs escaping", ErrSyntax, v)
	}
	return nil
}

// checkText checks an unescaped value: any UTF-8 text is fine except
// leading or trailing spaces, which a header line cannot carry.
func checkText(v string) error {
	if !utf8.ValidString(v) || strings.Trim(v, " ") != v {
		return fmt.Errorf("%w: value %q is not UTF-8 or has leading or trailing spaces", ErrSyntax, v)
	}
	return nil
}

// checkValue checks the unescaped value of a Subject or extension header:
// text as checkText allows, and not empty. RFC 3862 §3.6 puts a space
// between the name (or parameters) and the value, and §2.2 lets no line end
// in whitespace, so no header line can carry an empty value.
func checkValue(v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty header value (RFC 3862 §2.2: no line ends in whitespace)", ErrSyntax)
	}
	return checkText(v)
}

// Marshal returns the canonical encoding of m (RFC 3862 §2, §3): the
// message headers, an empty line, the encapsulated entity's MIME headers,
// an empty line and the content, every header line ending in CRLF and none
// in whitespace. The Message/CPIM object's own MIME header is not included;
// see MarshalMIME. The body is written unchanged. A Subject or extension
// header with an empty value cannot be written (RFC 3862 §2.2): Marshal
// returns an error wrapping ErrSyntax.
func (m *Message) Marshal() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(name, params, v string) {
		b.WriteString(name)
		b.WriteString(":")
		b.WriteString(params)
		b.WriteString(" ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	addr := func(v, uri string) string {
		if v == "" {
			return "<" + uri + ">"
		}
		return v
	}
	if m.From != "" || m.FromURI != "" {
		line("From", "", addr(m.From, m.FromURI))
	}
	if m.To != "" || m.ToURI != "" {
		line("To", "", addr(m.To, m.ToURI))
	}
	for _, v := range m.MoreTo {
		line("To", "", v)
	}
	for _, v := range m.CC {
		line("cc", "", v)
	}
	if !m.DateTime.IsZero() {
		line("DateTime", "", m.DateTime.Format(time.RFC3339Nano))
	}
	for _, s := range m.Subjects {
		p := ""
		if s.Lang != "" {
			p = ";lang=" + s.Lang
		}
		line("Subject", p, escapeValue(s.Text))
	}
	for _, n := range m.NS {
		if n.Prefix == "" {
			line("NS", "", "<"+n.URI+">")
		} else {
			line("NS", "", n.Prefix+" <"+n.URI+">")
		}
	}
	if len(m.Require) > 0 {
		line("Require", "", strings.Join(m.Require, ","))
	}
	for _, h := range m.Extensions {
		line(h.Name, h.Params, escapeValue(h.Value))
	}
	b.WriteString("\r\n")
	line("Content-type", "", m.ContentType)
	for _, h := range m.ContentHeaders {
		if h.Value == "" {
			// A MIME header may be empty (RFC 5322 §3.6.8); written
			// without the space, the line does not end in whitespace.
			b.WriteString(h.Name + ":\r\n")
			continue
		}
		line(h.Name, "", h.Value)
	}
	b.WriteString("\r\n")
	b.Write(m.Body)
	return b.Bytes(), nil
}

// MarshalMIME returns the Message/CPIM object as a MIME entity:
// "Content-type: Message/CPIM", an empty line, then Marshal's output. This
// is the first body part of an RFC 3923 multipart/signed object and the
// plaintext of its EnvelopedData (RFC 3923 §3.1, Examples 1 and 2); the
// header is spelled as the RFC examples spell it.
func (m *Message) MarshalMIME() ([]byte, error) {
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return append([]byte("Content-type: "+MediaType+"\r\n\r\n"), b...), nil
}

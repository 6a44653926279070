package cpim

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the RFC 3862 §2.3 and §3 lexical rules: escapes, names,
// parameters, language tags and addresses.

// escapeValue escapes s for use as a header value outside quoted strings
// (RFC 3862 §2.3): backslash, BS, HT, LF and CR by their short escapes, the
// other controls as \u00XX, nothing else.
func escapeValue(s string) string {
	return escape(s, 0)
}

// escapeQuoted escapes s for use inside a string delimited by quote.
func escapeQuoted(s string, quote byte) string {
	return escape(s, quote)
}

func escape(s string, quote byte) string {
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' || (quote != 0 && c == quote) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, c)
		case quote != 0 && c == quote:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescape decodes the RFC 3862 §2.3 escapes in s. Every backslash starts
// an escape; an unknown escape stands for the character after the
// backslash; a lone backslash at the end is ignored. \u escapes that form a
// UTF-16 surrogate pair are joined; a lone surrogate becomes U+FFFD.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break // lone backslash at the end: ignored
		}
		e := s[i+1]
		switch e {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				b.WriteByte('u')
				break
			}
			i += 4 // the four hex digits
			if utf16.IsSurrogate(r) {
				rest := s[i+2:]
				r2, ok := rune(0), false
				if strings.HasPrefix(rest, `\u`) {
					r2, ok = hex4(rest[2:])
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					b.WriteRune(d)
					i += 6 // the second \uXXXX
					break
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default:
			// Unknown escapes (and \\, \", \') stand for the next
			// character, which may be a multi-byte rune.
			_, n := utf8.DecodeRuneInString(s[i+1:])
			b.WriteString(s[i+1 : i+1+n])
			i += n - 1
		}
		i += 2
	}
	return b.String()
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// isNameChar reports whether c is an RFC 3862 §3.6 NAMECHAR.
func isNameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == 0x21, 0x23 <= c && c <= 0x27, c == 0x2a, c == 0x2b, c == 0x2d,
		0x5e <= c && c <= 0x60, c == 0x7c, c == 0x7e:
		return true
	}
	return false
}

// isTokenChar reports whether c is a TOKENCHAR octet (UCS-high octets are
// accepted as part of UTF-8 sequences).
func isTokenChar(c byte) bool {
	return isNameChar(c) || c == '.' || c >= 0x80
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// splitHeaderName splits Header-name = [ Name-prefix "." ] Name. ok is false
// when s is not a valid Header-name.
func splitHeaderName(s string) (prefix, name string, ok bool) {
	prefix, name, found := strings.Cut(s, ".")
	if !found {
		return "", s, validName(s)
	}
	return prefix, name, validName(prefix) && validName(name)
}

// validLang reports whether s is an RFC 3066 Language-tag:
// 1*8ALPHA *( "-" 1*8(ALPHA / DIGIT) ). The primary subtag is accepted
// with digits too, as BCP 47 private and grandfathered tags need.
func validLang(s string) bool {
	if s == "" {
		return false
	}
	for _, sub := range strings.Split(s, "-") {
		if len(sub) < 1 || len(sub) > 8 {
			return false
		}
		for i := 0; i < len(sub); i++ {
			c := sub[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

// schemaLang reports whether s is a value XML Schema allows for xml:lang
// (xml.xsd): empty, or an xs:language, [a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*,
// which unlike validLang wants letters in the primary subtag.
func schemaLang(s string) bool {
	if s == "" {
		return true
	}
	primary, _, _ := strings.Cut(s, "-")
	for i := 0; i < len(primary); i++ {
		if c := primary[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return validLang(s)
}

// Param is one header parameter (RFC 3862 §3.2, §3.3): ";Name=Value".
type param struct {
	name, value string // value as written: a token, a number or a quoted string
}

// parseParams reads *( ";" Parameter ) from the start of s and returns the
// parameters and the rest of s. The parameter values are raw (quoted
// strings keep their quotes and escapes).
func parseParams(s string) ([]param, string, error) {
	var ps []param
	for strings.HasPrefix(s, ";") {
		s = s[1:]
		i := 0
		for i < len(s) && isNameChar(s[i]) {
			i++
		}
		if i == 0 || i >= len(s) || s[i] != '=' {
			return nil, "", fmt.Errorf("%w: bad header parameter", ErrSyntax)
		}
		name := s[:i]
		s = s[i+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			n, err := quotedLen(s)
			if err != nil {
				return nil, "", err
			}
			v, s = s[:n], s[n:]
		} else {
			j := 0
			for j < len(s) && isTokenChar(s[j]) {
				j++
			}
			if j == 0 {
				return nil, "", fmt.Errorf("%w: empty header parameter value", ErrSyntax)
			}
			v, s = s[:j], s[j:]
		}
		ps = append(ps, param{name, v})
	}
	return ps, s, nil
}

// quotedLen returns the length of the quoted string at the start of s,
// including both quotes.
func quotedLen(s string) (int, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated quoted string", ErrSyntax)
}

// hasCTL reports whether s holds a control character (RFC 3862 §3: they
// must be escaped).
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// Address is a From, To or cc header value: an optional Formal-name and a
// URI (RFC 3862 §4.1 to §4.3).
type Address struct {
	Name string // Formal-name, unescaped; empty if absent
	URI  string // e.g. "im:juliet@example.com"
}

// ParseAddress parses a From, To or cc header value as written on the wire
// (escapes not yet decoded), e.g. `Juliet Capulet <im:juliet@example.com>`
// or `"Capulet, Juliet" <im:juliet@example.com>`. A bare absolute URI
// without angle brackets is accepted too.
func ParseAddress(v string) (Address, error) {
	if hasCTL(v) || !utf8.ValidString(v) {
		return Address{}, fmt.Errorf("%w: control character or bad UTF-8 in address", ErrSyntax)
	}
	if !strings.HasSuffix(v, ">") {
		if err := checkURI(v); err != nil {
			return Address{}, err
		}
		return Address{URI: v}, nil
	}
	lt := strings.LastIndexByte(v, '<')
	if lt < 0 {
		return Address{}, fmt.Errorf("%w: address %q lacks '<'", ErrSyntax, v)
	}
	uri := v[lt+1 : len(v)-1]
	if err := checkURI(uri); err != nil {
		return Address{}, err
	}
	name := strings.TrimRight(v[:lt], " ")
	switch {
	case name == "":
	case name[0] == '"':
		n, err := quotedLen(name)
		if err != nil {
			return Address{}, err
		}
		if n != len(name) {
			return Address{}, fmt.Errorf("%w: text after quoted Formal-name", ErrSyntax)
		}
		name = unescape(name[1 : n-1])
	default:
		if strings.ContainsAny(name, `"<>`) {
			return Address{}, fmt.Errorf("%w: bad Formal-name %q", ErrSyntax, name)
		}
		name = unescape(name)
	}
	return Address{Name: name, URI: uri}, nil
}

// String formats a as a header value: the Formal-name as tokens when every
// word is a Token, otherwise as a quoted string.
func (a Address) String() string {
	if a.Name == "" {
		return "<" + a.URI + ">"
	}
	plain := !strings.HasPrefix(a.Name, " ") && !strings.HasSuffix(a.Name, " ") && !strings.Contains(a.Name, "  ")
	for i := 0; plain && i < len(a.Name); i++ {
		plain = a.Name[i] == ' ' || isTokenChar(a.Name[i])
	}
	if plain {
		return a.Name + " <" + a.URI + ">"
	}
	return `"` + escapeQuoted(a.Name, '"') + `" <` + a.URI + ">"
}

// checkURI checks that s looks like an absolute URI (RFC 2396): a scheme,
// a colon, and no spaces, controls, angle brackets or quotes.
func checkURI(s string) error {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || rest == "" || !validScheme(scheme) {
		return fmt.Errorf("%w: %q is not an absolute URI", ErrSyntax, s)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= 0x20, c == 0x7f, c == '<', c == '>', c == '"', c == '\\':
			return fmt.Errorf("%w: bad character in URI %q", ErrSyntax, s)
		}
	}
	return nil
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

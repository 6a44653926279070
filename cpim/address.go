package cpim

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/s2sd/s2sd/route"
)

// RFC 3922 §3: only the localpart is mapped. The domain is written as
// A-labels: the headers that carry these URIs are URIs (RFC 3862 §3.6),
// which are ASCII, while a JID's domainpart holds U-labels (RFC 7622
// §3.2.1).

// XMPPToIM maps a JID to an im: URI (RFC 3922 §3.2). The resource, if any,
// is dropped. The JID must have a localpart. The domain is written in
// ASCII: each U-label as its A-label (IDNA ToASCII, RFC 5891 §5), so
// "juliet@exämple.example" and "juliet@xn--exmple-cua.example" both give
// "im:juliet@xn--exmple-cua.example".
func XMPPToIM(j string) (string, error) { return xmppToURI("im:", j) }

// XMPPToPres maps a JID to a pres: URI (RFC 3922 §3.2), the domain written
// as XMPPToIM writes it.
func XMPPToPres(j string) (string, error) { return xmppToURI("pres:", j) }

// IMToXMPP maps an im: URI to a bare JID (RFC 3922 §3.3). The domain may be
// written with A-labels or U-labels; the JID has U-labels, as every JID
// does (RFC 7622 §3.2.1), so IMToXMPP("im:juliet@xn--exmple-cua.example")
// is "juliet@exämple.example".
func IMToXMPP(uri string) (string, error) { return uriToXMPP("im", uri) }

// PresToXMPP maps a pres: URI to a bare JID (RFC 3922 §3.3), the domain
// read as IMToXMPP reads it.
func PresToXMPP(uri string) (string, error) { return uriToXMPP("pres", uri) }

// asciiDomain returns a JID domainpart with each U-label turned into its
// A-label. The profile is the one the JID package reads domainparts with
// (UTS #46 mapping, STD3 rules, hyphen, joiner and Bidi checks,
// nontransitional), so every domainpart it accepts converts, and
// converting back gives the same domainpart. ASCII domainparts, IP literals
// among them, are already what a URI holds.
func asciiDomain(d string) (string, error) {
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			return idna.Lookup.ToASCII(d)
		}
	}
	return d, nil
}

// localSafe is the set of octets RFC 3922 §3.2 step 4 leaves unencoded.
func localSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!$*.?_~+=", c) >= 0
}

// The RFC 3922 §3 character sequences for octets URIs allow but XMPP
// localparts do not. (These are not XEP-0106 escapes.)
var (
	xmppUnescape = strings.NewReplacer("#26;", "&", "#27;", "'", "#2f;", "/")
	xmppEscape   = strings.NewReplacer("&", "#26;", "'", "#27;", "/", "#2f;")
)

func xmppToURI(scheme, s string) (string, error) {
	j, err := route.ParseJID(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrAddress, s, err)
	}
	local := j.Localpart()
	if local == "" {
		return "", fmt.Errorf("%w: %q has no localpart", ErrAddress, s)
	}
	if emptyLabel(j.Domainpart()) {
		return "", fmt.Errorf("%w: %q: empty label in the domainpart", ErrAddress, s)
	}
	domain, err := asciiDomain(j.Domainpart())
	if err != nil {
		return "", fmt.Errorf("%w: %q: domainpart has no A-label form: %v", ErrAddress, s, err)
	}
	local = xmppUnescape.Replace(local)
	var b strings.Builder
	b.WriteString(scheme)
	for i := 0; i < len(local); i++ {
		if c := local[i]; localSafe(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteByte('@')
	b.WriteString(domain)
	return b.String(), nil
}

func uriToXMPP(scheme, uri string) (string, error) {
	s, rest, ok := strings.Cut(uri, ":")
	if !ok || !strings.EqualFold(s, scheme) {
		return "", fmt.Errorf("%w: %q is not a %s: URI", ErrAddress, uri, scheme)
	}
	enc, domain, ok := strings.Cut(rest, "@")
	if !ok || enc == "" {
		return "", fmt.Errorf("%w: %q has no localpart", ErrAddress, uri)
	}
	if strings.ContainsAny(domain, "/?#") {
		// A URI's host ends there: what follows would be a path (a JID
		// resource, once parsed), which an address of a person has not.
		return "", fmt.Errorf("%w: %q: the domain is followed by a path", ErrAddress, uri)
	}
	local, err := percentDecode(enc)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrAddress, uri, err)
	}
	if !utf8.ValidString(local) {
		return "", fmt.Errorf("%w: %q: localpart is not UTF-8", ErrAddress, uri)
	}
	local = xmppEscape.Replace(local)
	j, err := route.ParseJID(local + "@" + domain)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrAddress, uri, err)
	}
	if emptyLabel(j.Domainpart()) {
		return "", fmt.Errorf("%w: %q: empty label in the domainpart", ErrAddress, uri)
	}
	// Only what maps back: XMPPToIM must accept the JID returned.
	if _, err := asciiDomain(j.Domainpart()); err != nil {
		return "", fmt.Errorf("%w: %q: domainpart has no A-label form: %v", ErrAddress, uri, err)
	}
	return j.String(), nil
}

// emptyLabel reports a domainpart with an empty DNS label, which
// mellium.im/xmpp/jid lets through in some forms ("a@.." parses as "a@.")
// and no address on either side can carry.
func emptyLabel(d string) bool {
	return d == "" || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..")
}

func percentDecode(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated %%-escape")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

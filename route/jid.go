package route

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
	"mellium.im/xmpp/jid"
)

// ErrBadDomain is returned by ParseJID for a domainpart that is not a valid
// IDNA domain name or IP literal.
var ErrBadDomain = errors.New("route: invalid domainpart")

// ParseJID parses an address per RFC 7622 (PRECIS profiles through
// mellium.im/xmpp/jid) and checks that the domainpart is an IP literal or a
// domain name that IDNA2008 (UTS #46 lookup) accepts, with no empty label.
func ParseJID(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	d := j.Domainpart()
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		if _, err := netip.ParseAddr(d[1 : len(d)-1]); err != nil {
			return jid.JID{}, ErrBadDomain
		}
		return j, nil
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return j, nil
	}
	if d == "" || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return jid.JID{}, ErrBadDomain
	}
	if _, err := idna.Lookup.ToASCII(d); err != nil {
		return jid.JID{}, ErrBadDomain
	}
	return j, nil
}

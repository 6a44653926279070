package route

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
	"mellium.im/xmpp/jid"
)

// ErrBadDomain is returned by ParseJID for a domainpart that is not a valid
// IDNA domain name or IP literal.
var ErrBadDomain = errors.New("route: invalid domainpart")

// jidCache remembers addresses that parsed, so that the PRECIS and IDNA
// work is done once per address rather than once per stanza. It is
// sharded, and a shard is emptied when full, so it stays bounded whatever
// addresses peers send.
//
// Every stanza looks up two addresses, on the reading goroutine of each
// stream, so a lookup takes no lock: it reads a map that is never
// modified, through an atomic pointer. New addresses go to a second map
// under a mutex and join the first in batches, copied (as sync.Map
// promotes its dirty map): after promoteAt additions, or promoteAt
// lookups that had to take the mutex. A copy is at most jidCacheShard
// entries, so an address costs a few entry copies on average.
type jidCache struct {
	shards [1 << shardBits]cacheShard
}

type cacheShard struct {
	read   atomic.Pointer[map[string]*addr] // never modified once stored
	mu     sync.Mutex
	dirty  map[string]*addr // added since read was made
	misses int              // lookups that took mu since then
}

// addr is an address that parsed, with its domainpart as a string, made
// once: jid.JID.Domainpart allocates at each call, and routing asks for
// the domain of every stanza. Never modified once cached.
type addr struct {
	j      jid.JID
	domain string
}

const (
	shardBits     = 4
	jidCacheShard = 256 // addresses in a shard, at most
	promoteAt     = 32
)

var cache jidCache

// shard picks s's shard with a multiply-and-fold over its bytes, eight at
// a time: the shards only bound the cache's size and the cost of a
// promotion, and the map in the shard hashes s again, so this hash need
// only spread addresses, not resist an attacker (who can fill the cache
// with new addresses anyway). maphash here cost as much as the lookup.
func (c *jidCache) shard(s []byte) *cacheShard {
	const m = 0x9e3779b97f4a7c15 // Fibonacci hashing: the top bits depend on all below
	x := uint64(len(s))
	for len(s) >= 8 {
		x = (x ^ binary.LittleEndian.Uint64(s)) * m
		s = s[8:]
	}
	for _, c := range s {
		x = (x ^ uint64(c)) * m
	}
	return &c.shards[x>>(64-shardBits)]
}

func (c *jidCache) get(s []byte) *addr {
	sh := c.shard(s)
	if m := sh.read.Load(); m != nil {
		if a := (*m)[string(s)]; a != nil { // no allocation: a lookup by bytes
			return a
		}
	}
	sh.mu.Lock()
	a := sh.dirty[string(s)]
	if a != nil {
		if sh.misses++; sh.misses >= promoteAt {
			sh.promote()
		}
	}
	sh.mu.Unlock()
	return a
}

func (c *jidCache) put(s string, a *addr) {
	sh := c.shard([]byte(s))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := len(sh.dirty)
	if m := sh.read.Load(); m != nil {
		n += len(*m)
	}
	if n >= jidCacheShard {
		sh.read.Store(nil)
		sh.dirty, sh.misses = nil, 0
	}
	if sh.dirty == nil {
		sh.dirty = make(map[string]*addr)
	}
	sh.dirty[s] = a
	if len(sh.dirty) >= promoteAt {
		sh.promote()
	}
}

// promote makes a new read map of the old one and dirty; sh.mu is held.
func (sh *cacheShard) promote() {
	old := sh.read.Load()
	n := len(sh.dirty)
	if old != nil {
		n += len(*old)
	}
	m := make(map[string]*addr, n)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	for k, v := range sh.dirty {
		m[k] = v
	}
	sh.read.Store(&m)
	sh.dirty, sh.misses = nil, 0
}

// parseAddr is ParseJID on the bytes of an attribute value, through the
// cache: an address seen before costs neither parsing nor allocation.
func parseAddr(b []byte) (*addr, error) {
	if a := cache.get(b); a != nil {
		return a, nil
	}
	s := string(b)
	j, err := parseJID(s)
	if err != nil {
		return nil, err
	}
	a := &addr{j: j, domain: j.Domainpart()}
	cache.put(s, a)
	return a, nil
}

// ParseJID parses an address per RFC 7622 and checks that the domainpart is
// an IP literal or a domain name that IDNA2008 (UTS #46 lookup) accepts,
// with no empty label. Results are cached.
//
// It accepts what mellium.im/xmpp/jid.Parse accepts, with the same result,
// and more: the localpart is enforced with the UsernameCaseMapped profile
// of RFC 8265 §3.3, whose Directionality Rule applies the Bidi Rule of RFC
// 5893 only to strings that contain a right-to-left character (bidi class
// R, AL or AN). golang.org/x/text's profile, which jid.Parse uses,
// applies the rule to every non-ASCII string (golang/go#17383), and so
// refuses "2ème@example.fr", an address other servers register and
// federate.
func ParseJID(s string) (jid.JID, error) {
	a, err := parseAddr([]byte(s))
	if err != nil {
		return jid.JID{}, err
	}
	return a.j, nil
}

// ParseJIDBytes is ParseJID on bytes, such as an attribute value from
// xmlstream.Element.AttrBytes; an address in the cache is found without
// allocating.
func ParseJIDBytes(b []byte) (jid.JID, error) {
	a, err := parseAddr(b)
	if err != nil {
		return jid.JID{}, err
	}
	return a.j, nil
}

// Errors of parseJID; jid.New returns the same ones, unexported.
var (
	errInvalidUTF8        = errors.New("route: address is not valid UTF-8")
	errLongLocalpart      = errors.New("route: the localpart must be smaller than 1024 bytes")
	errLongResourcepart   = errors.New("route: the resourcepart must be smaller than 1024 bytes")
	errForbiddenLocalpart = errors.New("route: localpart contains forbidden characters")
)

// usernameLTR is precis.UsernameCaseMapped (x/text's profiles.go) without
// precis.BidiRule; enforceLocalpart adds the rule back for RTL strings by
// using precis.UsernameCaseMapped itself.
var usernameLTR = precis.NewIdentifier(precis.FoldWidth, precis.LowerCase(), precis.Norm(norm.NFC))

// enforceLocalpart applies the UsernameCaseMapped profile of RFC 8265 §3.3
// to a localpart. Its last enforcement rule, the Directionality Rule:
// "Applications MUST apply the 'Bidi Rule' defined in [RFC5893] to strings
// that contain right-to-left characters". The rule comes after the
// mappings (width, case, NFC), so the mapped string is the one tested for
// right-to-left characters; for such a string the result is exactly
// precis.UsernameCaseMapped's.
func enforceLocalpart(s string) (string, error) {
	out, err := usernameLTR.String(s)
	if err != nil {
		return "", err
	}
	if bidirule.DirectionString(out) == bidi.RightToLeft {
		return precis.UsernameCaseMapped.String(s)
	}
	return out, nil
}

// parseJID does what jid.Parse does (mellium.im/xmpp/jid, jid.go: Parse,
// New, localChecks, resourceChecks), with enforceLocalpart for the
// localpart, then the domainpart checks of ParseJID.
func parseJID(s string) (jid.JID, error) {
	local, domain, resource, err := jid.SplitString(s)
	if err != nil {
		return jid.JID{}, err
	}
	if !utf8.ValidString(local) || !utf8.ValidString(resource) {
		return jid.JID{}, errInvalidUTF8
	}
	// The domainpart normalized by mellium (trailing dot, IDNA ToUnicode,
	// length).
	dj, err := jid.New("", domain, "")
	if err != nil {
		return jid.JID{}, err
	}
	d := dj.Domainpart()
	if local != "" {
		if local, err = enforceLocalpart(local); err != nil {
			return jid.JID{}, err
		}
	}
	if resource != "" {
		if resource, err = precis.OpaqueString.String(resource); err != nil {
			return jid.JID{}, err
		}
	}
	if len(local) > 1023 {
		return jid.JID{}, errLongLocalpart
	}
	// RFC 7622 §3.3.1: characters the profile allows but the localpart
	// may not hold, checked after enforcement as jid.New does.
	if strings.ContainsAny(local, `"&'/:<>@`) {
		return jid.JID{}, errForbiddenLocalpart
	}
	if len(resource) > 1023 {
		return jid.JID{}, errLongResourcepart
	}
	if err := checkDomain(d); err != nil {
		return jid.JID{}, err
	}
	// Every check of jid.New is done: build the value without redoing
	// them (and without its Bidi Rule).
	return jid.NewUnsafe(local, d, resource).JID, nil
}

// checkDomain checks a normalized domainpart: an IP literal, or a domain
// name that IDNA2008 accepts with no empty label.
func checkDomain(d string) error {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		if _, err := netip.ParseAddr(d[1 : len(d)-1]); err != nil {
			return ErrBadDomain
		}
		return nil
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return nil
	}
	if d == "" || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return ErrBadDomain
	}
	if _, err := idna.Lookup.ToASCII(d); err != nil {
		return ErrBadDomain
	}
	return nil
}

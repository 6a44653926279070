package route

import (
	"errors"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/idna"
	"mellium.im/xmpp/jid"
)

// ErrBadDomain is returned by ParseJID for a domainpart that is not a valid
// IDNA domain name or IP literal.
var ErrBadDomain = errors.New("route: invalid domainpart")

// jidCache remembers addresses that parsed, so that the PRECIS and IDNA
// work is done once per address rather than once per stanza. It is
// sharded, and a shard is emptied when full, so it stays bounded whatever
// addresses peers send.
type jidCache struct {
	shards [16]struct {
		mu sync.RWMutex
		m  map[string]jid.JID
	}
}

const jidCacheShard = 256

var cache jidCache

func (c *jidCache) shard(s string) int {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return int(h % uint32(len(c.shards)))
}

func (c *jidCache) get(s string) (jid.JID, bool) {
	sh := &c.shards[c.shard(s)]
	sh.mu.RLock()
	j, ok := sh.m[s]
	sh.mu.RUnlock()
	return j, ok
}

func (c *jidCache) put(s string, j jid.JID) {
	sh := &c.shards[c.shard(s)]
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= jidCacheShard {
		sh.m = make(map[string]jid.JID, jidCacheShard)
	}
	sh.m[s] = j
	sh.mu.Unlock()
}

// ParseJID parses an address per RFC 7622 (PRECIS profiles through
// mellium.im/xmpp/jid) and checks that the domainpart is an IP literal or a
// domain name that IDNA2008 (UTS #46 lookup) accepts, with no empty label.
// Results are cached.
func ParseJID(s string) (jid.JID, error) {
	if j, ok := cache.get(s); ok {
		return j, nil
	}
	j, err := parseJID(s)
	if err == nil {
		cache.put(s, j)
	}
	return j, err
}

func parseJID(s string) (jid.JID, error) {
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

package s2s

// This file finds where to connect for a remote domain: RFC 6120 §3.2
// (SRV lookup, then the A/AAAA fallback on port 5269), RFC 2782 (SRV
// ordering by priority and weight) and XEP-0368 (_xmpps-server records for
// direct TLS, merged with _xmpp-server ones). Queries go to the configured
// nameservers through github.com/miekg/dns.

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// DefaultPort is the port RFC 6120 §3.2.2 falls back to when a domain has no
// SRV records.
const DefaultPort = 5269

// Service names looked up by LookupTargets, without the leading underscore
// and the "._tcp" protocol label.
const (
	ServiceDirectTLS = "xmpps-server" // XEP-0368: connect with TLS at once
	ServiceStartTLS  = "xmpp-server"  // RFC 6120 §3.2.1: connect, then STARTTLS
)

const (
	resolveTimeout   = 5 * time.Second
	resolveCacheSize = 4096
	maxCacheTTL      = time.Hour       // answers are kept at most this long
	maxNegativeTTL   = 5 * time.Minute // RFC 2308 §5 suggests capping negative caching
	maxCNAMEs        = 8               // CNAME hops followed before giving up
	ednsSize         = 1232            // EDNS(0) UDP payload size (DNS flag day 2020)
	resolvConfPath   = "/etc/resolv.conf"
	resolvConfTTL    = 5 * time.Second // how long the parsed resolv.conf is reused
)

// ErrNoService is returned by LookupTargets when the domain's SRV records say
// that the service is decidedly not available: a lone target of "." (RFC 2782;
// RFC 6120 §3.2.1). The caller must not connect, not even to the fallback
// address, and should bounce stanzas with remote-server-not-found.
//
// Under XEP-0368, a "." in only one of _xmpps-server and _xmpp-server turns off
// only that service; ErrNoService is returned when neither service offers a
// target and at least one of them said ".".
var ErrNoService = errors.New(`s2s: service not available at domain (SRV target ".")`)

// ErrNotFound is wrapped by the DNSError LookupAddrs returns when a host has
// neither A nor AAAA records, or does not exist.
var ErrNotFound = errors.New("s2s: no such host")

// A DNSError reports a DNS query that got no usable answer.
type DNSError struct {
	Name   string // the name queried, fully qualified, e.g. "_xmpp-server._tcp.example.org."
	Type   string // the query type: "SRV", "A", "AAAA"
	Server string // the nameserver last asked, if any
	Rcode  int    // the response code when one came back (dns.RcodeServerFailure...), else -1
	Err    error  // the cause: a timeout, a network error, ErrNotFound...
}

func (e *DNSError) Error() string {
	var b strings.Builder
	b.WriteString("s2s: lookup ")
	b.WriteString(e.Type)
	b.WriteByte(' ')
	b.WriteString(e.Name)
	if e.Server != "" {
		b.WriteString(" on ")
		b.WriteString(e.Server)
	}
	b.WriteString(": ")
	switch {
	case e.Err != nil:
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "s2s: "))
	case e.Rcode >= 0:
		b.WriteString(rcodeString(e.Rcode))
	default:
		b.WriteString("failed")
	}
	return b.String()
}

func (e *DNSError) Unwrap() error { return e.Err }

// Timeout reports whether the query timed out, either on the per-query
// Resolver.Timeout or on the caller's context deadline.
func (e *DNSError) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// A Target is one place to connect to for a remote domain.
type Target struct {
	Host      string // target host in A-label form, no trailing dot; "." only in an SRVReport
	Port      uint16
	DirectTLS bool // XEP-0368: start TLS at once; never STARTTLS on it
	Priority  uint16
	Weight    uint16

	// Service is ServiceDirectTLS or ServiceStartTLS for targets taken from
	// SRV records, and "" for the RFC 6120 §3.2.2 fallback to the domain
	// itself on DefaultPort.
	Service string

	// Secure says that the DNS told this target with DNSSEC (only with
	// Resolver.TrustAD): its SRV record, or for the fallback the denial of
	// both SRV records, was validated. DANE needs it (RFC 7673 §3.1).
	Secure bool
}

// String returns "host:port", with brackets around an IPv6 literal host.
func (t Target) String() string {
	return net.JoinHostPort(t.Host, fmt.Sprint(t.Port))
}

// A Resolver finds the targets and addresses to connect to for a remote
// domain. It asks its nameservers directly (it does not use the system's
// stub resolver) and caches their answers for as long as their TTLs allow.
//
// The zero value is ready to use and reads /etc/resolv.conf. A Resolver is
// safe for concurrent use; its fields must not be changed, and it must not be
// copied, after its first use.
type Resolver struct {
	// Servers are the nameservers to ask, as "ip:port", in order: a server
	// that times out or fails (SERVFAIL, REFUSED...) is followed by the next.
	// If empty, the nameservers of /etc/resolv.conf are used.
	Servers []string

	// Timeout bounds each query to one server. Zero means 5s.
	Timeout time.Duration

	// CacheSize bounds the number of answers cached. Zero means 4096;
	// negative disables caching.
	CacheSize int

	// Rand chooses among SRV records of equal priority (RFC 2782). Nil means
	// the math/rand/v2 top-level generator. Tests set a seeded source.
	Rand rand.Source

	// Time returns the current time, for TTLs. Nil means time.Now.
	Time func() time.Time

	// Logger receives debug logs of queries and warnings of partial
	// failures. Nil means slog.Default().
	Logger *slog.Logger

	// TrustAD says that the Servers validate DNSSEC (a validating resolver
	// on this host, such as unbound, reached over a path nobody else can
	// write to) and that the AD bit of their answers can be trusted. Queries
	// then ask for it (RFC 6840 §5.7), and records in answers that carry it
	// are secure: targets (Target.Secure), addresses and TLSA records for
	// DANE. Without it nothing is secure and DANE is never used.
	TrustAD bool

	mu     sync.Mutex
	cache  map[dnsCacheKey]*list.Element
	lru    list.List // of *dnsCacheEntry, most recently used first
	conf   []string  // servers from resolv.conf
	confAt time.Time
	randMu sync.Mutex
}

type dnsCacheKey struct {
	name  string // lower case, fully qualified
	qtype uint16
}

type dnsCacheEntry struct {
	key     dnsCacheKey
	ans     *dnsAnswer
	expires time.Time
}

// A dnsAnswer is what a nameserver said about one name and type.
type dnsAnswer struct {
	rcode  int      // dns.RcodeSuccess or dns.RcodeNameError
	rrs    []dns.RR // answer section, CNAMEs included
	ttl    time.Duration
	server string
	secure bool // validated: TrustAD and the AD bit set
}

// LookupTargets returns where to connect for domain, in the order to try
// them (RFC 6120 §3.2.1):
//
//   - the SRV records of _xmpps-server._tcp.domain (XEP-0368, DirectTLS set)
//     and _xmpp-server._tcp.domain are merged and ordered as one set: by
//     priority, then within a priority by the weighted random selection of
//     RFC 2782;
//   - a lone "." target turns that service off (RFC 2782); when no service is
//     left on, ErrNoService is returned and the caller must not fall back;
//   - with no SRV records at all, the domain itself on DefaultPort, without
//     direct TLS (RFC 6120 §3.2.2).
//
// A domain given as an IP literal ("192.0.2.1", "[2001:db8::1]") is not looked
// up. Internationalized domains are converted to A-labels (RFC 5890) first.
//
// If one of the two SRV queries fails but the other gives targets, those are
// returned and the failure is logged. Otherwise a failed query (SERVFAIL,
// timeout) is returned as a *DNSError naming it, since falling back could
// ignore a "." the failed query would have carried.
//
// Target hosts are not resolved; see LookupAddrs.
func (r *Resolver) LookupTargets(ctx context.Context, domain string) ([]Target, error) {
	name, ip, err := canonicalDomain(domain)
	if err != nil {
		return nil, err
	}
	if ip.IsValid() {
		return []Target{{Host: ip.String(), Port: DefaultPort}}, nil
	}
	srvs := r.lookupSRVs(ctx, name, true)
	return r.combine(name, srvs)
}

// LookupAddrs returns the IPv6 and IPv4 addresses of host, from its AAAA and
// A records, AAAA first. CNAME chains are followed up to 8 hops; a loop is an
// error. An IP literal host is returned as is. A host without addresses gives
// a *DNSError wrapping ErrNotFound.
func (r *Resolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	name, ip, err := canonicalDomain(host)
	if err != nil {
		return nil, err
	}
	if ip.IsValid() {
		return []netip.Addr{ip}, nil
	}
	addrs, _, err := r.lookupAddrs(ctx, name, true)
	return addrs, err
}

// lookupAddrsSecure is LookupAddrs that also reports whether the addresses
// were validated (an IP literal is).
func (r *Resolver) lookupAddrsSecure(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	name, ip, err := canonicalDomain(host)
	if err != nil {
		return nil, false, err
	}
	if ip.IsValid() {
		return []netip.Addr{ip}, true, nil
	}
	return r.lookupAddrs(ctx, name, true)
}

// tlsaFor returns the validated TLSA records of target t, whose addresses
// were validated (addrSecure) or not: none unless both its SRV record and
// its addresses were (RFC 7673 §3: only then are TLSA records worth
// asking for).
func (r *Resolver) tlsaFor(ctx context.Context, t Target, addrSecure bool) ([]*dns.TLSA, error) {
	if !r.TrustAD || !t.Secure || !addrSecure {
		return nil, nil
	}
	return r.LookupTLSA(ctx, t.Host, t.Port)
}

// LookupTLSA returns the TLSA records (RFC 6698) for TCP port on host,
// "_port._tcp.host", if the answer was validated (TrustAD): records that
// are not secure are never used (RFC 6698 §4.1), so an insecure answer
// gives none. Only records of the usages, selectors and matching types
// that RFC 7218 names (0-3, 0-1, 0-2) are returned.
func (r *Resolver) LookupTLSA(ctx context.Context, host string, port uint16) ([]*dns.TLSA, error) {
	name, ip, err := canonicalDomain(host)
	if err != nil || ip.IsValid() || !r.TrustAD {
		return nil, err
	}
	rrs, secure, err := r.lookup(ctx, fmt.Sprintf("_%d._tcp.%s", port, name), dns.TypeTLSA, true)
	if err != nil || !secure {
		return nil, err
	}
	var out []*dns.TLSA
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TLSA); ok && t.Usage <= 3 && t.Selector <= 1 && t.MatchingType <= 2 {
			out = append(out, t)
		}
	}
	return out, nil
}

// A Report is what Diagnose found out about a domain, for a diagnostic
// command to print.
type Report struct {
	Domain string // the domain queried, A-labels, fully qualified

	// SRV holds one entry per service asked, ServiceDirectTLS then
	// ServiceStartTLS; nil for an IP literal domain.
	SRV []SRVReport

	// Targets are what LookupTargets would return, in one possible order;
	// Err is its error, such as ErrNoService or a *DNSError.
	Targets []Target
	Err     error

	// Addrs holds one entry per distinct target host, in Targets order.
	Addrs []AddrReport

	// TLSA holds, with TrustAD, the TLSA lookup of each target whose SRV
	// record and addresses were validated, in Targets order (RFC 7673).
	TLSA []TLSAReport
}

// A TLSAReport is the TLSA lookup for one target.
type TLSAReport struct {
	Host    string
	Port    uint16
	Records []*dns.TLSA // validated, usable records
	Err     error
}

// An SRVReport is the answer to one SRV query.
type SRVReport struct {
	Name      string   // e.g. "_xmpps-server._tcp.example.org."
	Service   string   // ServiceDirectTLS or ServiceStartTLS
	Records   []Target // the records as received, "." targets included
	NoService bool     // the answer was a lone "." target
	Err       error    // a failed query; nil for NXDOMAIN or no data
	Secure    bool     // the answer was validated (TrustAD)
}

// An AddrReport is the outcome of resolving one target host.
type AddrReport struct {
	Host   string
	Addrs  []netip.Addr
	Err    error
	Secure bool // both answers were validated (TrustAD)
}

// Diagnose looks domain up as LookupTargets does, then resolves every target
// host, and reports each step. It asks the nameservers afresh: the cache is
// neither read nor filled. Lookup failures are recorded in the Report; the
// error is only for a domain that cannot be looked up at all or a context
// that ends.
func (r *Resolver) Diagnose(ctx context.Context, domain string) (*Report, error) {
	name, ip, err := canonicalDomain(domain)
	if err != nil {
		return nil, err
	}
	rep := &Report{Domain: name}
	if ip.IsValid() {
		rep.Domain = ip.String()
		rep.Targets = []Target{{Host: ip.String(), Port: DefaultPort}}
		rep.Addrs = []AddrReport{{Host: ip.String(), Addrs: []netip.Addr{ip}}}
		return rep, nil
	}
	srvs := r.lookupSRVs(ctx, name, false)
	for _, s := range srvs {
		sr := SRVReport{Name: s.name, Service: s.service, Records: s.records, NoService: s.noService, Err: s.err, Secure: s.secure}
		rep.SRV = append(rep.SRV, sr)
	}
	rep.Targets, rep.Err = r.combine(name, srvs)
	seen := make(map[string]bool)
	secureHost := make(map[string]bool)
	for _, t := range rep.Targets {
		if seen[t.Host] {
			continue
		}
		seen[t.Host] = true
		ar := AddrReport{Host: t.Host}
		ar.Addrs, ar.Secure, ar.Err = r.lookupAddrs(ctx, dns.Fqdn(t.Host), false)
		secureHost[t.Host] = ar.Secure
		rep.Addrs = append(rep.Addrs, ar)
	}
	seenTLSA := make(map[Target]bool)
	for _, t := range rep.Targets {
		key := Target{Host: t.Host, Port: t.Port}
		if !r.TrustAD || !t.Secure || !secureHost[t.Host] || seenTLSA[key] {
			continue
		}
		seenTLSA[key] = true
		tr := TLSAReport{Host: t.Host, Port: t.Port}
		tr.Records, tr.Err = r.tlsaFor(ctx, t, true)
		rep.TLSA = append(rep.TLSA, tr)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// canonicalDomain returns domain as a lower-case, fully qualified name in
// A-labels, or the IP address it is a literal of.
func canonicalDomain(domain string) (string, netip.Addr, error) {
	d := strings.TrimSuffix(domain, ".")
	if d == "" {
		return "", netip.Addr{}, fmt.Errorf("s2s: empty domain %q", domain)
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(d, "["), "]")); err == nil {
		return "", ip.Unmap(), nil
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("s2s: domain %q: %w", domain, err)
	}
	name := dns.Fqdn(strings.ToLower(a))
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		return "", netip.Addr{}, fmt.Errorf("s2s: invalid domain %q", domain)
	}
	return name, netip.Addr{}, nil
}

// srvAnswer is the outcome of one SRV query.
type srvAnswer struct {
	name      string
	service   string
	records   []Target // as received
	noService bool
	err       error
	secure    bool
}

// lookupSRVs asks for the XEP-0368 and RFC 6120 SRV records of name
// concurrently.
func (r *Resolver) lookupSRVs(ctx context.Context, name string, useCache bool) []srvAnswer {
	services := [...]string{ServiceDirectTLS, ServiceStartTLS}
	res := make([]srvAnswer, len(services))
	var wg sync.WaitGroup
	for i, svc := range services {
		wg.Go(func() {
			s := srvAnswer{name: "_" + svc + "._tcp." + name, service: svc}
			rrs, secure, err := r.lookup(ctx, s.name, dns.TypeSRV, useCache)
			s.err, s.secure = err, secure
			for _, rr := range rrs {
				srv, ok := rr.(*dns.SRV)
				if !ok || strings.ContainsRune(srv.Target, '\\') {
					// A target with escaped bytes is no host name.
					continue
				}
				host := "."
				if srv.Target != "." {
					host = strings.TrimSuffix(strings.ToLower(srv.Target), ".")
				}
				s.records = append(s.records, Target{
					Host:      host,
					Port:      srv.Port,
					DirectTLS: svc == ServiceDirectTLS,
					Priority:  srv.Priority,
					Weight:    srv.Weight,
					Service:   svc,
					Secure:    secure,
				})
			}
			// RFC 2782: "A Target of "." means that the service is decidedly
			// not available at this domain."
			s.noService = len(s.records) == 1 && s.records[0].Host == "."
			res[i] = s
		})
	}
	wg.Wait()
	return res
}

// combine applies RFC 6120 §3.2 and XEP-0368 to the SRV answers for name.
func (r *Resolver) combine(name string, srvs []srvAnswer) ([]Target, error) {
	var targets []Target
	var failed []srvAnswer
	noService := false
	for _, s := range srvs {
		if s.err != nil {
			failed = append(failed, s)
			continue
		}
		if s.noService {
			noService = true
			continue
		}
		for _, t := range s.records {
			// A "." among other records is meaningless; skip it.
			if t.Host != "." && t.Host != "" {
				targets = append(targets, t)
			}
		}
	}
	switch {
	case len(targets) > 0:
		for _, s := range failed {
			r.logger().Warn("SRV lookup failed, using the other service's records",
				"remote", strings.TrimSuffix(name, "."), "name", s.name, "err", s.err)
		}
		r.order(targets)
		return targets, nil
	case len(failed) > 0:
		return nil, failed[0].err
	case noService:
		return nil, ErrNoService
	}
	// RFC 6120 §3.2.2: no SRV records, fall back to the domain itself,
	// secure if both denials were.
	secure := true
	for _, s := range srvs {
		secure = secure && s.secure
	}
	return []Target{{Host: strings.TrimSuffix(name, "."), Port: DefaultPort, Secure: secure}}, nil
}

// order sorts targets by priority and shuffles each priority's targets by
// weight as RFC 2782 describes: "To select a target to be contacted next,
// arrange all SRV RRs (that have not been ordered yet) in any order, except
// that all those with weight 0 are placed at the beginning of the list. Compute
// the sum of the weights of those RRs, and with each RR associate the running
// sum in the selected order. Then choose a uniform random number between 0 and
// the sum computed (inclusive), and select the RR whose running sum value is
// the first in the selected order which is greater than or equal to the random
// number selected."
func (r *Resolver) order(ts []Target) {
	slices.SortStableFunc(ts, func(a, b Target) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		// Weight 0 first; otherwise keep the order received.
		return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1))
	})
	for i := 0; i < len(ts); {
		j := i + 1
		for j < len(ts) && ts[j].Priority == ts[i].Priority {
			j++
		}
		r.shuffleByWeight(ts[i:j])
		i = j
	}
}

func (r *Resolver) shuffleByWeight(g []Target) {
	for k := 0; k < len(g)-1; k++ {
		var sum uint64
		for _, t := range g[k:] {
			sum += uint64(t.Weight)
		}
		n := r.randN(sum + 1)
		var run uint64
		for m := k; m < len(g); m++ {
			run += uint64(g[m].Weight)
			if run >= n {
				// Move g[m] to k, keeping the others in order so that the
				// weight 0 ones stay at the front.
				t := g[m]
				copy(g[k+1:m+1], g[k:m])
				g[k] = t
				break
			}
		}
	}
}

// randN returns a uniform random number in [0, n).
func (r *Resolver) randN(n uint64) uint64 {
	if r.Rand == nil {
		return rand.Uint64N(n)
	}
	r.randMu.Lock()
	defer r.randMu.Unlock()
	return rand.New(r.Rand).Uint64N(n)
}

// lookupAddrs asks for the AAAA and A records of name concurrently, and
// reports whether both answers were validated.
func (r *Resolver) lookupAddrs(ctx context.Context, name string, useCache bool) ([]netip.Addr, bool, error) {
	qtypes := [...]uint16{dns.TypeAAAA, dns.TypeA}
	var (
		rrs    [len(qtypes)][]dns.RR
		secure [len(qtypes)]bool
		errs   [len(qtypes)]error
		wg     sync.WaitGroup
	)
	for i, qt := range qtypes {
		wg.Go(func() {
			rrs[i], secure[i], errs[i] = r.lookup(ctx, name, qt, useCache)
		})
	}
	wg.Wait()
	allSecure := secure[0] && secure[1]
	var addrs []netip.Addr
	for _, set := range rrs {
		for _, rr := range set {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				a = a.Unmap()
				if !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
		}
	}
	err := errors.Join(errs[:]...)
	if len(addrs) > 0 {
		if err != nil {
			r.logger().Warn("address lookup partly failed", "host", strings.TrimSuffix(name, "."), "err", err)
		}
		return addrs, allSecure && err == nil, nil
	}
	if err != nil {
		// Report the first failure, which names its query.
		for _, e := range errs {
			if e != nil {
				return nil, false, e
			}
		}
	}
	return nil, false, &DNSError{Name: name, Type: "A/AAAA", Rcode: -1, Err: ErrNotFound}
}

// lookup returns the records of type qtype at name, following CNAMEs, and
// whether every answer on the way was validated. An empty result with a nil
// error means NXDOMAIN or no data.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16, useCache bool) ([]dns.RR, bool, error) {
	seen := map[string]bool{name: true}
	qname := name
	secure := true
	for {
		ans, err := r.query(ctx, qname, qtype, useCache)
		if err != nil {
			return nil, false, err
		}
		secure = secure && ans.secure
		rrs, last, err := followChain(ans.rrs, qname, qtype, seen)
		if err != nil {
			return nil, false, &DNSError{Name: name, Type: dns.TypeToString[qtype], Server: ans.server, Rcode: -1, Err: err}
		}
		if len(rrs) > 0 || last == qname || ans.rcode == dns.RcodeNameError {
			return rrs, secure, nil
		}
		// The chain ends at a name this answer has no records for: ask for
		// it, as a recursive resolver's answer would have included them.
		qname = last
	}
}

// followChain walks the CNAME chain in rrs from name and returns the records
// of type qtype at its end, and the name it ended at. seen holds the names
// already visited, across queries.
func followChain(rrs []dns.RR, name string, qtype uint16, seen map[string]bool) ([]dns.RR, string, error) {
	for {
		var out []dns.RR
		var cname string
		for _, rr := range rrs {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == qtype {
				out = append(out, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				cname = strings.ToLower(dns.Fqdn(c.Target))
			}
		}
		if len(out) > 0 || cname == "" {
			return out, name, nil
		}
		if seen[cname] {
			return nil, name, fmt.Errorf("CNAME loop at %s", cname)
		}
		if len(seen) > maxCNAMEs {
			return nil, name, fmt.Errorf("more than %d CNAMEs", maxCNAMEs)
		}
		seen[cname] = true
		name = cname
	}
}

// query returns the answer for one name and type, from the cache or from
// the nameservers.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16, useCache bool) (*dnsAnswer, error) {
	key := dnsCacheKey{name, qtype}
	if useCache {
		if ans := r.cacheGet(key); ans != nil {
			return ans, nil
		}
	}
	ans, err := r.exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	if useCache {
		r.cachePut(key, ans)
	}
	return ans, nil
}

// exchange asks each nameserver in turn until one answers NOERROR or
// NXDOMAIN.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dnsAnswer, error) {
	servers, err := r.servers()
	if err != nil {
		return nil, err
	}
	typ := dns.TypeToString[qtype]
	dnsErr := &DNSError{Name: name, Type: typ, Rcode: -1}
	for _, server := range servers {
		if err := ctx.Err(); err != nil {
			dnsErr.Err = err
			return nil, dnsErr
		}
		dnsErr.Server = server
		start := time.Now()
		m, err := r.exchangeOne(ctx, server, name, qtype)
		logger := r.logger()
		if err != nil {
			logger.Debug("dns query failed", "name", name, "type", typ, "server", server, "err", err)
			dnsErr.Rcode, dnsErr.Err = -1, err
			continue
		}
		logger.Debug("dns query", "name", name, "type", typ, "server", server,
			"rcode", rcodeString(m.Rcode), "answers", len(m.Answer), "rtt", time.Since(start))
		if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
			dnsErr.Rcode, dnsErr.Err = m.Rcode, nil
			continue
		}
		a := newAnswer(m, server)
		a.secure = r.TrustAD && m.AuthenticatedData
		return a, nil
	}
	return nil, dnsErr
}

// exchangeOne sends one query to server over UDP, and again over TCP if the
// answer is truncated.
func (r *Resolver) exchangeOne(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(ednsSize, r.TrustAD)
	q.AuthenticatedData = r.TrustAD
	m, err := r.exchangeNet(ctx, "udp", server, q)
	if err == nil && m.Truncated {
		q.Id = dns.Id()
		m, err = r.exchangeNet(ctx, "tcp", server, q)
	}
	if err != nil {
		return nil, err
	}
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, name) ||
		m.Question[0].Qtype != qtype || m.Question[0].Qclass != dns.ClassINET {
		return nil, errors.New("answer does not match the question")
	}
	return m, nil
}

// aLongTimeAgo is a deadline in the past, which unblocks I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

func (r *Resolver) exchangeNet(ctx context.Context, network, server string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	c := &dns.Client{Net: network, Timeout: r.timeout(), UDPSize: ednsSize}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// ExchangeWithConnContext obeys the deadline of ctx but not its
	// cancellation.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	m, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		ctxErr := ctx.Err()
		var ne net.Error
		if deadline, ok := ctx.Deadline(); ctxErr == nil && ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(deadline) {
			// The read deadline, which is ctx's, may pass before ctx's
			// timer fires.
			ctxErr = context.DeadlineExceeded
		}
		if ctxErr != nil {
			return nil, fmt.Errorf("%s: %w", network, ctxErr)
		}
		return nil, fmt.Errorf("%s: %w", network, err)
	}
	return m, nil
}

// newAnswer keeps what the cache needs of m and works out its TTL: the
// smallest in the answer section, or for a negative answer the SOA's
// (RFC 2308 §5).
func newAnswer(m *dns.Msg, server string) *dnsAnswer {
	a := &dnsAnswer{rcode: m.Rcode, rrs: m.Answer, server: server}
	ttl := uint32(0)
	found := false
	for _, rr := range m.Answer {
		if !found || rr.Header().Ttl < ttl {
			ttl, found = rr.Header().Ttl, true
		}
	}
	limit := maxCacheTTL
	if !found || m.Rcode == dns.RcodeNameError {
		// Negative answer: NXDOMAIN, no data, or a CNAME chain to nothing.
		limit = maxNegativeTTL
		neg, ok := uint32(0), false
		for _, rr := range m.Ns {
			if soa, isSOA := rr.(*dns.SOA); isSOA {
				neg, ok = min(soa.Hdr.Ttl, soa.Minttl), true
				break
			}
		}
		if !ok {
			neg = 0 // no SOA: do not cache
		}
		if !found || neg < ttl {
			ttl = neg
		}
	}
	a.ttl = min(time.Duration(ttl)*time.Second, limit)
	return a
}

func (r *Resolver) cacheGet(key dnsCacheKey) *dnsAnswer {
	if r.CacheSize < 0 {
		return nil
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.cache[key]
	if !ok {
		return nil
	}
	e := el.Value.(*dnsCacheEntry)
	if !now.Before(e.expires) {
		r.lru.Remove(el)
		delete(r.cache, key)
		return nil
	}
	r.lru.MoveToFront(el)
	return e.ans
}

func (r *Resolver) cachePut(key dnsCacheKey, ans *dnsAnswer) {
	size := r.CacheSize
	if size < 0 || ans.ttl <= 0 {
		return
	}
	if size == 0 {
		size = resolveCacheSize
	}
	expires := r.now().Add(ans.ttl)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = make(map[dnsCacheKey]*list.Element)
	}
	if el, ok := r.cache[key]; ok {
		e := el.Value.(*dnsCacheEntry)
		e.ans, e.expires = ans, expires
		r.lru.MoveToFront(el)
		return
	}
	r.cache[key] = r.lru.PushFront(&dnsCacheEntry{key: key, ans: ans, expires: expires})
	for r.lru.Len() > size {
		el := r.lru.Back()
		r.lru.Remove(el)
		delete(r.cache, el.Value.(*dnsCacheEntry).key)
	}
}

// servers returns the nameservers to ask.
func (r *Resolver) servers() ([]string, error) {
	if len(r.Servers) > 0 {
		return r.Servers, nil
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conf != nil && now.Sub(r.confAt) < resolvConfTTL && !now.Before(r.confAt) {
		return r.conf, nil
	}
	cc, err := dns.ClientConfigFromFile(resolvConfPath)
	if err != nil {
		return nil, fmt.Errorf("s2s: reading nameservers: %w", err)
	}
	var servers []string
	for _, s := range cc.Servers {
		servers = append(servers, net.JoinHostPort(s, cc.Port))
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("s2s: no nameservers in %s", resolvConfPath)
	}
	r.conf, r.confAt = servers, now
	return servers, nil
}

func (r *Resolver) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return resolveTimeout
}

func (r *Resolver) now() time.Time {
	if r.Time != nil {
		return r.Time()
	}
	return time.Now()
}

func (r *Resolver) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

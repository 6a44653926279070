package s2stest

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// DefaultTTL is the TTL, in seconds, of records added without one.
const DefaultTTL = 1

// A Query is one question the DNS server received.
type Query struct {
	Name string // as asked, lower case, fully qualified
	Type string // "SRV", "A", "AAAA"...
	Net  string // "udp" or "tcp"
}

func (q Query) String() string { return q.Name + " " + q.Type }

// DNS is an authoritative nameserver for tests, listening on UDP and TCP on
// the same 127.0.0.1 port. It answers from the records added to it:
//
//   - records of the type asked at the name asked, or the CNAME at that name
//     (by default it does not chase CNAMEs, as a server authoritative for the
//     name only would not, so a resolver must ask again for the target; see
//     ChaseCNAMEs);
//   - NOERROR with no data when the name has records of other types only,
//     or is an empty non-terminal (_tcp.example.org when
//     _xmpp-server._tcp.example.org exists);
//   - NXDOMAIN otherwise.
//
// Names given to its methods may be in U-labels ("bücher.example"); they are
// stored in A-labels, as resolvers ask for them.
//
// Negative answers carry an SOA whose TTL and minimum are 0 unless changed
// with SetNegativeTTL. Over UDP, answers larger than the client's EDNS(0)
// size (512 bytes without EDNS) are truncated.
//
// Its methods are safe for concurrent use.
type DNS struct {
	t    testing.TB
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu       sync.Mutex
	records  map[string][]dns.RR // by lower-case owner name
	stall    map[string]bool
	rcode    map[string]int
	truncate map[string]bool
	negTTL   uint32
	chase    bool
	signed   bool
	unsigned map[string]bool
	queries  []Query
}

// NewDNS starts a DNS server on 127.0.0.1 and stops it when the test ends.
func NewDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{t: t}
	d.reset()
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	// Ask for any free UDP port, then for TCP on the same one, which may be
	// taken: try a few times.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("s2stest: dns: %v", err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("s2stest: dns: no port free for both UDP and TCP: %v", err)
	}
	d.addr = pc.LocalAddr().String()

	h := dns.HandlerFunc(d.serveDNS)
	var started sync.WaitGroup
	started.Add(2)
	d.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: started.Done}
	d.tcp = &dns.Server{Listener: l, Handler: h, NotifyStartedFunc: started.Done}
	errc := make(chan error, 2)
	for _, s := range []*dns.Server{d.udp, d.tcp} {
		go func() { errc <- s.ActivateAndServe() }()
	}
	ready := make(chan struct{})
	go func() { started.Wait(); close(ready) }()
	select {
	case <-ready:
	case err := <-errc:
		pc.Close()
		l.Close()
		t.Fatalf("s2stest: dns: %v", err)
	}
	t.Cleanup(func() {
		d.udp.Shutdown()
		d.tcp.Shutdown()
	})
	return d
}

// Addr returns the server's address, "127.0.0.1:port", for
// s2s.Resolver.Servers.
func (d *DNS) Addr() string { return d.addr }

// AddRR adds a record in zone file syntax, such as
// "_xmpp-server._tcp.example.org. 60 IN SRV 5 0 5269 xmpp.example.org.".
// Names without a trailing dot are taken as fully qualified. A record
// without a TTL gets DefaultTTL. A record that does not parse fails the test.
func (d *DNS) AddRR(s string) {
	d.t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(fmt.Sprintf("$TTL %d\n%s\n", DefaultTTL, s)), ".", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		d.t.Fatalf("s2stest: dns: AddRR(%q): %v", s, err)
	}
	if len(rrs) == 0 {
		d.t.Fatalf("s2stest: dns: AddRR(%q): no record", s)
	}
	d.add(rrs...)
}

// AddSRV adds an SRV record for service at domain. Service is a name such
// as "xmpp-server", queried as "_xmpp-server._tcp.domain.", or a full prefix
// such as "_xmpps-server._tcp". A target of "." says the service is not
// available (RFC 2782).
func (d *DNS) AddSRV(service, domain, target string, port, priority, weight uint16) {
	d.t.Helper()
	d.add(&dns.SRV{
		Hdr:      hdr(srvName(service, domain), dns.TypeSRV),
		Priority: priority,
		Weight:   weight,
		Port:     port,
		Target:   fqdn(target),
	})
}

// AddA adds an A record; ip must be an IPv4 address.
func (d *DNS) AddA(host, ip string) {
	d.t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		d.t.Fatalf("s2stest: dns: AddA(%q, %q): not an IPv4 address", host, ip)
	}
	d.add(&dns.A{Hdr: hdr(host, dns.TypeA), A: a.AsSlice()})
}

// AddAAAA adds an AAAA record; ip must be an IPv6 address.
func (d *DNS) AddAAAA(host, ip string) {
	d.t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		d.t.Fatalf("s2stest: dns: AddAAAA(%q, %q): not an IPv6 address", host, ip)
	}
	d.add(&dns.AAAA{Hdr: hdr(host, dns.TypeAAAA), AAAA: a.AsSlice()})
}

// AddCNAME makes host an alias of target.
func (d *DNS) AddCNAME(host, target string) {
	d.t.Helper()
	d.add(&dns.CNAME{Hdr: hdr(host, dns.TypeCNAME), Target: fqdn(target)})
}

// AddServer makes domain's XMPP server reachable at addr: it adds
// "_xmpp-server._tcp.domain. SRV 0 0 port domain." and an A or AAAA record
// for domain.
func (d *DNS) AddServer(domain string, addr netip.AddrPort) {
	d.t.Helper()
	d.AddSRV("xmpp-server", domain, domain, addr.Port(), 0, 0)
	ip := addr.Addr().Unmap()
	if ip.Is4() {
		d.AddA(domain, ip.String())
	} else {
		d.AddAAAA(domain, ip.String())
	}
}

// Remove removes the records of type rrtype (dns.TypeA...) at name;
// dns.TypeANY removes all of them.
func (d *DNS) Remove(name string, rrtype uint16) {
	name = fqdn(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records[name] = slices.DeleteFunc(d.records[name], func(rr dns.RR) bool {
		return rrtype == dns.TypeANY || rr.Header().Rrtype == rrtype
	})
	if len(d.records[name]) == 0 {
		delete(d.records, name)
	}
}

// RemoveSRV removes the SRV records for service at domain, named as in
// AddSRV.
func (d *DNS) RemoveSRV(service, domain string) {
	d.Remove(srvName(service, domain), dns.TypeSRV)
}

// Stall makes the server drop queries for name, so that they time out.
func (d *DNS) Stall(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stall[fqdn(name)] = true
}

// Fail makes the server answer queries for name with rcode, such as
// dns.RcodeServerFailure or dns.RcodeRefused.
func (d *DNS) Fail(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcode[fqdn(name)] = rcode
}

// ServFail makes the server answer SERVFAIL to queries for name.
func (d *DNS) ServFail(name string) { d.Fail(name, dns.RcodeServerFailure) }

// Truncate makes the server answer queries for name over UDP with an empty,
// truncated message, so that the client must ask again over TCP.
func (d *DNS) Truncate(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.truncate[fqdn(name)] = true
}

// Heal undoes Stall, Fail, ServFail and Truncate for name.
func (d *DNS) Heal(name string) {
	name = fqdn(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.stall, name)
	delete(d.rcode, name)
	delete(d.truncate, name)
}

// SetNegativeTTL sets the TTL and minimum, in seconds, of the SOA record in
// negative answers, which resolvers cache them for (RFC 2308).
func (d *DNS) SetNegativeTTL(ttl uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.negTTL = ttl
}

// ChaseCNAMEs sets whether answers follow CNAME chains through the server's
// records, as a recursive resolver's answers do: an A query for an alias
// then gets the CNAME records and the A records of the chain's end. A loop
// ends the chain where it closes.
func (d *DNS) ChaseCNAMEs(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.chase = on
}

// Signed sets whether answers carry the AD bit, as a validating resolver's
// answers for a DNSSEC-signed zone do (names passed to Unsigned excepted).
// No signature is made: only a resolver that trusts the server's AD bit
// (s2s.Resolver.TrustAD) sees a difference.
func (d *DNS) Signed(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.signed = on
}

// Unsigned makes answers for name lack the AD bit even when Signed: an
// insecure delegation, say.
func (d *DNS) Unsigned(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unsigned[fqdn(name)] = true
}

// Reset removes all records, hooks and logged queries, sets the negative
// TTL back to 0, stops chasing CNAMEs and signing.
func (d *DNS) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reset()
}

func (d *DNS) reset() {
	d.records = make(map[string][]dns.RR)
	d.stall = make(map[string]bool)
	d.rcode = make(map[string]int)
	d.truncate = make(map[string]bool)
	d.negTTL = 0
	d.chase = false
	d.signed = false
	d.unsigned = make(map[string]bool)
	d.queries = nil
}

// Queries returns the questions received so far, in order, as "name TYPE",
// for example "_xmpp-server._tcp.example.org. SRV". A question asked over UDP
// and again over TCP appears twice.
func (d *DNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.queries))
	for i, q := range d.queries {
		out[i] = q.String()
	}
	return out
}

// Log returns the questions received so far, in order.
func (d *DNS) Log() []Query {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.queries)
}

// ResetQueries clears the query log.
func (d *DNS) ResetQueries() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queries = nil
}

func (d *DNS) add(rrs ...dns.RR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = fqdn(h.Name)
		d.records[h.Name] = append(d.records[h.Name], rr)
	}
}

func (d *DNS) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)

	d.mu.Lock()
	d.queries = append(d.queries, Query{Name: name, Type: dns.TypeToString[q.Qtype], Net: network})
	stall := d.stall[name]
	rcode, fail := d.rcode[name]
	truncate := d.truncate[name] && network == "udp"
	m.SetReply(req)
	m.Authoritative = true
	m.AuthenticatedData = d.signed && !d.unsigned[name]
	if !stall && !fail && !truncate {
		d.answer(m, name, q.Qtype)
	}
	d.mu.Unlock()

	switch {
	case stall:
		return
	case fail:
		m.Rcode = rcode
	case truncate:
		m.Truncated = true
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if network == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// answer fills m for name and qtype; d.mu is held.
func (d *DNS) answer(m *dns.Msg, name string, qtype uint16) {
	seen := map[string]bool{name: true}
	for {
		var next string
		for _, rr := range d.records[name] {
			t := rr.Header().Rrtype
			if t == qtype || qtype == dns.TypeANY || (t == dns.TypeCNAME && qtype != dns.TypeCNAME) {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
			if c, ok := rr.(*dns.CNAME); ok && t != qtype {
				next = c.Target
			}
		}
		if next == "" || !d.chase {
			if len(m.Answer) > 0 && (!d.chase || next != "" || hasType(d.records[name], qtype)) {
				return
			}
			break
		}
		if seen[next] || len(seen) > 16 {
			return // a loop or a long chain: answer what there is
		}
		seen[next] = true
		name = next
	}
	_, exists := d.records[name]
	if !exists {
		// An empty non-terminal exists too (RFC 8020).
		for owner := range d.records {
			if strings.HasSuffix(owner, "."+name) || name == "." {
				exists = true
				break
			}
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	m.Ns = []dns.RR{&dns.SOA{
		Hdr:     dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: d.negTTL},
		Ns:      "ns.s2stest.",
		Mbox:    "hostmaster.s2stest.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  d.negTTL,
	}}
}

func hasType(rrs []dns.RR, qtype uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype || qtype == dns.TypeANY {
			return true
		}
	}
	return false
}

func hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: rrtype, Class: dns.ClassINET, Ttl: DefaultTTL}
}

func srvName(service, domain string) string {
	if !strings.HasPrefix(service, "_") {
		service = "_" + service + "._tcp"
	}
	return fqdn(service + "." + strings.TrimSuffix(domain, "."))
}

// fqdn returns name lower case, fully qualified and in A-labels.
func fqdn(name string) string {
	name = strings.ToLower(dns.Fqdn(name))
	if a, err := idna.Punycode.ToASCII(name); err == nil {
		name = a
	}
	return name
}

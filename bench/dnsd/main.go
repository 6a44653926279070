// Command dnsd is the benchmark's DNS server: an authoritative server for a
// loopback test zone, listening on UDP and TCP on one 127.0.0.1 port. s2sd
// (s2s.dns) and Prosody (prosody-up.sh --dns) both ask it, so that every
// daemon of the bench finds the others through SRV records, as in
// production.
//
// Usage:
//
//	dnsd -addr 127.0.0.1:PORT [-srv DOMAIN=IP:PORT]... [-zone FILE] [-ttl S]
//
// -srv DOMAIN=IP:PORT serves "_xmpp-server._tcp.DOMAIN. SRV 0 0 PORT DOMAIN."
// and "DOMAIN. A IP". -zone reads more records in zone file syntax (names
// fully qualified); SIGHUP reads it again. Names with records of other
// types only answer NOERROR with no data, unknown names NXDOMAIN; both carry
// an SOA with TTL 0 so that no resolver keeps the negative answer.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/miekg/dns"
)

type zone struct {
	mu    sync.RWMutex
	names map[string][]dns.RR // by lower-case owner name
	fixed []dns.RR            // from -srv
	file  string
	ttl   uint32
}

// load replaces the records with the -srv ones and those of the zone file.
func (z *zone) load() error {
	rrs := append([]dns.RR(nil), z.fixed...)
	if z.file != "" {
		f, err := os.Open(z.file)
		if err != nil {
			return err
		}
		defer f.Close()
		zp := dns.NewZoneParser(f, ".", z.file)
		zp.SetDefaultTTL(z.ttl)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			rrs = append(rrs, rr)
		}
		if err := zp.Err(); err != nil {
			return err
		}
	}
	names := make(map[string][]dns.RR, len(rrs))
	for _, rr := range rrs {
		n := strings.ToLower(rr.Header().Name)
		names[n] = append(names[n], rr)
	}
	z.mu.Lock()
	z.names = names
	z.mu.Unlock()
	return nil
}

func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	z.mu.RLock()
	rrs, ok := z.names[strings.ToLower(q.Name)]
	z.mu.RUnlock()
	for _, rr := range rrs {
		if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
			rr = dns.Copy(rr)
			rr.Header().Name = q.Name
			m.Answer = append(m.Answer, rr)
		}
	}
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{&dns.SOA{
			Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET},
			Ns:  "ns.bench.", Mbox: "hostmaster.bench.", Serial: 1,
			Refresh: 60, Retry: 60, Expire: 60,
		}}
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
			m.SetEdns0(opt.UDPSize(), false)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// srvRecords returns the SRV and address records -srv DOMAIN=IP:PORT asks for.
func srvRecords(s string, ttl uint32) ([]dns.RR, error) {
	d, hp, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("-srv %q: want DOMAIN=IP:PORT", s)
	}
	ap, err := netip.ParseAddrPort(hp)
	if err != nil {
		return nil, fmt.Errorf("-srv %q: %w", s, err)
	}
	d = dns.Fqdn(strings.ToLower(d))
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	rrs := []dns.RR{&dns.SRV{Hdr: hdr("_xmpp-server._tcp."+d, dns.TypeSRV), Port: ap.Port(), Target: d}}
	if ip := ap.Addr().Unmap(); ip.Is4() {
		rrs = append(rrs, &dns.A{Hdr: hdr(d, dns.TypeA), A: ip.AsSlice()})
	} else {
		rrs = append(rrs, &dns.AAAA{Hdr: hdr(d, dns.TypeAAAA), AAAA: ip.AsSlice()})
	}
	return rrs, nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("dnsd: ")
	var srvs list
	addr := flag.String("addr", "127.0.0.1:15353", "`address` to listen on, UDP and TCP")
	file := flag.String("zone", "", "zone `file` with more records, read again on SIGHUP")
	ttl := flag.Uint("ttl", 60, "TTL in `seconds` of records without one")
	flag.Var(&srvs, "srv", "serve an SRV and an A record: `DOMAIN=IP:PORT` (repeatable)")
	flag.Parse()

	z := &zone{file: *file, ttl: uint32(*ttl)}
	for _, s := range srvs {
		rrs, err := srvRecords(s, z.ttl)
		if err != nil {
			log.Fatal(err)
		}
		z.fixed = append(z.fixed, rrs...)
	}
	if err := z.load(); err != nil {
		log.Fatal(err)
	}

	pc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	var started sync.WaitGroup
	started.Add(2)
	servers := []*dns.Server{
		{PacketConn: pc, Handler: z, NotifyStartedFunc: started.Done},
		{Listener: l, Handler: z, NotifyStartedFunc: started.Done},
	}
	for _, s := range servers {
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				log.Fatal(err)
			}
		}()
	}
	started.Wait()
	z.mu.RLock()
	n := len(z.names)
	z.mu.RUnlock()
	log.Printf("listening on %s (udp, tcp), %s names", *addr, strconv.Itoa(n))

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s != syscall.SIGHUP {
			break
		}
		if err := z.load(); err != nil {
			log.Printf("reload failed, keeping the old records: %v", err)
			continue
		}
		log.Printf("reloaded %s", z.file)
	}
	for _, s := range servers {
		s.Shutdown()
	}
}

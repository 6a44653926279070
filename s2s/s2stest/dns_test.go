package s2stest_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/s2sd/s2sd/s2s/s2stest"
)

func ask(t *testing.T, d *s2stest.DNS, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m, err := exchange(d, network, name, qtype, 500*time.Millisecond)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return m
}

func exchange(d *s2stest.DNS, network, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: timeout}
	m, _, err := c.Exchange(q, d.Addr())
	return m, err
}

func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, rr.String())
	}
	return out
}

func TestDNSAnswers(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpp-server", "example.org", "xmpp.example.org", 5269, 10, 20)
	d.AddSRV("_xmpps-server._tcp", "example.org.", ".", 0, 0, 0)
	d.AddA("xmpp.example.org", "192.0.2.1")
	d.AddAAAA("xmpp.example.org", "2001:db8::1")
	d.AddCNAME("alias.example.org", "xmpp.example.org")
	d.AddRR("rr.example.org. 300 IN A 192.0.2.3")
	d.AddRR("default-ttl.example.org. IN A 192.0.2.4")
	d.AddServer("bücher.example", netip.MustParseAddrPort("[2001:db8::2]:5270"))

	for i, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		0: {"_xmpp-server._tcp.example.org.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_xmpp-server._tcp.example.org.\t1\tIN\tSRV\t10 20 5269 xmpp.example.org."}},
		1: {"_XMPPS-server._tcp.Example.ORG.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_xmpps-server._tcp.example.org.\t1\tIN\tSRV\t0 0 0 ."}},
		2: {"xmpp.example.org.", dns.TypeA, dns.RcodeSuccess,
			[]string{"xmpp.example.org.\t1\tIN\tA\t192.0.2.1"}},
		3: {"xmpp.example.org.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"xmpp.example.org.\t1\tIN\tAAAA\t2001:db8::1"}},
		4: {"alias.example.org.", dns.TypeA, dns.RcodeSuccess,
			[]string{"alias.example.org.\t1\tIN\tCNAME\txmpp.example.org."}},
		5: {"rr.example.org.", dns.TypeA, dns.RcodeSuccess,
			[]string{"rr.example.org.\t300\tIN\tA\t192.0.2.3"}},
		6: {"default-ttl.example.org.", dns.TypeA, dns.RcodeSuccess,
			[]string{"default-ttl.example.org.\t1\tIN\tA\t192.0.2.4"}},
		7: {"xmpp.example.org.", dns.TypeMX, dns.RcodeSuccess, nil},
		8: {"_tcp.example.org.", dns.TypeSRV, dns.RcodeSuccess, nil}, // empty non-terminal
		9: {"nowhere.example.org.", dns.TypeA, dns.RcodeNameError, nil},
		10: {"_xmpp-server._tcp.xn--bcher-kva.example.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_xmpp-server._tcp.xn--bcher-kva.example.\t1\tIN\tSRV\t0 0 5270 xn--bcher-kva.example."}},
		11: {"xn--bcher-kva.example.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"xn--bcher-kva.example.\t1\tIN\tAAAA\t2001:db8::2"}},
	} {
		for _, network := range []string{"udp", "tcp"} {
			m := ask(t, d, network, tc.name, tc.qtype)
			if m.Rcode != tc.rcode {
				t.Errorf("%d/%s: rcode %s, want %s", i, network, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if !m.Authoritative {
				t.Errorf("%d/%s: AA not set", i, network)
			}
			if got := answers(m); !slices.Equal(got, tc.want) {
				t.Errorf("%d/%s: answer %q, want %q", i, network, got, tc.want)
			}
			if len(m.Answer) == 0 {
				if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA || m.Ns[0].Header().Ttl != 0 {
					t.Errorf("%d/%s: authority %v, want one SOA of TTL 0", i, network, m.Ns)
				}
			}
		}
	}
}

func TestDNSQueries(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddA("a.example", "192.0.2.1")
	ask(t, d, "udp", "A.example.", dns.TypeA)
	ask(t, d, "tcp", "b.example.", dns.TypeAAAA)
	want := []string{"a.example. A", "b.example. AAAA"}
	if got := d.Queries(); !slices.Equal(got, want) {
		t.Errorf("Queries() = %q, want %q", got, want)
	}
	log := d.Log()
	if len(log) != 2 || log[0].Net != "udp" || log[1].Net != "tcp" {
		t.Errorf("Log() = %+v", log)
	}
	d.ResetQueries()
	if got := d.Queries(); len(got) != 0 {
		t.Errorf("after ResetQueries: %q", got)
	}
}

func TestDNSRemoveReset(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddA("a.example", "192.0.2.1")
	d.AddAAAA("a.example", "2001:db8::1")
	d.AddSRV("xmpp-server", "a.example", "a.example", 5269, 0, 0)
	d.Remove("a.example", dns.TypeA)
	if m := ask(t, d, "udp", "a.example.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("A after Remove: %v", m)
	}
	d.RemoveSRV("xmpp-server", "a.example")
	if m := ask(t, d, "udp", "_xmpp-server._tcp.a.example.", dns.TypeSRV); m.Rcode != dns.RcodeNameError {
		t.Errorf("SRV after RemoveSRV: %v", m)
	}
	d.SetNegativeTTL(30)
	m := ask(t, d, "udp", "nowhere.example.", dns.TypeA)
	if soa, ok := m.Ns[0].(*dns.SOA); !ok || soa.Hdr.Ttl != 30 || soa.Minttl != 30 {
		t.Errorf("SOA after SetNegativeTTL(30): %v", m.Ns)
	}
	d.Reset()
	if m := ask(t, d, "udp", "a.example.", dns.TypeAAAA); m.Rcode != dns.RcodeNameError {
		t.Errorf("AAAA after Reset: %v", m)
	}
	if got, want := d.Queries(), []string{"a.example. AAAA"}; !slices.Equal(got, want) {
		t.Errorf("Queries after Reset = %q, want %q", got, want)
	}
}

func TestDNSHooks(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddA("stall.example", "192.0.2.1")
	d.AddA("fail.example", "192.0.2.1")
	d.AddA("trunc.example", "192.0.2.1")
	d.Stall("stall.example")
	d.ServFail("fail.example")
	d.Fail("refused.example", dns.RcodeRefused)
	d.Truncate("trunc.example")

	if _, err := exchange(d, "udp", "stall.example.", dns.TypeA, 100*time.Millisecond); err == nil {
		t.Error("stalled query answered")
	}
	if m := ask(t, d, "udp", "fail.example.", dns.TypeA); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Errorf("ServFail: %v", m)
	}
	if m := ask(t, d, "tcp", "refused.example.", dns.TypeA); m.Rcode != dns.RcodeRefused {
		t.Errorf("Fail(REFUSED): %v", m)
	}
	if m := ask(t, d, "udp", "trunc.example.", dns.TypeA); !m.Truncated || len(m.Answer) != 0 {
		t.Errorf("Truncate over UDP: %v", m)
	}
	if m := ask(t, d, "tcp", "trunc.example.", dns.TypeA); m.Truncated || len(m.Answer) != 1 {
		t.Errorf("Truncate over TCP: %v", m)
	}

	d.Heal("stall.example")
	d.Heal("fail.example")
	for _, name := range []string{"stall.example.", "fail.example."} {
		if m := ask(t, d, "udp", name, dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("%s after Heal: %v", name, m)
		}
	}
}

// Answers too large for the client's UDP size are truncated, as a real
// server's would be.
func TestDNSTruncatesLargeAnswers(t *testing.T) {
	d := s2stest.NewDNS(t)
	for i := range 40 {
		d.AddSRV("xmpp-server", "big.example", "a-rather-long-target-name-for-padding.big.example", uint16(5000+i), 0, 0)
	}
	m := ask(t, d, "udp", "_xmpp-server._tcp.big.example.", dns.TypeSRV)
	if !m.Truncated || len(m.Answer) >= 40 {
		t.Errorf("UDP: truncated %v, %d answers", m.Truncated, len(m.Answer))
	}
	m = ask(t, d, "tcp", "_xmpp-server._tcp.big.example.", dns.TypeSRV)
	if m.Truncated || len(m.Answer) != 40 {
		t.Errorf("TCP: truncated %v, %d answers", m.Truncated, len(m.Answer))
	}
}

func TestDNSChaseCNAMEs(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.ChaseCNAMEs(true)
	d.AddCNAME("a.example", "b.example")
	d.AddCNAME("b.example", "c.example")
	d.AddA("c.example", "192.0.2.1")
	d.AddCNAME("dangling.example", "nowhere.example")
	d.AddCNAME("loop1.example", "loop2.example")
	d.AddCNAME("loop2.example", "loop1.example")

	for i, tc := range []struct {
		name  string
		rcode int
		want  []string
	}{
		0: {"a.example.", dns.RcodeSuccess, []string{
			"a.example.\t1\tIN\tCNAME\tb.example.",
			"b.example.\t1\tIN\tCNAME\tc.example.",
			"c.example.\t1\tIN\tA\t192.0.2.1",
		}},
		1: {"dangling.example.", dns.RcodeNameError, []string{
			"dangling.example.\t1\tIN\tCNAME\tnowhere.example.",
		}},
		2: {"loop1.example.", dns.RcodeSuccess, []string{
			"loop1.example.\t1\tIN\tCNAME\tloop2.example.",
			"loop2.example.\t1\tIN\tCNAME\tloop1.example.",
		}},
	} {
		m := ask(t, d, "udp", tc.name, dns.TypeA)
		if m.Rcode != tc.rcode {
			t.Errorf("%d: rcode %s, want %s", i, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
		}
		if got := answers(m); !slices.Equal(got, tc.want) {
			t.Errorf("%d: answer %q, want %q", i, got, tc.want)
		}
	}
	// Nodata at the end of a chain: CNAMEs and an SOA.
	m := ask(t, d, "udp", "a.example.", dns.TypeAAAA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 || len(m.Ns) != 1 {
		t.Errorf("AAAA a.example: %v", m)
	}
}

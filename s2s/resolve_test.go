package s2s_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// fakeClock is a settable Resolver.Time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestResolver(d *s2stest.DNS, servers ...string) (*s2s.Resolver, *fakeClock) {
	c := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	if len(servers) == 0 {
		servers = []string{d.Addr()}
	}
	return &s2s.Resolver{
		Servers: servers,
		Timeout: 2 * time.Second,
		Rand:    rand.NewPCG(1, 2),
		Time:    c.Now,
		Logger:  slog.New(slog.DiscardHandler),
	}, c
}

// targetStrings renders targets compactly: "host:port" with "/tls" for direct
// TLS.
func targetStrings(ts []s2s.Target) []string {
	var out []string
	for _, t := range ts {
		s := t.String()
		if t.DirectTLS {
			s += "/tls"
		}
		out = append(out, s)
	}
	return out
}

func mustLookupTargets(t *testing.T, r *s2s.Resolver, domain string) []s2s.Target {
	t.Helper()
	ts, err := r.LookupTargets(t.Context(), domain)
	if err != nil {
		t.Fatalf("LookupTargets(%q): %v", domain, err)
	}
	return ts
}

func TestLookupTargetsOrder(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpp-server", "example.org", "c.example.org", 5269, 20, 0)
	d.AddSRV("xmpp-server", "example.org", "a1.example.org", 5269, 10, 60)
	d.AddSRV("xmpp-server", "example.org", "a2.example.org", 5269, 10, 30)
	d.AddSRV("xmpp-server", "example.org", "a0.example.org", 5269, 10, 0)
	d.AddSRV("xmpp-server", "example.org", "b.example.org", 5270, 15, 5)
	r, _ := newTestResolver(d)

	// With the seeded source, the order is fixed.
	want := []string{
		"a2.example.org:5269", "a1.example.org:5269", "a0.example.org:5269",
		"b.example.org:5270", "c.example.org:5269",
	}
	if got := targetStrings(mustLookupTargets(t, r, "example.org")); !slices.Equal(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
	ts := mustLookupTargets(t, r, "example.org")
	for i, tc := range ts {
		if tc.DirectTLS || tc.Service != s2s.ServiceStartTLS {
			t.Errorf("%d: %+v: want STARTTLS from %s", i, tc, s2s.ServiceStartTLS)
		}
	}
	if ts[0].Priority != 10 || ts[3].Priority != 15 || ts[3].Weight != 5 {
		t.Errorf("priority and weight not kept: %+v", ts)
	}
}

// TestLookupTargetsWeights checks the RFC 2782 selection over many lookups:
// with weights 0, 10 and 90, the random number is uniform over [0, 100] and
// picks the first RR whose running sum (0, 10, 100) reaches it.
func TestLookupTargetsWeights(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpp-server", "example.org", "w10.example.org", 5269, 0, 10)
	d.AddSRV("xmpp-server", "example.org", "w90.example.org", 5269, 0, 90)
	d.AddSRV("xmpp-server", "example.org", "w0.example.org", 5269, 0, 0)
	d.AddSRV("xmpp-server", "example.org", "later.example.org", 5269, 1, 100)
	r, _ := newTestResolver(d)

	const n = 20000
	first := make(map[string]int)
	for range n {
		ts := mustLookupTargets(t, r, "example.org")
		got := targetStrings(ts)
		if len(got) != 4 || got[3] != "later.example.org:5269" {
			t.Fatalf("targets = %q", got)
		}
		sorted := slices.Sorted(slices.Values(got[:3]))
		if want := []string{"w0.example.org:5269", "w10.example.org:5269", "w90.example.org:5269"}; !slices.Equal(sorted, want) {
			t.Fatalf("targets = %q, want each of %q once", got, want)
		}
		first[ts[0].Host]++
	}
	for host, want := range map[string]float64{
		"w0.example.org":  1.0 / 101,
		"w10.example.org": 10.0 / 101,
		"w90.example.org": 90.0 / 101,
	} {
		got := float64(first[host]) / n
		if got < want-0.015 || got > want+0.015 {
			t.Errorf("%s first in %.3f of lookups, want %.3f", host, got, want)
		}
	}
}

func TestLookupTargetsMerged(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpps-server", "example.org", "tls.example.org", 443, 5, 0)
	d.AddSRV("xmpps-server", "example.org", "tls2.example.org", 5270, 20, 0)
	d.AddSRV("xmpp-server", "example.org", "xmpp.example.org", 5269, 10, 0)
	d.AddSRV("xmpp-server", "example.org", "backup.example.org", 5269, 30, 0)
	r, _ := newTestResolver(d)

	ts := mustLookupTargets(t, r, "example.org")
	want := []string{
		"tls.example.org:443/tls", "xmpp.example.org:5269",
		"tls2.example.org:5270/tls", "backup.example.org:5269",
	}
	if got := targetStrings(ts); !slices.Equal(got, want) {
		t.Errorf("targets = %q, want %q", got, want)
	}
	if ts[0].Service != s2s.ServiceDirectTLS || ts[1].Service != s2s.ServiceStartTLS {
		t.Errorf("services = %q, %q", ts[0].Service, ts[1].Service)
	}
	wantQ := []string{"_xmpps-server._tcp.example.org. SRV", "_xmpp-server._tcp.example.org. SRV"}
	if got := slices.Sorted(slices.Values(d.Queries())); !slices.Equal(got, slices.Sorted(slices.Values(wantQ))) {
		t.Errorf("queries = %q, want %q", got, wantQ)
	}
}

func TestLookupTargetsNoService(t *testing.T) {
	for i, tc := range []struct {
		xmpps, xmpp string // SRV targets; "" for none
		want        []string
		err         error
	}{
		0: {xmpps: ".", xmpp: ".", err: s2s.ErrNoService},
		1: {xmpps: "", xmpp: ".", err: s2s.ErrNoService},
		// XEP-0368 §5: a "." for direct TLS forbids the A/AAAA fallback.
		2: {xmpps: ".", xmpp: "", err: s2s.ErrNoService},
		3: {xmpps: ".", xmpp: "xmpp.example.org", want: []string{"xmpp.example.org:5269"}},
		4: {xmpps: "tls.example.org", xmpp: ".", want: []string{"tls.example.org:5223/tls"}},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			d := s2stest.NewDNS(t)
			d.AddA("example.org", "192.0.2.1") // must not be used
			if tc.xmpps != "" {
				d.AddSRV("xmpps-server", "example.org", tc.xmpps, 5223, 0, 0)
			}
			if tc.xmpp != "" {
				d.AddSRV("xmpp-server", "example.org", tc.xmpp, 5269, 0, 0)
			}
			r, _ := newTestResolver(d)
			ts, err := r.LookupTargets(t.Context(), "example.org")
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got := targetStrings(ts); !slices.Equal(got, tc.want) {
				t.Errorf("targets = %q, want %q", got, tc.want)
			}
			for _, q := range d.Queries() {
				if !strings.HasSuffix(q, " SRV") {
					t.Errorf("unexpected query %q", q)
				}
			}
		})
	}
}

func TestLookupTargetsFallback(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddA("nodata.example", "192.0.2.1")
	r, _ := newTestResolver(d)
	for _, domain := range []string{"nxdomain.example", "nodata.example", "NoData.Example."} {
		ts := mustLookupTargets(t, r, domain)
		want := []s2s.Target{{Host: strings.ToLower(strings.TrimSuffix(domain, ".")), Port: 5269}}
		if !slices.Equal(ts, want) {
			t.Errorf("%s: targets = %+v, want %+v", domain, ts, want)
		}
	}
}

func TestLookupTargetsIPLiteral(t *testing.T) {
	d := s2stest.NewDNS(t)
	r, _ := newTestResolver(d)
	for domain, want := range map[string]string{
		"192.0.2.1":       "192.0.2.1:5269",
		"[2001:db8::1]":   "[2001:db8::1]:5269",
		"::ffff:10.0.0.1": "10.0.0.1:5269",
	} {
		if got := targetStrings(mustLookupTargets(t, r, domain)); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: targets = %q, want %q", domain, got, want)
		}
	}
	addrs, err := r.LookupAddrs(t.Context(), "[2001:db8::1]")
	if err != nil || !slices.Equal(addrs, []netip.Addr{netip.MustParseAddr("2001:db8::1")}) {
		t.Errorf("LookupAddrs([2001:db8::1]) = %v, %v", addrs, err)
	}
	if q := d.Queries(); len(q) != 0 {
		t.Errorf("queries for IP literals: %q", q)
	}
}

func TestLookupTargetsIDNA(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpp-server", "xn--bcher-kva.test", "xmpp.xn--bcher-kva.test", 5269, 0, 0)
	r, _ := newTestResolver(d)
	ts := mustLookupTargets(t, r, "Bücher.test")
	if got, want := targetStrings(ts), []string{"xmpp.xn--bcher-kva.test:5269"}; !slices.Equal(got, want) {
		t.Errorf("targets = %q, want %q", got, want)
	}
	if !slices.Contains(d.Queries(), "_xmpp-server._tcp.xn--bcher-kva.test. SRV") {
		t.Errorf("queries = %q, want the A-label name", d.Queries())
	}

	for _, bad := range []string{"", ".", "a..b", "exa mple.org", "-bad.example", "a_b.example", strings.Repeat("a", 64) + ".test"} {
		if _, err := r.LookupTargets(t.Context(), bad); err == nil {
			t.Errorf("LookupTargets(%q): no error", bad)
		}
	}
}

func TestLookupAddrs(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddA("dual.example", "192.0.2.1")
	d.AddA("dual.example", "192.0.2.2")
	d.AddAAAA("dual.example", "2001:db8::1")
	d.AddAAAA("v6.example", "2001:db8::2")
	d.AddA("v4.example", "192.0.2.3")
	d.AddRR("txt.example. TXT \"no addresses\"")
	r, _ := newTestResolver(d)

	for i, tc := range []struct {
		host string
		want []string
	}{
		0: {"dual.example", []string{"2001:db8::1", "192.0.2.1", "192.0.2.2"}},
		1: {"v6.example.", []string{"2001:db8::2"}},
		2: {"V4.Example", []string{"192.0.2.3"}},
	} {
		addrs, err := r.LookupAddrs(t.Context(), tc.host)
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%d: addrs = %q, want %q", i, got, tc.want)
		}
	}

	for _, host := range []string{"txt.example", "nowhere.example"} {
		_, err := r.LookupAddrs(t.Context(), host)
		var de *s2s.DNSError
		if !errors.Is(err, s2s.ErrNotFound) || !errors.As(err, &de) || de.Timeout() {
			t.Errorf("%s: err = %v, want a DNSError wrapping ErrNotFound", host, err)
		}
	}
}

func TestLookupAddrsCNAME(t *testing.T) {
	for _, chase := range []bool{false, true} {
		t.Run(fmt.Sprintf("chase=%v", chase), func(t *testing.T) {
			d := s2stest.NewDNS(t)
			d.ChaseCNAMEs(chase)
			d.AddCNAME("a.example", "b.example")
			d.AddCNAME("b.example", "c.example")
			d.AddA("c.example", "192.0.2.1")
			d.AddAAAA("c.example", "2001:db8::1")
			d.AddCNAME("loop1.example", "loop2.example")
			d.AddCNAME("loop2.example", "loop3.example")
			d.AddCNAME("loop3.example", "loop1.example")
			d.AddCNAME("self.example", "self.example")
			for i := range 12 {
				d.AddCNAME(fmt.Sprintf("long%d.example", i), fmt.Sprintf("long%d.example", i+1))
			}
			d.AddA("long12.example", "192.0.2.12")
			d.AddCNAME("dangling.example", "nowhere.example")
			r, _ := newTestResolver(d)

			addrs, err := r.LookupAddrs(t.Context(), "a.example")
			want := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}
			if err != nil || !slices.Equal(addrs, want) {
				t.Errorf("a.example: %v, %v; want %v", addrs, err, want)
			}

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			for _, host := range []string{"loop1.example", "self.example", "long0.example"} {
				_, err := r.LookupAddrs(ctx, host)
				if err == nil || !strings.Contains(err.Error(), "CNAME") {
					t.Errorf("%s: err = %v, want a CNAME error", host, err)
				}
			}
			if ctx.Err() != nil {
				t.Error("CNAME loops took until the deadline")
			}
			_, err = r.LookupAddrs(t.Context(), "dangling.example")
			if !errors.Is(err, s2s.ErrNotFound) {
				t.Errorf("dangling.example: err = %v, want ErrNotFound", err)
			}

			// An SRV owner may be an alias too.
			d.AddCNAME("_xmpp-server._tcp.alias.example", "_xmpp-server._tcp.real.example")
			d.AddSRV("xmpp-server", "real.example", "xmpp.real.example", 5269, 0, 0)
			ts := mustLookupTargets(t, r, "alias.example")
			if got, want := targetStrings(ts), []string{"xmpp.real.example:5269"}; !slices.Equal(got, want) {
				t.Errorf("SRV through CNAME = %q, want %q", got, want)
			}
		})
	}
}

func TestResolverCache(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpp-server", "example.org", "xmpp.example.org", 5269, 0, 0) // TTL 1s
	d.AddRR("xmpp.example.org. 60 A 192.0.2.1")
	d.AddRR("xmpp.example.org. 30 AAAA 2001:db8::1")
	r, clk := newTestResolver(d)
	ctx := t.Context()

	lookup := func() {
		t.Helper()
		if _, err := r.LookupTargets(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.LookupAddrs(ctx, "xmpp.example.org"); err != nil {
			t.Fatal(err)
		}
	}
	count := func(want int) {
		t.Helper()
		if got := d.Queries(); len(got) != want {
			t.Errorf("%d queries, want %d: %q", len(got), want, got)
		}
		d.ResetQueries()
	}

	// Negative answers with an SOA of TTL 0 are not cached.
	lookup()
	count(4) // 2 SRV, A, AAAA
	lookup()
	if got, want := d.Queries(), []string{"_xmpps-server._tcp.example.org. SRV"}; !slices.Equal(got, want) {
		t.Errorf("queries = %q, want %q", got, want)
	}
	d.ResetQueries()

	d.SetNegativeTTL(10)
	lookup()
	count(1) // _xmpps-server NXDOMAIN, cached for 10s now
	lookup()
	count(0)
	clk.Advance(999 * time.Millisecond)
	lookup()
	count(0)
	clk.Advance(time.Millisecond) // t=1s: the _xmpp-server SRV answer (TTL 1) expires
	lookup()
	if got, want := d.Queries(), []string{"_xmpp-server._tcp.example.org. SRV"}; !slices.Equal(got, want) {
		t.Errorf("queries = %q, want %q", got, want)
	}
	d.ResetQueries()
	clk.Advance(29 * time.Second) // t=30s: all but A expired
	lookup()
	if got, want := d.Queries(), []string{
		"_xmpps-server._tcp.example.org. SRV",
		"_xmpp-server._tcp.example.org. SRV",
		"xmpp.example.org. AAAA",
	}; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("queries = %q, want %q", got, want)
	}
	d.ResetQueries()

	// Negative answers last as long as the SOA says, capped at 5 minutes.
	d.SetNegativeTTL(60)
	if _, err := r.LookupAddrs(ctx, "nowhere.example.org"); !errors.Is(err, s2s.ErrNotFound) {
		t.Fatal(err)
	}
	count(2)
	clk.Advance(59 * time.Second)
	r.LookupAddrs(ctx, "nowhere.example.org")
	count(0)
	clk.Advance(time.Second)
	r.LookupAddrs(ctx, "nowhere.example.org")
	count(2)
	d.SetNegativeTTL(86400)
	clk.Advance(time.Minute)
	r.LookupAddrs(ctx, "nowhere.example.org")
	count(2)
	clk.Advance(5*time.Minute - time.Second)
	r.LookupAddrs(ctx, "nowhere.example.org")
	count(0)
	clk.Advance(time.Second)
	r.LookupAddrs(ctx, "nowhere.example.org")
	count(2)

	// Failures are not cached.
	d.ServFail("fail.example.org")
	for range 2 {
		if _, err := r.LookupAddrs(ctx, "fail.example.org"); err == nil {
			t.Fatal("no error")
		}
	}
	count(4)
}

func TestResolverCacheSize(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddRR("a.example. 60 A 192.0.2.1")
	d.AddRR("b.example. 60 A 192.0.2.2")
	d.SetNegativeTTL(60)
	r, _ := newTestResolver(d)
	r.CacheSize = 2 // room for A and AAAA of one host
	ctx := t.Context()

	r.LookupAddrs(ctx, "a.example")
	r.LookupAddrs(ctx, "a.example")
	if got := len(d.Queries()); got != 2 {
		t.Errorf("%d queries, want 2", got)
	}
	r.LookupAddrs(ctx, "b.example") // evicts a.example
	r.LookupAddrs(ctx, "a.example")
	if got := len(d.Queries()); got != 6 {
		t.Errorf("%d queries, want 6: %q", got, d.Queries())
	}

	d.ResetQueries()
	r2, _ := newTestResolver(d)
	r2.CacheSize = -1
	r2.LookupAddrs(ctx, "a.example")
	r2.LookupAddrs(ctx, "a.example")
	if got := len(d.Queries()); got != 4 {
		t.Errorf("without cache: %d queries, want 4", got)
	}
}

func TestResolverTimeout(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.Stall("_xmpp-server._tcp.slow.example")
	d.Stall("_xmpps-server._tcp.slow.example")
	r, _ := newTestResolver(d)
	r.Timeout = time.Minute

	// The context's deadline bounds the lookup.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.LookupTargets(ctx, "slow.example")
	elapsed := time.Since(start)
	var de *s2s.DNSError
	if !errors.As(err, &de) || !de.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a DNSError timing out", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("lookup took %v with a 200ms deadline", elapsed)
	}
	if err != nil && !strings.Contains(err.Error(), "server._tcp.slow.example. ") {
		t.Errorf("error %q does not name the query", err)
	}

	// So does Resolver.Timeout.
	r.Timeout = 100 * time.Millisecond
	start = time.Now()
	_, err = r.LookupTargets(t.Context(), "slow.example")
	if !errors.As(err, &de) || !de.Timeout() {
		t.Errorf("err = %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("lookup took %v with a 100ms timeout", elapsed)
	}

	// And cancelling the context.
	r.Timeout = time.Minute
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = r.LookupTargets(ctx, "slow.example")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("lookup took %v after cancel", elapsed)
	}
}

func TestResolverServFail(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.ServFail("_xmpp-server._tcp.fail.example")
	d.ServFail("_xmpps-server._tcp.half.example")
	d.AddSRV("xmpp-server", "half.example", "xmpp.half.example", 5269, 0, 0)
	d.ServFail("host.fail.example")
	r, _ := newTestResolver(d)

	_, err := r.LookupTargets(t.Context(), "fail.example")
	var de *s2s.DNSError
	if !errors.As(err, &de) || de.Rcode != dns.RcodeServerFailure || de.Name != "_xmpp-server._tcp.fail.example." || de.Type != "SRV" {
		t.Errorf("err = %#v, want SERVFAIL for _xmpp-server._tcp.fail.example. SRV", err)
	} else if de.Timeout() || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("err = %v", err)
	}

	// The other service's records are enough.
	if got, want := targetStrings(mustLookupTargets(t, r, "half.example")), []string{"xmpp.half.example:5269"}; !slices.Equal(got, want) {
		t.Errorf("targets = %q, want %q", got, want)
	}

	if _, err := r.LookupAddrs(t.Context(), "host.fail.example"); !errors.As(err, &de) || de.Rcode != dns.RcodeServerFailure {
		t.Errorf("LookupAddrs: err = %v, want SERVFAIL", err)
	}
}

// A failing or silent server is followed by the next one.
func TestResolverServers(t *testing.T) {
	bad := s2stest.NewDNS(t)
	bad.ServFail("_xmpp-server._tcp.example.org")
	bad.Stall("_xmpps-server._tcp.example.org")
	good := s2stest.NewDNS(t)
	good.AddSRV("xmpp-server", "example.org", "xmpp.example.org", 5269, 0, 0)
	r, _ := newTestResolver(nil, bad.Addr(), good.Addr())
	r.Timeout = 200 * time.Millisecond

	if got, want := targetStrings(mustLookupTargets(t, r, "example.org")), []string{"xmpp.example.org:5269"}; !slices.Equal(got, want) {
		t.Errorf("targets = %q, want %q", got, want)
	}
	if len(bad.Queries()) != 2 || len(good.Queries()) != 2 {
		t.Errorf("queries: bad %q, good %q", bad.Queries(), good.Queries())
	}
}

func TestResolverTruncated(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.Truncate("_xmpp-server._tcp.example.org")
	d.AddSRV("xmpp-server", "example.org", "xmpp.example.org", 5269, 0, 0)
	for i := range 40 { // too many for 512 bytes, let alone 1232
		d.AddSRV("xmpp-server", "big.example", fmt.Sprintf("a-long-name-to-fill-the-packet-%02d.big.example", i), 5269, 0, 0)
	}
	r, _ := newTestResolver(d)

	if got, want := targetStrings(mustLookupTargets(t, r, "example.org")), []string{"xmpp.example.org:5269"}; !slices.Equal(got, want) {
		t.Errorf("targets = %q, want %q", got, want)
	}
	if ts := mustLookupTargets(t, r, "big.example"); len(ts) != 40 {
		t.Errorf("%d targets, want 40", len(ts))
	}
	var tcp []string
	for _, q := range d.Log() {
		if q.Net == "tcp" {
			tcp = append(tcp, q.String())
		}
	}
	if want := []string{"_xmpp-server._tcp.example.org. SRV", "_xmpp-server._tcp.big.example. SRV"}; !slices.Equal(tcp, want) {
		t.Errorf("TCP queries = %q, want %q", tcp, want)
	}
}

func TestDiagnose(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpps-server", "example.org", ".", 0, 0, 0)
	d.AddSRV("xmpp-server", "example.org", "xmpp.example.org", 5269, 10, 1)
	d.AddSRV("xmpp-server", "example.org", "gone.example.org", 5269, 20, 1)
	d.AddA("xmpp.example.org", "192.0.2.1")
	d.AddAAAA("xmpp.example.org", "2001:db8::1")
	r, _ := newTestResolver(d)

	rep, err := r.Diagnose(t.Context(), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Domain != "example.org." || rep.Err != nil {
		t.Errorf("Domain %q, Err %v", rep.Domain, rep.Err)
	}
	if len(rep.SRV) != 2 {
		t.Fatalf("SRV = %+v", rep.SRV)
	}
	if s := rep.SRV[0]; s.Name != "_xmpps-server._tcp.example.org." || !s.NoService || len(s.Records) != 1 || s.Records[0].Host != "." {
		t.Errorf("SRV[0] = %+v", s)
	}
	if s := rep.SRV[1]; s.Name != "_xmpp-server._tcp.example.org." || s.NoService || len(s.Records) != 2 || s.Err != nil {
		t.Errorf("SRV[1] = %+v", s)
	}
	if got, want := targetStrings(rep.Targets), []string{"xmpp.example.org:5269", "gone.example.org:5269"}; !slices.Equal(got, want) {
		t.Errorf("Targets = %q, want %q", got, want)
	}
	if len(rep.Addrs) != 2 || rep.Addrs[0].Host != "xmpp.example.org" || len(rep.Addrs[0].Addrs) != 2 ||
		rep.Addrs[1].Host != "gone.example.org" || !errors.Is(rep.Addrs[1].Err, s2s.ErrNotFound) {
		t.Errorf("Addrs = %+v", rep.Addrs)
	}

	// Diagnose asks afresh every time and leaves the cache alone.
	d.ResetQueries()
	r.Diagnose(t.Context(), "example.org")
	if n := len(d.Queries()); n != 6 {
		t.Errorf("second Diagnose: %d queries, want 6", n)
	}
	d.ResetQueries()
	r.LookupTargets(t.Context(), "example.org")
	if n := len(d.Queries()); n != 2 {
		t.Errorf("LookupTargets after Diagnose: %d queries, want 2", n)
	}

	d.AddSRV("xmpp-server", "none.example", ".", 0, 0, 0)
	rep, err = r.Diagnose(t.Context(), "none.example")
	if err != nil || !errors.Is(rep.Err, s2s.ErrNoService) || len(rep.Targets) != 0 {
		t.Errorf("none.example: %+v, %v", rep, err)
	}
}

// The zero Resolver reads /etc/resolv.conf; it must at least not panic.
func TestResolverZero(t *testing.T) {
	var r s2s.Resolver
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	r.Logger = slog.New(slog.DiscardHandler)
	_, _ = r.LookupAddrs(ctx, "localhost.invalid")
}

func TestResolverConcurrent(t *testing.T) {
	d := s2stest.NewDNS(t)
	d.AddSRV("xmpp-server", "example.org", "a.example.org", 5269, 0, 10)
	d.AddSRV("xmpp-server", "example.org", "b.example.org", 5269, 0, 10)
	d.AddA("a.example.org", "192.0.2.1")
	r, clk := newTestResolver(d)
	r.CacheSize = 3
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 20 {
				if _, err := r.LookupTargets(t.Context(), "example.org"); err != nil {
					t.Error(err)
					return
				}
				r.LookupAddrs(t.Context(), "a.example.org")
				if i == 0 {
					clk.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
}

// TestErrorPrefixOnce: a dial error names the package once, not at every
// level it wraps.
func TestErrorPrefixOnce(t *testing.T) {
	e := &s2s.DialError{Domain: "nowhere.test", Err: &s2s.DNSError{Name: "nowhere.test", Type: "A/AAAA", Rcode: -1, Err: s2s.ErrNotFound}}
	if got := e.Error(); strings.Count(got, "s2s:") != 1 {
		t.Errorf("%q", got)
	}
}

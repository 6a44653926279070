package s2s_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/leaktest"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
	"github.com/s2sd/s2sd/stream"
)

// Stream timers (the stream's clock): these tests run past the timeouts
// they configure, since a deadline that is wrong shows only once it passes.

// upCounter counts streams that came up in a direction.
type upCounter struct{ in, out atomic.Int32 }

func (u *upCounter) on(c *s2s.Conn, up bool) {
	if !up {
		return
	}
	if c.State()&s2s.Received != 0 {
		u.in.Add(1)
	} else {
		u.out.Add(1)
	}
}

// TestBurstsPastNegotiation: stanzas in bursts separated by quiet longer
// than the negotiation timeout travel on one outbound stream, authenticated
// once, with no duplicate.
func TestBurstsPastNegotiation(t *testing.T) {
	dns := s2stest.NewDNS(t)
	var ups upCounter
	o := s2stest.Options{NegotiationTimeout: time.Second, IdleTimeout: 20 * time.Second, OnStream: ups.on}
	a := s2stest.NewServer(t, dns, "a.test", o)
	b := s2stest.NewServer(t, dns, "b.test", o)
	dups := 0
	for burst := range 3 {
		for i := range 50 {
			a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprintf("b%d-%d", burst, i)))
		}
		dups += collect(t, b, 50, wait)
		if burst < 2 {
			time.Sleep(2500 * time.Millisecond) // 2.5 negotiation timeouts
		}
	}
	if dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if n := ups.out.Load(); n != 1 {
		t.Errorf("a opened %d outbound streams, want 1", n)
	}
	if n := len(a.Pool.Streams()); n != 1 {
		t.Errorf("a has %d outbound streams up, want 1", n)
	}
}

// TestContinuousLoadPastNegotiation: a stream under load for several
// negotiation timeouts stays up and delivers each stanza once.
func TestContinuousLoadPastNegotiation(t *testing.T) {
	dns := s2stest.NewDNS(t)
	var ups upCounter
	o := s2stest.Options{NegotiationTimeout: 500 * time.Millisecond, OnStream: ups.on}
	a := s2stest.NewServer(t, dns, "a.test", o)
	b := s2stest.NewServer(t, dns, "b.test", o)
	var n int
	done := make(chan int)
	go func() {
		dups, seen := 0, map[string]bool{}
		for st := range b.Received {
			if seen[st.ID] {
				dups++
			}
			seen[st.ID] = true
			if st.ID == "last" {
				break
			}
		}
		done <- dups
	}()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); n++ {
		a.Send(t, fmt.Sprintf("<message from='alice@a.test' to='bob@b.test' id='c%d'><body>x</body></message>", n))
		if n%50 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	a.Send(t, "<message from='alice@a.test' to='bob@b.test' id='last'/>")
	select {
	case dups := <-done:
		if dups != 0 {
			t.Errorf("%d duplicates of %d stanzas", dups, n)
		}
	case <-time.After(wait):
		t.Fatal("the last stanza did not arrive")
	}
	if n := ups.out.Load(); n != 1 {
		t.Errorf("a opened %d outbound streams, want 1", n)
	}
}

// TestOutboundIdle: an outbound stream that carries nothing for the idle
// timeout closes; the next stanza opens a new one.
func TestOutboundIdle(t *testing.T) {
	dns := s2stest.NewDNS(t)
	var ups upCounter
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{IdleTimeout: time.Second, KeepAlive: 200 * time.Millisecond, OnStream: ups.on})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	a.Send(t, msg("alice@a.test", "bob@b.test", "one"))
	collect(t, b, 1, wait)
	// Keepalives are not traffic: the stream still closes.
	waitFor(t, 5*time.Second, "the idle outbound stream to close", func() bool { return len(a.Pool.Streams()) == 0 })
	a.Send(t, msg("alice@a.test", "bob@b.test", "two"))
	collect(t, b, 1, wait)
	if n := ups.out.Load(); n != 2 {
		t.Errorf("%d outbound streams, want 2", n)
	}
}

// TestOutboundBusyStaysUp: stanzas sent every 300 ms keep an outbound
// stream up past its idle timeout (1 s), for 3 s, each taking its
// arrival as the stream's last send; once they stop, it closes.
func TestOutboundBusyStaysUp(t *testing.T) {
	dns := s2stest.NewDNS(t)
	var ups upCounter
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{IdleTimeout: time.Second, KeepAlive: 200 * time.Millisecond, OnStream: ups.on})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	for i := range 10 {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("q", i)))
		collect(t, b, 1, wait)
		time.Sleep(300 * time.Millisecond)
	}
	if n := ups.out.Load(); n != 1 {
		t.Fatalf("%d outbound streams over 3 s of stanzas 300 ms apart, idle timeout 1 s: want 1", n)
	}
	waitFor(t, 5*time.Second, "the idle outbound stream to close", func() bool { return len(a.Pool.Streams()) == 0 })
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !f(); {
		if time.Now().After(end) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAckTimeoutOnlyWhenUnacknowledged: a peer that acknowledges keeps
// its stream past AckTimeout, busy or quiet; one that stops acknowledging
// while stanzas wait loses it (TestHalfOpenPeer checks what follows).
func TestAckTimeoutOnlyWhenUnacknowledged(t *testing.T) {
	dns := s2stest.NewDNS(t)
	var ups upCounter
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{AckTimeout: 300 * time.Millisecond, OnStream: ups.on})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	dns.AddServer("b.test", proxy.Addr)
	for i := range 20 {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("q", i)))
		collect(t, b, 1, wait)
		time.Sleep(50 * time.Millisecond) // 1 s in all, with quiet between
	}
	time.Sleep(time.Second) // quiet, nothing unacknowledged
	if n := ups.out.Load(); n != 1 || len(a.Pool.Streams()) != 1 {
		t.Fatalf("%d outbound streams opened, %d up; want the first still up", n, len(a.Pool.Streams()))
	}
	ticks := s2s.AckTicks()
	time.Sleep(500 * time.Millisecond)
	if d := s2s.AckTicks() - ticks; d != 0 {
		t.Errorf("the acknowledgement tick ran %d times on a stream with nothing unacknowledged", d)
	}
	proxy.Hang()
	a.Send(t, msg("alice@a.test", "bob@b.test", "hung"))
	waitFor(t, 3*time.Second, "a new outbound stream after the peer stopped acknowledging", func() bool { return ups.out.Load() >= 2 })
}

// rawPeer is a hostile or minimal peer. Until watch, reads are made by
// until, on the test's goroutine; watch then reads everything in the
// background and notes when the server ends the stream.
type rawPeer struct {
	t      *testing.T
	nc     net.Conn
	start  time.Time
	mu     sync.Mutex
	got    bytes.Buffer
	closed chan struct{}
	at     time.Duration // when the stream ended, since start
}

func dialRaw(t *testing.T, addr string) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc, start: time.Now(), closed: make(chan struct{})}
}

func (p *rawPeer) watch() {
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := p.nc.Read(buf)
			p.mu.Lock()
			p.got.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				p.at = time.Since(p.start)
				close(p.closed)
				return
			}
		}
	}()
}

func (p *rawPeer) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got.String()
}

// until reads until the server has sent s.
func (p *rawPeer) until(s string) {
	p.t.Helper()
	buf := make([]byte, 4096)
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer p.nc.SetReadDeadline(time.Time{})
	for !strings.Contains(p.text(), s) {
		n, err := p.nc.Read(buf)
		p.mu.Lock()
		p.got.Write(buf[:n])
		p.mu.Unlock()
		if err != nil {
			p.t.Fatalf("server never sent %q: %v; got %q", s, err, p.text())
		}
	}
}

func (p *rawPeer) send(s string) {
	if _, err := io.WriteString(p.nc, s); err != nil {
		p.t.Logf("write: %v", err)
	}
}

// startTLS runs STARTTLS on a stream whose features offered it.
func (p *rawPeer) startTLS() {
	p.t.Helper()
	p.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	p.until("<proceed")
	p.tls(false)
}

func (p *rawPeer) tls(direct bool) {
	p.t.Helper()
	cfg := &tls.Config{InsecureSkipVerify: true}
	if direct {
		cfg.NextProtos = []string{"xmpp-server"}
	}
	tc := tls.Client(p.nc, cfg)
	if err := tc.Handshake(); err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.got.Reset()
	p.mu.Unlock()
	p.nc = tc
}

// ended waits for the server to close the stream, and returns when it did.
func (p *rawPeer) ended(limit time.Duration) time.Duration {
	p.t.Helper()
	select {
	case <-p.closed:
		return p.at
	case <-time.After(limit):
		p.t.Fatalf("stream still open after %v; got %q", limit, p.text())
		return 0
	}
}

const hdrFrom = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='b.test' version='1.0'>"

// checkEnd checks how a stream the server ended looks to the peer: a
// connection-timeout stream error where a stream is open, and exactly one
// </stream:stream> (well-formed).
func checkEnd(t *testing.T, got string, open bool) {
	t.Helper()
	if n := strings.Count(got, "</stream:stream>"); open && n != 1 || !open && n > 1 {
		t.Errorf("%d </stream:stream> in %q", n, got)
	}
	if open && !strings.Contains(got, "<connection-timeout") {
		t.Errorf("no connection-timeout stream error in %q", got)
	}
}

// TestInboundNegotiationDeadline: whatever a peer does short of
// authenticating, its stream ends at the negotiation timeout counted from
// the accept, with and without a rate limit, on the STARTTLS and the direct
// TLS port.
func TestInboundNegotiationDeadline(t *testing.T) {
	const nt = time.Second
	dns := s2stest.NewDNS(t)
	// The authoritative server of stall.test accepts and never answers.
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dns.AddServer("stall.test", netip.MustParseAddrPort(stall.Addr().String()))
	for _, rate := range []float64{0, 1000} {
		b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NegotiationTimeout: nt, IdleTimeout: time.Hour})
		b.S2S.RateLimit, b.S2S.RateBurst = rate, 10
		dl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go b.S2S.ServeDirectTLS(dl)
		direct := dl.Addr().String()
		// prelude runs before the peer watches for the end (it reads as
		// it needs); then goes on beside it.
		cases := []struct {
			name    string
			direct  bool
			open    bool // a stream is open when the deadline falls
			prelude func(p *rawPeer)
			then    func(p *rawPeer)
		}{
			{"silent", false, true, nil, nil},
			{"header only", false, true, nil, func(p *rawPeer) { p.send(hdrFrom) }},
			{"trickled header", false, true, nil, func(p *rawPeer) {
				for i := range hdrFrom[:40] {
					p.send(hdrFrom[i : i+1])
					time.Sleep(40 * time.Millisecond)
				}
			}},
			{"whitespace", false, true, nil, func(p *rawPeer) {
				p.send(hdrFrom)
				for range 15 {
					time.Sleep(100 * time.Millisecond)
					p.send(" ")
				}
			}},
			{"STARTTLS then quiet", false, true, func(p *rawPeer) {
				p.send(hdrFrom)
				p.until("</stream:features>")
				p.startTLS()
			}, func(p *rawPeer) { p.send(hdrFrom) }},
			{"stalled verification", false, true, func(p *rawPeer) {
				p.send(hdrFrom)
				p.until("</stream:features>")
				p.startTLS()
				p.send(strings.Replace(hdrFrom, "to=", "from='stall.test' to=", 1))
				p.until("</stream:features>")
			}, func(p *rawPeer) { p.send("<db:result from='stall.test' to='b.test'>key</db:result>") }},
			{"direct TLS, silent", true, false, nil, nil},
			{"direct TLS, late handshake then quiet", true, true, func(p *rawPeer) {
				time.Sleep(nt * 8 / 10)
				p.tls(true)
			}, func(p *rawPeer) { p.send(hdrFrom) }},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("rate=%v/%s", rate, tc.name), func(t *testing.T) {
				t.Parallel()
				addr := b.Addr.String()
				if tc.direct {
					addr = direct
				}
				p := dialRaw(t, addr)
				if tc.prelude != nil {
					tc.prelude(p)
				}
				p.watch()
				if tc.then != nil {
					go tc.then(p)
				}
				at := p.ended(nt + 3*time.Second)
				if at < nt-50*time.Millisecond || at > nt+time.Second {
					t.Errorf("stream ended %v after the connect, want the negotiation timeout, %v", at, nt)
				}
				checkEnd(t, p.text(), tc.open)
			})
		}
	}
}

// TestInboundIdleDeadline: an authenticated inbound stream on which the
// peer sends nothing closes at the idle timeout, counted from
// authentication; one kept alive with whitespace stays.
func TestInboundIdleDeadline(t *testing.T) {
	const idle = 1500 * time.Millisecond
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NegotiationTimeout: time.Second, IdleTimeout: idle})
	d := *a.Dialer
	d.DisableSM = true // nothing follows the dialback
	quiet, err := d.DialContext(context.Background(), "a.test", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	authAt := time.Now()
	kept, err := d.DialContext(context.Background(), "a.test", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				kept.SendRaw([]byte(" "))
			}
		}
	}()
	var cond stream.Condition
	ended := make(chan time.Duration, 1)
	go func() {
		for {
			el, err := s2s.ReadNext(quiet)
			if err != nil {
				ended <- time.Since(authAt)
				return
			}
			if el.Space == stream.NS && el.Local == "error" {
				se, _ := stream.Parse(el.Raw)
				cond = se.Condition
			}
		}
	}()
	select {
	case at := <-ended:
		if at < idle-100*time.Millisecond || at > idle+1500*time.Millisecond {
			t.Errorf("quiet stream ended %v after authentication, want the idle timeout, %v", at, idle)
		}
	case <-time.After(idle + 4*time.Second):
		t.Fatal("quiet authenticated stream never closed")
	}
	if cond != stream.ConnectionTimeout {
		t.Errorf("stream error %q, want connection-timeout", cond)
	}
	time.Sleep(idle)
	if n := len(b.S2S.Streams()); n != 1 {
		t.Errorf("b has %d inbound streams, want the one kept alive", n)
	}
}

// TestWriteDeadline: a peer that floods requests and never reads the
// answers loses its stream within the write timeout; a good stream beside
// it is not affected.
func TestWriteDeadline(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{WriteTimeout: 500 * time.Millisecond, NegotiationTimeout: time.Minute})
	exchange(t, a, b, 3)
	base := len(b.S2S.Streams())
	nc, err := net.Dial("tcp", b.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4096)
	go func() {
		io.WriteString(nc, hdrFrom)
		// Long ids make long answers: the buffers between us fill sooner.
		req := []byte(strings.Repeat("<db:verify from='x.test' to='b.test' id='"+strings.Repeat("i", 4000)+"'>k</db:verify>", 16))
		for {
			if _, err := nc.Write(req); err != nil {
				return
			}
		}
	}()
	waitFor(t, 2*time.Second, "flooding stream on b", func() bool { return len(b.S2S.Streams()) > base })
	start := time.Now()
	waitFor(t, 5*time.Second, "end of the flooding stream", func() bool { return len(b.S2S.Streams()) <= base })
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("the flooding stream lasted %v past its start", d)
	}
	exchange(t, a, b, 3)
}

// TestDialbackVerificationLimit: one stream naming many domains in
// db:result gets at most MaxDialbackPending verifications under way; the
// rest are refused with resource-constraint.
func TestDialbackVerificationLimit(t *testing.T) {
	dns := s2stest.NewDNS(t)
	var conns atomic.Int32
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			defer c.Close()
		}
	}()
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NegotiationTimeout: 3 * time.Second})
	p := dialRaw(t, b.Addr.String())
	p.send(hdrFrom)
	p.until("</stream:features>")
	p.startTLS()
	p.send(hdrFrom)
	p.until("</stream:features>")
	p.watch()
	for i := range 40 {
		d := fmt.Sprintf("d%d.test", i)
		dns.AddServer(d, netip.MustParseAddrPort(stall.Addr().String()))
		p.send(fmt.Sprintf("<db:result from='%s' to='b.test'>key</db:result>", d))
	}
	for end := time.Now().Add(3 * time.Second); strings.Count(p.text(), "resource-constraint") < 36 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(p.text(), "resource-constraint"); n != 36 {
		t.Errorf("%d db:result refused with resource-constraint, want 36", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n := conns.Load(); n > 4 {
		t.Errorf("%d verification connections opened, want at most 4", n)
	}
}

// TestShutdownLeavesNoGoroutines: once Pool.Shutdown and Server.Shutdown
// return, none of their goroutines remain: streams, parked readers,
// writers, dials, backoff waits, timers.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	// Only goroutines started by this test count: earlier tests leave
	// streams they dialed themselves and never closed.
	first := leaktest.Last()
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: time.Hour})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	exchange(t, a, b, 5)
	// A domain that cannot be reached keeps a link in backoff.
	dns.AddServer("down.test", netip.MustParseAddrPort("127.0.0.1:1"))
	a.Send(t, msg("alice@a.test", "bob@down.test", "x"))
	time.Sleep(200 * time.Millisecond)
	a.Close()
	b.Close()
	var left string
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if left = leaktest.Since(first, s2sCode); left == "" {
			return
		}
	}
	t.Fatalf("goroutines left after Shutdown:\n%s", left)
}

// s2sCode reports whether a goroutine runs s2s or xmlstream writer code.
func s2sCode(g string) bool {
	return strings.Contains(g, "s2sd/s2s.") || strings.Contains(g, "xmlstream.(*Writer)")
}

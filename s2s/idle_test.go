package s2s_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// TestQuietAfterDialback: a stream authenticated with dialback, on which
// the peer then sends nothing, lives until the idle timeout, not only until
// the negotiation deadline that was set when it opened.
func TestQuietAfterDialback(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	// b.test served by a server like b's, with a short negotiation deadline.
	srv := &s2s.Server{
		Hosted: b.S2S.Hosted, Handler: b.S2S.Handler, GetCertificate: b.S2S.GetCertificate,
		Policy: b.S2S.Policy, Secret: b.S2S.Secret, Dialer: b.S2S.Dialer, Logger: b.S2S.Logger,
		NegotiationTimeout: time.Second, IdleTimeout: time.Hour,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	dns.AddServer("b.test", netip.MustParseAddrPort(l.Addr().String()))
	d := *a.Dialer
	d.DisableSM = true // so that nothing follows the dialback
	c, err := d.DialContext(context.Background(), "a.test", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(2 * time.Second)
	if n := len(srv.Streams()); n != 1 {
		t.Fatalf("b has %d inbound streams after 2s of quiet, want 1", n)
	}
}

// TestIdleStreamsPark: quiet inbound streams park, with no goroutine
// waiting for them where there is epoll, and carry stanzas again when the
// peer writes.
func TestIdleStreamsPark(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("streams wait in their TLS read on this system")
	}
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	exchange(t, a, b, 5)
	deadline := time.Now().Add(wait)
	parked := func() int { return a.S2S.Parked() + b.S2S.Parked() }
	for parked() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d inbound streams parked, want 2", parked())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if runtime.GOOS == "linux" {
		waitFor(t, wait, "goroutine-free parks of the inbound streams", func() bool {
			// Neither serving nor waiting (park's goroutine, where
			// there is no epoll).
			return s2s.Goroutines("(*in).serve(")+s2s.Goroutines("s2s.park.func") == 0
		})
	}
	in := b.S2S.Streams()
	exchange(t, a, b, 5)
	if now := b.S2S.Streams(); len(in) != 1 || !slices.Contains(now, in[0]) {
		t.Fatal("b's first inbound stream is gone")
	}
}

// TestOutboundStreamsPark: a quiet outbound stream parks, with no goroutine
// waiting for it where there is epoll; when stanzas go out again on it,
// their acknowledgements wake it, and it parks again once they are
// handled.
func TestOutboundStreamsPark(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("streams wait in their TLS read on this system")
	}
	dns := s2stest.NewDNS(t)
	var ups upCounter
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{OnStream: ups.on})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	for round := range 3 {
		for i := range 5 {
			a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint(round, i)))
		}
		collect(t, b, 5, wait)
		// Parked, with everything acknowledged: the acknowledgements were
		// read, by the stream's first goroutine or by the one that woke.
		waitFor(t, wait, "a's outbound stream to park with nothing unacknowledged", func() bool {
			return a.Pool.Parked() == 1 && a.Pool.Queued() == 0
		})
		if runtime.GOOS == "linux" {
			waitFor(t, wait, "a goroutine-free park of the outbound stream", func() bool {
				return s2s.Goroutines("(*link).watchFrom(")+s2s.Goroutines("s2s.park.func") == 0
			})
		}
	}
	if n := ups.out.Load(); n != 1 {
		t.Errorf("a opened %d outbound streams, want 1", n)
	}
}

// TestSlowStanza: a stanza that arrives in pieces, far apart, is read whole
// on the same stream.
func TestSlowStanza(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	dns.AddServer("b.test", proxy.Addr)
	a.Send(t, msg("alice@a.test", "bob@b.test", "first"))
	collect(t, b, 1, wait)
	in := b.S2S.Streams()
	proxy.Delay(250 * time.Millisecond) // each piece of 16 KiB or less
	body := strings.Repeat("x", 40<<10)
	a.Send(t, msg("alice@a.test", "bob@b.test", body))
	got := b.Expect(t, wait)
	if bodyOf(t, got.El.Raw) != body {
		t.Fatalf("got %d bytes of body", len(bodyOf(t, got.El.Raw)))
	}
	if now := b.S2S.Streams(); len(in) != 1 || !slices.Contains(now, in[0]) {
		t.Fatal("b's first inbound stream is gone")
	}
}

// TestConnDone: a stream's Done channel, made when first asked for, is the
// same for every caller and is closed when the stream ends; asked for
// after the end, it is closed already.
func TestConnDone(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	exchange(t, a, b, 1)
	in := b.S2S.Streams()
	if len(in) != 1 {
		t.Fatalf("b has %d inbound streams, want 1", len(in))
	}
	c := in[0]
	done := make(chan (<-chan struct{}), 8)
	for range cap(done) {
		go func() { done <- c.Done() }()
	}
	first := <-done
	for range cap(done) - 1 {
		if d := <-done; d != first {
			t.Fatal("Done returned different channels")
		}
	}
	select {
	case <-first:
		t.Fatal("Done is closed while the stream is up")
	default:
	}
	c.Close()
	select {
	case <-first:
	case <-time.After(wait):
		t.Fatal("Done not closed after Close")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done asked for after the end is not closed")
	}
}

package s2s_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/lendtest"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// TestQueueOrder: far more stanzas than the in-flight window (MaxUnacked,
// 512) at once, so that most wait in the queue and go out in the drains
// that acknowledgements trigger, each stopped by the window: every stanza
// arrives once, in the order sent, and the queue ends empty.
func TestQueueOrder(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	const n = 5000
	go func() {
		for i := range n {
			a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("q", i)))
		}
	}()
	for i := range n {
		got := b.Expect(t, wait)
		if want := fmt.Sprint("q", i); got.ID != want {
			t.Fatalf("stanza %d: got %s, want %s", i, got.ID, want)
		}
	}
	deadline := time.Now().Add(wait)
	for a.Pool.Queued() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d stanzas still queued or unacknowledged", a.Pool.Queued())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLend: a server that lends its stanzas (Server.Lend) hands each to
// its handler in the stream's read buffer, and a handler that keeps them
// with Own gets every one intact, in order, whatever its size and however
// the reads split them. The test's package poisons a loan as soon as the
// stream reads on (poison_test.go), so a stanza kept without Own would
// show here as '#'.
func TestLend(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{Lend: true})
	const n = 3000
	body := func(i int) string { return strings.Repeat(fmt.Sprint(i%10), i*131%9000) }
	go func() {
		for i := range n {
			a.Send(t, fmt.Sprintf("<message from='alice@a.test' to='bob@b.test' id='q%d'><body>%s</body></message>", i, body(i)))
		}
	}()
	for i := range n {
		got := b.Expect(t, wait)
		if want := fmt.Sprint("q", i); got.ID != want {
			t.Fatalf("stanza %d: got %s, want %s", i, got.ID, want)
		}
		if got := bodyOf(t, got.El.Raw); got != body(i) {
			t.Fatalf("stanza %d: body of %d bytes, not the %d sent", i, len(got), len(body(i)))
		}
	}
	if lent := b.Lent.Load(); lent != n {
		t.Fatalf("%d of %d stanzas were lent", lent, n)
	}
}

// TestLendReuse: a lending stream reuses the stanzas its handler let go,
// and never one the handler kept with Own: the kept ones stay intact
// while thousands more are read, each stanza let go is whole while its
// Deliver runs, and every one arrives once, in order. Under
// PoisonBorrowed (these tests' default) a stanza let go is spoilt rather
// than reused, so this test turns it off while it runs.
func TestLendReuse(t *testing.T) {
	xmlstream.PoisonBorrowed(false)
	defer xmlstream.PoisonBorrowed(true)
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{Lend: true})
	const n = 3000
	type seen struct {
		id, kind, from, body string
	}
	got := make(chan seen, n)
	// One stream, one reading goroutine: the handler needs no lock, and
	// the test reads rec once every stanza came through the channel.
	var rec lendtest.Recorder
	b.Router.Local = route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
		rec.See(s)
		got <- seen{s.ID, s.Kind, s.From.String(), bodyOf(t, s.El.Raw)}
		return nil
	})
	from := func(i int) string { return fmt.Sprintf("alice@a.test/%d", i) }
	go func() {
		for i := range n {
			a.Send(t, fmt.Sprintf("<message from='%s' to='bob@b.test' id='q%d'><body>%s</body></message>", from(i), i, lendtest.Body(i)))
		}
	}()
	for i := range n {
		var s seen
		select {
		case s = <-got:
		case <-time.After(wait):
			t.Fatalf("stanza %d did not arrive", i)
		}
		if s.id != fmt.Sprint("q", i) || s.kind != "message" || s.from != from(i) || s.body != lendtest.Body(i) {
			t.Fatalf("stanza %d: id %s, %s from %s, body of %d bytes", i, s.id, s.kind, s.from, len(s.body))
		}
	}
	rec.Check(t, n, from)
}

// TestAckRequestHeld: stanzas handled one after the other on the
// goroutine that reads them (route.Stanza.Source) go out together when
// that goroutine is about to read again, requests for acknowledgement
// included: a request does not write what came before it on its own.
// Then all arrive, and are acknowledged.
func TestAckRequestHeld(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	a.Pool.AckEvery = 4 // a request every four stanzas
	// The stream up first, so that stanzas go out as they are handled.
	a.Send(t, "<message from='alice@a.test' to='bob@b.test' id='first'/>")
	b.Expect(t, wait)
	acked := func() bool {
		li := linkTo(a.Pool, "b.test")
		return li.Remote != "" && li.Unacked == 0 && li.Queued == 0
	}
	// Acknowledged, and past the acknowledgement tick the stanza armed
	// (50 ms), which then stopped: none is due.
	waitFor(t, wait, "acknowledgements", acked)
	time.Sleep(150 * time.Millisecond)

	// A Reader on a socket, as a component's or a remote server's is.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var batch strings.Builder
	batch.WriteString("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>")
	for i := range 40 {
		fmt.Fprintf(&batch, "<message from='alice@a.test' to='bob@b.test' id='h%d'/>", i)
	}
	if _, err := nc.Write([]byte(batch.String())); err != nil {
		t.Fatal(err)
	}
	r := xmlstream.NewReader(sc, xmlstream.Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	// Nine of the forty, two requests among them: more stays buffered.
	const handled = 9
	start := time.Now()
	for range handled {
		el, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		s, err := route.NewStanza(el, h.Context(), route.FromLocal)
		if err != nil {
			t.Fatal(err)
		}
		s.Source = r
		a.Router.Deliver(context.Background(), s)
	}
	if r.Buffered() == 0 {
		t.Fatal("nothing left buffered after nine stanzas")
	}
	// Nothing goes out until the reader wakes the writer, or the stream's
	// acknowledgement tick (50 ms after the first stanza) asks anyway.
	var got []string
	select {
	case s := <-b.Received:
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Fatalf("%s arrived %v after the first was handled, before its reader woke the writer", s.ID, d)
		}
		got = append(got, s.ID)
	case <-time.After(time.Until(start.Add(40 * time.Millisecond))):
	}
	r.Wake()
	for len(got) < handled {
		got = append(got, b.Expect(t, wait).ID)
	}
	for i, id := range got {
		if id != fmt.Sprint("h", i) {
			t.Fatalf("got %s, want h%d", id, i)
		}
	}
	waitFor(t, wait, "acknowledgements", acked)
}

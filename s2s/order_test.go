package s2s_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
	body := func(i int) string { return strings.Repeat(fmt.Sprint(i%10), i*131%3000) }
	type seen struct {
		id, kind, from, body string
	}
	got := make(chan seen, n)
	// One stream, one reading goroutine: the handler needs no lock, and
	// the test reads these once every stanza came through the channel.
	var kept []*route.Stanza
	ptrs := map[*route.Stanza]bool{}
	again := 0 // stanzas kept, then handed out again
	b.Router.Local = route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
		if slices.Contains(kept, s) {
			again++
		}
		ptrs[s] = true
		if strings.HasSuffix(s.ID, "7") {
			s.Own()
			kept = append(kept, s)
		}
		got <- seen{s.ID, s.Kind, s.From.String(), bodyOf(t, s.El.Raw)}
		return nil
	})
	go func() {
		for i := range n {
			a.Send(t, fmt.Sprintf("<message from='alice@a.test/%d' to='bob@b.test' id='q%d'><body>%s</body></message>", i, i, body(i)))
		}
	}()
	for i := range n {
		var s seen
		select {
		case s = <-got:
		case <-time.After(wait):
			t.Fatalf("stanza %d did not arrive", i)
		}
		if s.id != fmt.Sprint("q", i) || s.kind != "message" || s.from != fmt.Sprintf("alice@a.test/%d", i) || s.body != body(i) {
			t.Fatalf("stanza %d: id %s, %s from %s, body of %d bytes", i, s.id, s.kind, s.from, len(s.body))
		}
	}
	for _, s := range kept {
		var i int
		fmt.Sscanf(s.ID, "q%d", &i)
		if !strings.HasSuffix(s.ID, "7") || s.From.String() != fmt.Sprintf("alice@a.test/%d", i) || bodyOf(t, s.El.Raw) != body(i) {
			t.Fatalf("kept stanza %s changed: from %s, %d bytes", s.ID, s.From, len(s.El.Raw))
		}
	}
	if again > 0 {
		t.Fatalf("stanzas kept with Own were handed out again %d times", again)
	}
	if len(kept) != n/10 {
		t.Fatalf("%d stanzas kept, want %d", len(kept), n/10)
	}
	if len(ptrs) > n/2 {
		t.Fatalf("%d stanzas made for %d delivered: the ones let go were not reused", len(ptrs), n)
	}
}

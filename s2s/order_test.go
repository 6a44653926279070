package s2s_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

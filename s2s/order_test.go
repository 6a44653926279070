package s2s_test

import (
	"fmt"
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

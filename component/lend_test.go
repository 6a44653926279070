package component

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/lendtest"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// TestLendReuse: with Server.Lend, a stanza the Handler keeps with Own
// stays intact and is never handed out again; stanzas let go are whole
// while Deliver runs and are reused; an error reply to a lent stanza
// carries its id and content.
func TestLendReuse(t *testing.T) {
	// Under PoisonBorrowed (these tests' default) a stanza let go is
	// spoilt rather than reused.
	xmlstream.PoisonBorrowed(false)
	defer xmlstream.PoisonBorrowed(true)
	const n = 3000
	type seen struct {
		id, from, body string
	}
	got := make(chan seen, n)
	// One stream, one reading goroutine: the handler needs no lock, and
	// the test reads rec once every stanza came through the channel.
	var rec lendtest.Recorder
	h := route.HandlerFunc(func(_ context.Context, s *route.Stanza) error {
		rec.See(s)
		got <- seen{s.ID, s.From.String(), lendtest.BodyOf(t, s.El.Raw)}
		if strings.HasSuffix(s.ID, "00") {
			return stanza.New(stanza.ItemNotFound, "")
		}
		return nil
	})
	addr := startServer(t, &Server{Handler: h, Lend: true})
	c := mustDial(t, addr)
	from := func(i int) string { return fmt.Sprintf("bot@gw.example/%d", i) }
	// At most 200 in flight: the client's own queue is bounded.
	window := make(chan struct{}, 200)
	go func() {
		for i := range n {
			window <- struct{}{}
			if err := c.Send(fmt.Appendf(nil, "<message from='%s' to='juliet@example.com' id='q%d'><body>%s</body></message>", from(i), i, lendtest.Body(i))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range n {
		var s seen
		select {
		case s = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("stanza %d did not arrive", i)
		}
		<-window
		if s.id != fmt.Sprint("q", i) || s.from != from(i) || s.body != lendtest.Body(i) {
			t.Fatalf("stanza %d: id %s from %s, body of %d bytes", i, s.id, s.from, len(s.body))
		}
	}
	for i := 100; i < n; i += 100 {
		r, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != "error" || r.ID != fmt.Sprint("q", i) || r.To.String() != from(i) ||
			lendtest.BodyOf(t, r.El.Raw) != lendtest.Body(i) || !strings.Contains(string(r.El.Raw), "<item-not-found") {
			t.Fatalf("reply to q%d: %.300s", i, r.El.Raw)
		}
	}
	rec.Check(t, n, from)
}

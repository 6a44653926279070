package component

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
	body := func(i int) string { return strings.Repeat(fmt.Sprint(i%10), i*131%3000) }
	type seen struct {
		id, from, body string
	}
	got := make(chan seen, n)
	// One stream, one reading goroutine: the handler needs no lock, and
	// the test reads these once every stanza came through the channel.
	var kept []*route.Stanza
	ptrs := map[*route.Stanza]bool{}
	again := 0 // stanzas kept, then handed out again
	h := route.HandlerFunc(func(_ context.Context, s *route.Stanza) error {
		if slices.Contains(kept, s) {
			again++
		}
		ptrs[s] = true
		if strings.HasSuffix(s.ID, "7") {
			s.Own()
			kept = append(kept, s)
		}
		got <- seen{s.ID, s.From.String(), bodyOf(t, s.El.Raw)}
		if strings.HasSuffix(s.ID, "00") {
			return stanza.New(stanza.ItemNotFound, "")
		}
		return nil
	})
	addr := startServer(t, &Server{Handler: h, Lend: true})
	c := mustDial(t, addr)
	// At most 200 in flight: the client's own queue is bounded.
	window := make(chan struct{}, 200)
	go func() {
		for i := range n {
			window <- struct{}{}
			if err := c.Send(fmt.Appendf(nil, "<message from='bot@gw.example/%d' to='juliet@example.com' id='q%d'><body>%s</body></message>", i, i, body(i))); err != nil {
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
		if s.id != fmt.Sprint("q", i) || s.from != fmt.Sprintf("bot@gw.example/%d", i) || s.body != body(i) {
			t.Fatalf("stanza %d: id %s from %s, body of %d bytes", i, s.id, s.from, len(s.body))
		}
	}
	for i := 100; i < n; i += 100 {
		r, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != "error" || r.ID != fmt.Sprint("q", i) || r.To.String() != fmt.Sprintf("bot@gw.example/%d", i) ||
			bodyOf(t, r.El.Raw) != body(i) || !strings.Contains(string(r.El.Raw), "<item-not-found") {
			t.Fatalf("reply to q%d: %.300s", i, r.El.Raw)
		}
	}
	for _, s := range kept {
		var i int
		fmt.Sscanf(s.ID, "q%d", &i)
		if !strings.HasSuffix(s.ID, "7") || s.From.String() != fmt.Sprintf("bot@gw.example/%d", i) || bodyOf(t, s.El.Raw) != body(i) {
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

func bodyOf(t *testing.T, raw []byte) string {
	t.Helper()
	var m struct {
		Body string `xml:"body"`
	}
	if err := xml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("bad stanza %s: %v", raw, err)
	}
	return m.Body
}

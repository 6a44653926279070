// Package lendtest checks, from a handler's side, a stream that lends its
// stanzas (s2s.Server.Lend, component.Server.Lend): stanzas kept with Own
// are never handed out again and stay intact, and those let go are
// reused. It is for tests.
package lendtest

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/s2sd/s2sd/route"
)

// Body is the body of the i-th message of a test: a digit repeated, of a
// length that varies from 0 to 2,999 bytes.
func Body(i int) string { return strings.Repeat(fmt.Sprint(i%10), i*131%3000) }

// BodyOf returns the text of a message's <body/>.
func BodyOf(t testing.TB, raw []byte) string {
	t.Helper()
	var m struct {
		Body string `xml:"body"`
	}
	if err := xml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("bad stanza %s: %v", raw, err)
	}
	return m.Body
}

// Recorder sees the stanzas one stream lends to a handler, on that
// stream's reading goroutine (it has no lock), and keeps those whose id
// ends in 7 with Own: one in ten of ids q0, q1, ...
type Recorder struct {
	kept  []*route.Stanza
	seen  map[*route.Stanza]bool
	again int // stanzas kept, then handed out again
}

// See records s, handed to the handler, and keeps it when its id ends
// in 7.
func (r *Recorder) See(s *route.Stanza) {
	if slices.Contains(r.kept, s) {
		r.again++
	}
	if r.seen == nil {
		r.seen = map[*route.Stanza]bool{}
	}
	r.seen[s] = true
	if strings.HasSuffix(s.ID, "7") {
		s.Own()
		r.kept = append(r.kept, s)
	}
}

// Check fails t unless, of the n stanzas seen (ids q0 to q<n-1>, the
// i-th from from(i) with body Body(i)), the ones kept are intact and were
// never handed out again, and the others were reused: fewer Stanzas than
// half of n were handed out.
func (r *Recorder) Check(t testing.TB, n int, from func(i int) string) {
	t.Helper()
	for _, s := range r.kept {
		var i int
		fmt.Sscanf(s.ID, "q%d", &i)
		if !strings.HasSuffix(s.ID, "7") || s.From.String() != from(i) || BodyOf(t, s.El.Raw) != Body(i) {
			t.Fatalf("kept stanza %s changed: from %s, %d bytes", s.ID, s.From, len(s.El.Raw))
		}
	}
	if r.again > 0 {
		t.Fatalf("stanzas kept with Own were handed out again %d times", r.again)
	}
	if len(r.kept) != n/10 {
		t.Fatalf("%d stanzas kept, want %d", len(r.kept), n/10)
	}
	if len(r.seen) > n/2 {
		t.Fatalf("%d stanzas made for %d delivered: the ones let go were not reused", len(r.seen), n)
	}
}

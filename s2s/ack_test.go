package s2s_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/stream"
)

// TestAckAfterWritten: an inbound stream answers <r/> (XEP-0198) only
// once what it handled before is written out (AfterWritten), and reads on
// meanwhile; an answer whose stanzas were written out after those of a
// later <r/> is covered by that one's; stanzas that cannot be written out
// are not acknowledged, and the stream ends with resource-constraint, so
// that the peer sends them again.
func TestAckAfterWritten(t *testing.T) {
	waiting := make(chan func(error), 4)
	_, b, c, _, _ := replyWatchServer(t, func(s *s2s.Server) {
		s.AfterWritten = func(_ xmlstream.Source, done func(error)) { waiting <- done }
	})
	if !c.StreamManagement() {
		t.Fatal("stream management not enabled")
	}
	els := make(chan *xmlstream.Element, 16)
	go func() {
		defer close(els)
		for {
			el, err := s2s.ReadNext(c)
			if err != nil {
				return
			}
			els <- el
		}
	}()
	quiet := func(what string) {
		t.Helper()
		select {
		case el, ok := <-els:
			if ok {
				t.Fatalf("%s: got %s", what, el.Raw)
			}
			t.Fatalf("%s: the stream ended", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
	next := func() *xmlstream.Element {
		t.Helper()
		select {
		case el, ok := <-els:
			if !ok {
				t.Fatal("the stream ended")
			}
			return el
		case <-time.After(wait):
			t.Fatal("nothing came")
		}
		return nil
	}
	asked := func() func(error) {
		t.Helper()
		select {
		case done := <-waiting:
			return done
		case <-time.After(wait):
			t.Fatal("<r/> did not ask for the stanzas to be written out")
		}
		return nil
	}
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			c.SendRaw([]byte(msg("alice@a.test", "bob@b.test", fmt.Sprint("m", i))))
		}
		for i := from; i < to; i++ {
			if s := b.Expect(t, wait); s.ID != fmt.Sprint("m", i) {
				t.Fatalf("got %s, want m%d", s, i)
			}
		}
	}
	r := func() { c.SendRaw([]byte("<r xmlns='urn:xmpp:sm:3'/>")) }

	send(0, 3)
	r()
	first := asked()
	quiet("before the stanzas are written out")
	// The stream reads on while the answer waits.
	send(3, 5)
	r()
	second := asked()
	second(nil)
	if el := next(); el.Local != "a" || el.Attr("h") != "5" {
		t.Fatalf("got %s, want <a h='5'/>", el.Raw)
	}
	first(nil)
	quiet("an answer covered by a later one")
	r()
	asked()(io.ErrClosedPipe)
	el := next()
	if se, _ := stream.Parse(el.Raw); el.Local != "error" || se == nil || se.Condition != stream.ResourceConstraint {
		t.Fatalf("got %s, want the stream error resource-constraint", el.Raw)
	}
}

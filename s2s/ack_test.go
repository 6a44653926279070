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

// TestOneAckRequestAtATime: the pool asks for an acknowledgement
// (XEP-0198) once, and not again while the answer is awaited, however
// many stanzas it sends meanwhile, until a second has passed without
// one; the answers come, and then everything is acknowledged.
func TestOneAckRequestAtATime(t *testing.T) {
	waiting := make(chan func(error), 64)
	a, b, c, _, _ := replyWatchServer(t, func(s *s2s.Server) {
		s.AfterWritten = func(_ xmlstream.Source, done func(error)) { waiting <- done }
	})
	c.Close()           // the pool's stream alone
	a.Pool.AckEvery = 4 // the pool has not sent anything yet
	const n = 40
	for i := range n {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("m", i)))
	}
	for i := range n {
		if s := b.Expect(t, wait); s.ID != fmt.Sprint("m", i) {
			t.Fatalf("got %s, want m%d", s, i)
		}
	}
	asked := func(what string) func(error) {
		t.Helper()
		select {
		case done := <-waiting:
			return done
		case <-time.After(wait):
			t.Fatalf("no request for acknowledgement %s", what)
		}
		return nil
	}
	first := asked("for the first stanzas")
	firstAt := time.Now()
	// A request is asked again after a second unanswered: well before.
	select {
	case <-waiting:
		t.Fatalf("a second request while the first is awaited (%d stanzas sent, one request every 4)", n)
	case <-time.After(300 * time.Millisecond):
	}
	// Past the second, unanswered still: asked again, once.
	again := asked("again, a second after an unanswered one")
	if d := time.Since(firstAt); d < 900*time.Millisecond {
		t.Fatalf("asked again %v after an unanswered request, want a second", d)
	}
	first(nil)
	again(nil)
	for {
		select {
		case done := <-waiting:
			done(nil)
			continue
		case <-time.After(50 * time.Millisecond):
		}
		li := linkTo(a.Pool, "b.test")
		if li.Unacked == 0 && li.Queued == 0 {
			return
		}
		if time.Since(li.Oldest) > wait {
			t.Fatalf("%d stanzas still unacknowledged", li.Unacked)
		}
	}
}

// linkTo returns p's link to remote, or a zero LinkInfo when p has none.
func linkTo(p *s2s.Pool, remote string) s2s.LinkInfo {
	for _, li := range p.Links() {
		if li.Remote == remote {
			return li
		}
	}
	return s2s.LinkInfo{}
}

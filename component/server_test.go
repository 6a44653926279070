package component

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

const (
	testDomain = "gw.example"
	testSecret = "s3cret"
)

func testSecrets(domain string) (string, bool) {
	switch domain {
	case testDomain:
		return testSecret, true
	case "other.example":
		return "other", true
	}
	return "", false
}

// quietLogger discards logs unless -v. (Connections end after their test
// does, so it cannot be t.Log.)
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// startServer serves s on 127.0.0.1:0 until the test ends and returns the
// address.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	if s.Secret == nil {
		s.Secret = testSecrets
	}
	if s.Logger == nil {
		s.Logger = quietLogger(t)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// serve serves s on 127.0.0.1:0, through wrap when it is not nil, and
// returns the address and what Serve returns; the test ends s itself.
func serve(t *testing.T, s *Server, wrap func(net.Listener) net.Listener) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if wrap != nil {
		l = wrap(l)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	return addr, served
}

func dial(t *testing.T, addr, domain, secret string) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, domain, secret, WithLogger(quietLogger(t)))
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func mustDial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := dial(t, addr, testDomain, testSecret)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

// stanzas collects what a Server's Handler receives.
type stanzas struct {
	mu  sync.Mutex
	got []*route.Stanza
	ch  chan *route.Stanza
	err error // returned by Deliver
}

func newStanzas() *stanzas { return &stanzas{ch: make(chan *route.Stanza, 16)} }

func (s *stanzas) Deliver(_ context.Context, st *route.Stanza) error {
	s.mu.Lock()
	s.got = append(s.got, st)
	err := s.err
	s.mu.Unlock()
	s.ch <- st
	return err
}

func (s *stanzas) next(t *testing.T) *route.Stanza {
	t.Helper()
	select {
	case st := <-s.ch:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("no stanza reached the handler")
		return nil
	}
}

// nextErr reads from c until an error, which it returns.
func nextErr(t *testing.T, c *Conn) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Next(); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
		return nil
	}
}

func TestHandshake(t *testing.T) {
	var mu sync.Mutex
	var events []string
	var states []ConnState
	s := &Server{
		OnConnect:    func(d string) { mu.Lock(); events = append(events, "connect "+d); mu.Unlock() },
		OnDisconnect: func(d string) { mu.Lock(); events = append(events, "disconnect "+d); mu.Unlock() },
		ConnState:    func(_ net.Conn, st ConnState) { mu.Lock(); states = append(states, st); mu.Unlock() },
	}
	addr := startServer(t, s)
	c := mustDial(t, addr)
	if len(c.ID()) != 32 {
		t.Errorf("stream id %q: want 32 hex digits", c.ID())
	}
	if got := s.Connected(); len(got) != 1 || got[0] != testDomain {
		t.Errorf("Connected() = %v", got)
	}
	c2, err := dial(t, addr, "other.example", "other")
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID() == c.ID() {
		t.Error("two streams got the same id")
	}
	if got := strings.Join(s.Connected(), " "); got != "gw.example other.example" {
		t.Errorf("Connected() = %v", got)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	waitFor(t, func() bool { return len(s.Connected()) == 1 })
	c2.Close()
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) == 6
	})
	mu.Lock()
	defer mu.Unlock()
	// Each domain's OnConnect comes before its OnDisconnect; the two
	// domains' hooks may interleave (OnConnect may run just after the
	// client's Dial has returned).
	pos := map[string]int{}
	for i, e := range events {
		pos[e] = i + 1
	}
	if len(events) != 4 {
		t.Errorf("hooks: %v", events)
	}
	for _, d := range []string{"gw.example", "other.example"} {
		if c, dc := pos["connect "+d], pos["disconnect "+d]; c == 0 || dc == 0 || c > dc {
			t.Errorf("hooks for %s out of order: %v", d, events)
		}
	}
	n := map[ConnState]int{}
	for _, st := range states {
		n[st]++
	}
	if n[StateNew] != 2 || n[StateActive] != 2 || n[StateClosed] != 2 {
		t.Errorf("ConnState calls: %v", states)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHandshakeRefused checks the stream error Dial reports; the exact bytes
// on the wire are checked by the transcripts.
func TestHandshakeRefused(t *testing.T) {
	addr := startServer(t, &Server{})
	for _, tc := range []struct {
		name, domain, secret string
		want                 *stream.Error
	}{
		{"wrong secret", testDomain, "guess", stream.ErrNotAuthorized},
		{"other's secret", testDomain, "other", stream.ErrNotAuthorized},
		{"empty secret", testDomain, "", stream.ErrNotAuthorized},
		{"unknown domain", "unknown.example", testSecret, stream.ErrHostUnknown},
		{"not a domain", "user@gw.example", testSecret, stream.ErrHostUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, addr, tc.domain, tc.secret)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Dial: %v, want %v", err, tc.want.Condition)
			}
			var se *stream.Error
			if !errors.As(err, &se) || !se.Remote {
				t.Errorf("error %v is not a remote *stream.Error", err)
			}
		})
	}
}

func TestConflict(t *testing.T) {
	t.Run("replace", func(t *testing.T) {
		var mu sync.Mutex
		var events []string
		s := &Server{
			OnConnect:    func(d string) { mu.Lock(); events = append(events, "connect"); mu.Unlock() },
			OnDisconnect: func(d string) { mu.Lock(); events = append(events, "disconnect"); mu.Unlock() },
		}
		addr := startServer(t, s)
		old := mustDial(t, addr)
		cur := mustDial(t, addr)
		if err := nextErr(t, old); !errors.Is(err, stream.ErrConflict) {
			t.Fatalf("old stream ended with %v, want conflict", err)
		}
		deliverAndExpect(t, s, cur)
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(events, ","); got != "connect,disconnect,connect" {
			t.Errorf("hooks: %s", got)
		}
	})
	t.Run("refuse", func(t *testing.T) {
		s := &Server{Conflict: Refuse}
		addr := startServer(t, s)
		cur := mustDial(t, addr)
		if _, err := dial(t, addr, testDomain, testSecret); !errors.Is(err, stream.ErrConflict) {
			t.Fatalf("second Dial: %v, want conflict", err)
		}
		deliverAndExpect(t, s, cur)
	})
}

// deliverAndExpect delivers a message to testDomain and checks that c
// receives it.
func deliverAndExpect(t *testing.T, s *Server, c *Conn) {
	t.Helper()
	st, err := route.New([]byte(`<message from='a@example.net' to='bot@gw.example' id='x1'><body>hi</body></message>`), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), st); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got, err := c.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got.ID != "x1" {
		t.Errorf("received %s", got)
	}
}

func TestStanzaChecks(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want *stream.Error // nil: accepted
	}{
		{`<message from='gw.example' to='a@example.net'/>`, nil},
		{`<message from='bot@gw.example/r' to='a@example.net'/>`, nil},
		{`<presence from='GW.example' to='a@example.net'/>`, nil}, // domains compare after PRECIS
		{`<iq xmlns='jabber:client' type='get' id='1' from='gw.example' to='example.net'><ping xmlns='urn:xmpp:ping'/></iq>`, nil},
		{`<message from='evil.example' to='a@example.net'/>`, stream.ErrInvalidFrom},
		{`<message from='a@example.net' to='a@example.net'/>`, stream.ErrInvalidFrom},
		{`<message from='sub.gw.example' to='a@example.net'/>`, stream.ErrInvalidFrom},
		{`<message to='a@example.net'/>`, stream.ErrImproperAddressing},
		{`<message from='gw.example'/>`, stream.ErrImproperAddressing},
		{`<message from='' to='a@example.net'/>`, stream.ErrImproperAddressing},
		{`<message from='@gw.example' to='a@example.net'/>`, stream.ErrImproperAddressing},
		// Issue 19: the Bidi Rule only for right-to-left localparts.
		{`<message from='2ème@gw.example/r' to='1é@example.org'/>`, nil},
		{`<message from='1e@gw.example' to='2ème@example.fr'/>`, nil},
		{`<message from='1שלום@gw.example' to='a@example.net'/>`, stream.ErrImproperAddressing},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			h := newStanzas()
			addr := startServer(t, &Server{Handler: h})
			c := mustDial(t, addr)
			if err := c.Send([]byte(tc.raw)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if tc.want == nil {
				st := h.next(t)
				if st.Origin != route.FromComponent || st.El.Space != NS {
					t.Errorf("stanza %s: origin %v, namespace %s", st, st.Origin, st.El.Space)
				}
				return
			}
			if err := nextErr(t, c); !errors.Is(err, tc.want) {
				t.Fatalf("stream ended with %v, want %s", err, tc.want.Condition)
			}
		})
	}
}

func TestHandlerReceives(t *testing.T) {
	h := newStanzas()
	addr := startServer(t, &Server{Handler: h})
	c := mustDial(t, addr)
	raw := `<message from='bot@gw.example/x' to='juliet@example.com' type='chat' id='m1' xml:lang='en'><body>Hello &amp; welcome</body><x xmlns='urn:example:x'><y/></x></message>`
	if err := c.Send([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	st := h.next(t)
	if st.Kind != "message" || st.From.String() != "bot@gw.example/x" || st.To.String() != "juliet@example.com" ||
		st.Type != "chat" || st.ID != "m1" || st.Origin != route.FromComponent {
		t.Errorf("got %s origin %v", st, st.Origin)
	}
	if string(st.El.Raw) != raw {
		t.Errorf("raw\n%s\nwant\n%s", st.El.Raw, raw)
	}
	if st.Ctx.NS != NS {
		t.Errorf("context namespace %q", st.Ctx.NS)
	}
	// Reframed for a server-to-server stream it keeps its payload.
	out := st.AppendTo(nil, xmlstream.StreamContext{NS: xmlstream.NSServer})
	if !bytes.Equal(out, []byte(raw)) {
		t.Errorf("for s2s: %s", out)
	}
}

func TestHandlerErrorReply(t *testing.T) {
	h := newStanzas()
	h.err = stanza.New(stanza.ItemNotFound, "")
	addr := startServer(t, &Server{Handler: h})
	c := mustDial(t, addr)
	if err := c.Send([]byte(`<iq type='get' id='q1' from='gw.example' to='nobody@example.com'><query xmlns='urn:example'/></iq>`)); err != nil {
		t.Fatal(err)
	}
	h.next(t)
	st, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := `<iq from='nobody@example.com' to='gw.example' type='error' id='q1'><query xmlns='urn:example'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	if string(st.El.Raw) != want {
		t.Errorf("reply\n%s\nwant\n%s", st.El.Raw, want)
	}
}

// TestDeliver sends a stanza read on a jabber:server stream with xml:lang
// and a prefix bound on the header to a component: it arrives in the
// component namespace with its payload and language intact.
func TestDeliver(t *testing.T) {
	s := &Server{}
	addr := startServer(t, s)
	c := mustDial(t, addr)

	in := `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' xml:lang='fr' from='example.com' to='gw.example' version='1.0'>` +
		`<message from='juliet@example.com/balcony' to='romeo@gw.example' type='chat' id='m7'><body>Où es-tu ?</body><thread>t1</thread><db:x/><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>Où</p></body></html></message>`
	r := xmlstream.NewReader(strings.NewReader(in), xmlstream.Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	st, err := route.NewStanza(el, h.Context(), route.FromRemote)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), st); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := `<message xmlns:db='jabber:server:dialback' xml:lang='fr' from='juliet@example.com/balcony' to='romeo@gw.example' type='chat' id='m7'><body>Où es-tu ?</body><thread>t1</thread><db:x/><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>Où</p></body></html></message>`
	if string(got.El.Raw) != want {
		t.Errorf("component read\n%s\nwant\n%s", got.El.Raw, want)
	}
	if got.El.Space != NS || got.El.Attr("xml:lang") != "fr" || got.From.String() != "juliet@example.com/balcony" {
		t.Errorf("got %s in %s, lang %q", got, got.El.Space, got.El.Attr("xml:lang"))
	}
	var body struct {
		Body string `xml:"body"`
	}
	if err := got.El.Unmarshal(&body); err != nil || body.Body != "Où es-tu ?" {
		t.Errorf("body %q, %v", body.Body, err)
	}

	// An explicit jabber:server namespace on the stanza moves too.
	st2, err := route.New([]byte(`<iq xmlns='jabber:server' type='get' id='p' from='example.com' to='gw.example'><ping xmlns='urn:xmpp:ping'/></iq>`), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), st2); err != nil {
		t.Fatal(err)
	}
	got, err = c.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := `<iq xmlns='jabber:component:accept' type='get' id='p' from='example.com' to='gw.example'><ping xmlns='urn:xmpp:ping'/></iq>`; string(got.El.Raw) != want {
		t.Errorf("got %s", got.El.Raw)
	}
}

func TestDeliverNotConnected(t *testing.T) {
	s := &Server{}
	addr := startServer(t, s)
	st, err := route.New([]byte(`<message from='a@example.net' to='bot@other.example'/>`), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), st); !errors.Is(err, route.ErrNotConnected) {
		t.Fatalf("Deliver with nothing connected: %v", err)
	}
	c := mustDial(t, addr) // gw.example, not other.example
	if err := s.Deliver(context.Background(), st); !errors.Is(err, route.ErrNotConnected) {
		t.Fatalf("Deliver to another domain: %v", err)
	}
	c.Close()
	waitFor(t, func() bool { return len(s.Connected()) == 0 })
	st.To = st.To.Domain()
	if err := s.Deliver(context.Background(), st); !errors.Is(err, route.ErrNotConnected) {
		t.Fatalf("Deliver after disconnect: %v", err)
	}

	// Through a Router, the sender gets service-unavailable.
	var bounced []*route.Stanza
	var mu sync.Mutex
	rt := &route.Router{Logger: quietLogger(t), Local: route.HandlerFunc(func(_ context.Context, st *route.Stanza) error {
		mu.Lock()
		bounced = append(bounced, st)
		mu.Unlock()
		return nil
	})}
	rt.SetLocal("example.net")
	rt.SetComponent("other.example", s)
	rt.Deliver(context.Background(), st)
	if len(bounced) != 1 || !strings.Contains(string(bounced[0].El.Raw), "service-unavailable") {
		t.Errorf("bounces: %v", bounced)
	}
}

func TestDeliverSlowComponent(t *testing.T) {
	s := &Server{MaxPending: 4 << 10}
	addr := startServer(t, s)
	c := mustDial(t, addr)
	_ = c // never reads
	big := `<message from='a@example.net' to='gw.example'><body>` + strings.Repeat("x", 8<<10) + `</body></message>`
	st, err := route.New([]byte(big), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Deliver(context.Background(), st)
		if errors.Is(err, stanza.New(stanza.ResourceConstraint, "")) {
			return
		}
		if err != nil {
			t.Fatalf("Deliver: %v, want resource-constraint", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Deliver never reported a full queue")
		}
	}
}

// rawConn is a hand-driven component connection.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return nc
}

func TestHandshakeTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, send string
	}{
		{"silent", ""},
		{"header only", `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example'>`},
		{"half a header", `<stream:stream xmlns='jabber:component:accept' xmlns:str`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, &Server{HandshakeTimeout: 200 * time.Millisecond})
			nc := rawConn(t, addr)
			io.WriteString(nc, tc.send)
			start := time.Now()
			got, err := io.ReadAll(nc)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("closed after %v", d)
			}
			if !bytes.HasSuffix(got, []byte(`<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)) ||
				!bytes.HasPrefix(got, []byte(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept'`)) {
				t.Errorf("server sent %s", got)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	addr := startServer(t, &Server{IdleTimeout: 300 * time.Millisecond})
	c := mustDial(t, addr)
	// Keepalives keep it up.
	for range 4 {
		time.Sleep(100 * time.Millisecond)
		c.mu.Lock()
		c.w.Write([]byte(" "))
		c.mu.Unlock()
	}
	if err := nextErr(t, c); !errors.Is(err, stream.ErrConnectionTimeout) {
		t.Fatalf("idle stream ended with %v", err)
	}
}

func TestShutdown(t *testing.T) {
	var disconnected sync.WaitGroup
	disconnected.Add(1)
	var accepted sync.WaitGroup
	accepted.Add(2)
	s := &Server{
		Logger: quietLogger(t), Secret: testSecrets,
		OnDisconnect: func(string) { disconnected.Done() },
		ConnState: func(_ net.Conn, st ConnState) {
			if st == StateNew {
				accepted.Done()
			}
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	c := mustDial(t, l.Addr().String())
	// One connection still in its handshake.
	nc := rawConn(t, l.Addr().String())
	accepted.Wait()

	ended := make(chan error, 1)
	go func() { ended <- nextErr(t, c) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ended; !errors.Is(err, stream.ErrSystemShutdown) {
		t.Errorf("component stream ended with %v", err)
	}
	// The half-open connection gets a header and the error too; it had
	// lingerTimeout to close its side.
	got, _ := io.ReadAll(nc)
	if !bytes.HasSuffix(got, []byte("<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>the server is shutting down</text></stream:error></stream:stream>")) {
		t.Errorf("unauthenticated peer got %s", got)
	}
	if d := time.Since(start); d > lingerTimeout+time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	disconnected.Wait()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Error("listener still open")
	}
}

func TestShutdownContext(t *testing.T) {
	accepted := make(chan struct{}, 1)
	s := &Server{Logger: quietLogger(t), Secret: testSecrets, ConnState: func(_ net.Conn, st ConnState) {
		if st == StateNew {
			accepted <- struct{}{}
		}
	}}
	addr, _ := serve(t, s, nil)
	// A peer that never closes: Shutdown gives up at ctx's end.
	nc := rawConn(t, addr)
	io.WriteString(nc, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example'>`)
	<-accepted
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestLimits(t *testing.T) {
	addr := startServer(t, &Server{Limits: xmlstream.Limits{MaxStanza: 1024}})
	c := mustDial(t, addr)
	big := `<message from='gw.example' to='a@example.net'><body>` + strings.Repeat("x", 2048) + `</body></message>`
	if err := c.Send([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if err := nextErr(t, c); !errors.Is(err, stream.ErrPolicyViolation) {
		t.Fatalf("stream ended with %v, want policy-violation", err)
	}
}

// TestAfterWrittenSlowComponent: AfterWritten calls back only once what
// was delivered before it has been written to the component's socket: not
// while a component that does not read leaves it queued, and once it
// reads, with no error.
func TestAfterWrittenSlowComponent(t *testing.T) {
	s := &Server{MaxPending: 64 << 20}
	addr := startServer(t, s)
	c := mustDial(t, addr)
	body := strings.Repeat("x", 8<<10)
	st, err := route.New([]byte(`<message from='a@example.net' to='gw.example'><body>`+body+`</body></message>`), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	// More than the socket buffers of both ends take.
	const n = 3000
	for i := range n {
		if err := s.Deliver(context.Background(), st); err != nil {
			t.Fatalf("Deliver %d: %v", i, err)
		}
	}
	done := make(chan error, 1)
	s.AfterWritten(func(err error) { done <- err })
	select {
	case err := <-done:
		t.Fatalf("called back (%v) while the component reads nothing", err)
	case <-time.After(200 * time.Millisecond):
	}
	for i := range n {
		if _, err := c.Next(); err != nil {
			t.Fatalf("stanza %d: %v", i, err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not called back after the component read everything")
	}
	// Nothing queued: at once.
	s.AfterWritten(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestQuietStream: a component stream quiet for releaseAfter waits
// without a read buffer of its own; stanzas that come after, whole or in
// pieces separated by more quiet, arrive intact, and the idle timeout
// still counts from the last stanza.
func TestQuietStream(t *testing.T) {
	defer func(d time.Duration) { releaseAfter = d }(releaseAfter)
	releaseAfter = 30 * time.Millisecond
	h := newStanzas()
	addr := startServer(t, &Server{Handler: h, IdleTimeout: 2 * time.Second})
	c := mustDial(t, addr)
	msg := func(id string) string {
		return `<message from='bot@gw.example' to='juliet@example.com' id='` + id + `'><body>` + strings.Repeat("é", 200) + `</body></message>`
	}
	send := func(b string) {
		t.Helper()
		c.mu.Lock()
		err := c.w.Write([]byte(b))
		c.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		time.Sleep(3 * releaseAfter)
		id := fmt.Sprint("q", i)
		m := msg(id)
		// Cut in the middle of a character, and quiet in between.
		send(m[:101])
		time.Sleep(3 * releaseAfter)
		send(m[101:])
		if st := h.next(t); st.ID != id || string(st.El.Raw) != m {
			t.Fatalf("got %s: %q", st, st.El.Raw)
		}
	}
	start := time.Now()
	if err := nextErr(t, c); !errors.Is(err, stream.ErrConnectionTimeout) {
		t.Fatalf("idle stream ended with %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("idle timeout of 2s fired %v after the last stanza", d)
	}
}

// parked counts the parked component streams of s: those no goroutine
// waits for (deadline.Conn.Park), and those whose goroutine waits for the
// socket to be readable (serverConn.resume), which only happens where
// there is no epoll.
func parked(s *Server) (noGoroutine, waiting int) {
	s.mu.Lock()
	for c := range s.conns {
		if c.wc.Parked() {
			noGoroutine++
		}
	}
	s.mu.Unlock()
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	return noGoroutine, strings.Count(string(buf[:n]), "component.(*serverConn).resume(")
}

// parkedOnce reports whether s has exactly one parked stream, with no
// goroutine waiting for it where there is epoll.
func parkedOnce(s *Server) bool {
	free, waiting := parked(s)
	if runtime.GOOS == "linux" {
		return free == 1 && waiting == 0
	}
	return free+waiting == 1
}

// TestParked: a quiet component stream parks, its goroutine ended and,
// where there is epoll, none waiting on the socket, and wakes for the next stanza, whole or
// in pieces, as often as it goes quiet again; a shutdown ends parked
// streams like the others.
func TestParked(t *testing.T) {
	defer func(d time.Duration) { releaseAfter = d }(releaseAfter)
	releaseAfter = 30 * time.Millisecond
	h := &stanzas{ch: make(chan *route.Stanza, 16)}
	s := &Server{Handler: h, Logger: quietLogger(t), Secret: testSecrets}
	addr, served := serve(t, s, nil)
	c := mustDial(t, addr)
	waitFor(t, func() bool { return parkedOnce(s) })
	for i := range 3 {
		id := fmt.Sprint("p", i)
		raw := `<message from='bot@gw.example' to='juliet@example.com' id='` + id + `'><body>` + strings.Repeat("é", 100) + `</body></message>`
		c.mu.Lock()
		c.w.Write([]byte(raw[:50]))
		c.mu.Unlock()
		time.Sleep(3 * releaseAfter)
		c.mu.Lock()
		c.w.Write([]byte(raw[50:]))
		c.mu.Unlock()
		if st := h.next(t); st.ID != id || string(st.El.Raw) != raw {
			t.Fatalf("got %s: %q", st, st.El.Raw)
		}
		waitFor(t, func() bool { return parkedOnce(s) })
	}
	ended := make(chan error, 1)
	go func() { ended <- nextErr(t, c) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ended; !errors.Is(err, stream.ErrSystemShutdown) {
		t.Errorf("parked stream ended with %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if free, waiting := parked(s); free+waiting != 0 {
		t.Errorf("%d streams still parked after the shutdown", free+waiting)
	}
}

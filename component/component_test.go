package component

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// TestComponentReconnect runs a Component against a server that shuts down
// and comes back on the same address.
func TestComponentReconnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	fromComponent := newStanzas()
	s1 := &Server{Secret: testSecrets, Logger: quietLogger(t), Handler: fromComponent}
	go s1.Serve(l)

	connected := make(chan *Conn, 4)
	disconnected := make(chan error, 4)
	received := make(chan *route.Stanza, 4)
	c := &Component{
		Addr: addr, Domain: testDomain, Secret: testSecret,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: quietLogger(t),
		Handler: route.HandlerFunc(func(_ context.Context, st *route.Stanza) error {
			received <- st
			if st.Kind == "iq" {
				return stanza.New(stanza.FeatureNotImplemented, "")
			}
			return nil
		}),
		OnConnect:    func(c *Conn) { connected <- c },
		OnDisconnect: func(err error) { disconnected <- err },
	}
	if err := c.Send([]byte(`<message from='gw.example' to='a@example.net'/>`)); !errors.Is(err, route.ErrNotConnected) {
		t.Errorf("Send before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()

	first := waitConn(t, connected)
	if err := c.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	exchange(t, s1, c, fromComponent, received)

	// Restart the server on the same address.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := s1.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-disconnected:
		if err == nil {
			t.Error("OnDisconnect(nil) for a server shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnDisconnect")
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	fromComponent = newStanzas()
	s2 := &Server{Secret: testSecrets, Logger: quietLogger(t), Handler: fromComponent}
	go s2.Serve(l2)
	defer s2.Close()
	second := waitConn(t, connected)
	if second.ID() == first.ID() {
		t.Error("same stream after a restart")
	}
	exchange(t, s2, c, fromComponent, received)

	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	if c.Conn() != nil {
		t.Error("Conn() after Run returned")
	}
	waitFor(t, func() bool { return len(s2.Connected()) == 0 })
}

func waitConn(t *testing.T, ch chan *Conn) *Conn {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the component did not connect")
		return nil
	}
}

// exchange checks stanzas both ways between s and c.
func exchange(t *testing.T, s *Server, c *Component, fromComponent *stanzas, received chan *route.Stanza) {
	t.Helper()
	waitFor(t, func() bool { return len(s.Connected()) == 1 })
	if err := c.Send([]byte(`<message from='bot@gw.example' to='a@example.net'><body>up</body></message>`)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if st := fromComponent.next(t); st.From.String() != "bot@gw.example" {
		t.Errorf("server got %s", st)
	}
	iq, err := route.New([]byte(`<iq type='get' id='v1' from='a@example.net/r' to='gw.example'><query xmlns='jabber:iq:version'/></iq>`), xmlstream.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), iq); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	select {
	case st := <-received:
		if st.ID != "v1" || st.El.Space != NS {
			t.Errorf("component got %s in %s", st, st.El.Space)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the component's handler got nothing")
	}
	// The handler's stanza error comes back as the reply.
	reply := fromComponent.next(t)
	if reply.Type != "error" || reply.ID != "v1" || reply.To.String() != "a@example.net/r" || reply.From.String() != "gw.example" {
		t.Errorf("reply %s", reply)
	}
}

func TestConnSendValidates(t *testing.T) {
	addr := startServer(t, &Server{})
	c := mustDial(t, addr)
	for _, raw := range []string{
		``,
		`<message from='gw.example' to='a@example.net'>`,
		`<message from='gw.example' to='a@example.net'/><message/>`,
		`<handshake/>`,
		`<x:message xmlns:x='urn:other' from='gw.example' to='a@example.net'/>`,
		`<message from='gw.example' to='a@example.net'><!-- c --></message>`,
	} {
		if err := c.Send([]byte(raw)); err == nil {
			t.Errorf("Send(%q) accepted", raw)
		}
	}
	c.Close()
	if err := c.Send([]byte(`<message from='gw.example' to='a@example.net'/>`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if _, err := c.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
}

func TestDialContext(t *testing.T) {
	// A server that accepts and says nothing: the context bounds Dial.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, l.Addr().String(), testDomain, testSecret)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial took %v", d)
	}
}

// TestClientTranscript checks the bytes Dial writes, over net.Pipe.
func TestClientTranscript(t *testing.T) {
	cc, sc := net.Pipe()
	defer sc.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := NewClientConn(ctx, cc, testDomain, testSecret)
		if err == nil {
			err = c.Send([]byte(`<message from='gw.example' to='a@example.net'/>`))
		}
		done <- err
	}()
	sc.SetDeadline(time.Now().Add(5 * time.Second))
	expect := func(want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := readFull(sc, got); err != nil || string(got) != want {
			t.Fatalf("client wrote %q (%v)\nwant %q", got, err, want)
		}
	}
	expect(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example'>`)
	sc.Write([]byte(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='gw.example' id='3BF96D32'>`))
	// XEP-0114 §3, with the stream id of its example.
	expect(`<handshake>` + string(handshakeDigest("3BF96D32", testSecret)) + `</handshake>`)
	sc.Write([]byte(`<handshake/>`))
	expect(`<message from='gw.example' to='a@example.net'/>`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestHandshakeDigest(t *testing.T) {
	// sha1("3BF96D32" + "s3cret"), computed independently:
	// printf '3BF96D32s3cret' | sha1sum
	got := string(handshakeDigest("3BF96D32", "s3cret"))
	if got != testDigest {
		t.Errorf("digest %s, want %s", got, testDigest)
	}
	if !checkHandshake([]byte(" "+testDigest+"\n"), "3BF96D32", "s3cret") {
		t.Error("whitespace around the digest refused")
	}
	if checkHandshake([]byte(testDigest[:39]), "3BF96D32", "s3cret") {
		t.Error("short digest accepted")
	}
}

const testDigest = "a984b871214a298f0f743fcd25f99b10838ba12b"

// TestComponentFailover: a component given several servers (the nodes of
// a cluster) moves to the next when its server stops, and carries stanzas
// there.
func TestComponentFailover(t *testing.T) {
	var addrs []string
	var servers []*Server
	var from []*stanzas
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		st := newStanzas()
		s := &Server{Secret: testSecrets, Logger: quietLogger(t), Handler: st}
		go s.Serve(l)
		t.Cleanup(func() { s.Close() })
		servers, from = append(servers, s), append(from, st)
	}
	connected := make(chan *Conn, 4)
	received := make(chan *route.Stanza, 4)
	c := &Component{
		Addr: addrs[0], Addrs: addrs[1:], Domain: testDomain, Secret: testSecret,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: quietLogger(t),
		Handler: route.HandlerFunc(func(_ context.Context, st *route.Stanza) error {
			received <- st
			if st.Kind == "iq" {
				return stanza.New(stanza.FeatureNotImplemented, "")
			}
			return nil
		}),
		OnConnect: func(c *Conn) { connected <- c },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	waitConn(t, connected)
	exchange(t, servers[0], c, from[0], received)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	servers[0].Shutdown(sctx)
	waitConn(t, connected)
	exchange(t, servers[1], c, from[1], received)
}

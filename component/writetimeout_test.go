package component

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
)

// smallSendBuffers accepts connections with a small kernel send buffer, so
// that a component that stops reading blocks the server's writes after
// kilobytes rather than megabytes.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return nc, err
}

// smallReceiveBuffers is a dialer whose connections have a small kernel
// receive buffer.
var smallReceiveBuffers = &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
	var err error
	rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
	})
	return err
}}

// bounces counts what a Server's Handler receives: the bounces of stanzas
// its components did not take.
type bounces struct {
	mu  sync.Mutex
	ids map[string]int
	bad []string
}

func (b *bounces) Deliver(_ context.Context, st *route.Stanza) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st.Type != "error" || !strings.Contains(string(st.El.Raw), "service-unavailable") {
		b.bad = append(b.bad, string(st.El.Raw))
	}
	b.ids[st.ID]++
	return nil
}

func (b *bounces) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ids)
}

// writeTimeoutServer serves s on loopback with small send buffers and
// connects a component to it with small receive buffers.
func writeTimeoutServer(t *testing.T, s *Server) *Conn {
	t.Helper()
	s.Secret, s.Logger = testSecrets, quietLogger(t)
	addr, _ := serve(t, s, func(l net.Listener) net.Listener { return smallSendBuffers{l} })
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, testDomain, testSecret, WithDialer(smallReceiveBuffers), WithLogger(quietLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitFor(t, func() bool { return len(s.Connected()) == 1 })
	return c
}

// deliverN delivers n 8 KiB messages with ids prefix0…, and fails the test
// on any error.
func deliverN(t *testing.T, s *Server, prefix string, n int) {
	t.Helper()
	body := strings.Repeat("x", 8<<10)
	for i := range n {
		st, err := route.New([]byte(fmt.Sprintf("<message from='a@remote.example' to='bot@%s' id='%s%d'><body>%s</body></message>", testDomain, prefix, i, body)), xmlstream.NSServer)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Deliver(context.Background(), st); err != nil {
			t.Fatalf("Deliver %s%d: %v", prefix, i, err)
		}
	}
}

// TestWriteTimeout: a component that stops reading is disconnected once
// the server's writes to it have made no progress for the write timeout,
// and every stanza delivered to it is either among what it can still read
// or bounced to its sender with service-unavailable: none lost, none
// twice. Before that, the stream stays up however long the component
// takes, as long as it keeps reading.
func TestWriteTimeout(t *testing.T) {
	const wt = 300 * time.Millisecond
	t.Run("stops reading", func(t *testing.T) {
		h := &bounces{ids: map[string]int{}}
		down := make(chan time.Time, 1)
		s := &Server{Handler: h, WriteTimeout: wt, MaxPending: 64 << 20, OnDisconnect: func(string) { down <- time.Now() }}
		c := writeTimeoutServer(t, s)
		const n = 200 // 1.6 MiB: far more than the buffers hold
		deliverN(t, s, "m", n)
		start := time.Now()
		var at time.Time
		select {
		case at = <-down:
		case <-time.After(10 * time.Second):
			t.Fatal("a component that reads nothing is still connected 10s later")
		}
		t.Logf("disconnected %v after the last delivery", at.Sub(start).Round(time.Millisecond))
		// What the component can still read, then the end of the
		// connection (no </stream:stream>: it was not reading).
		got := map[string]int{}
		var err error
		for {
			var st *route.Stanza
			if st, err = c.Next(); err != nil {
				break
			}
			got[st.ID]++
		}
		waitFor(t, func() bool { return h.count()+len(got) >= n })
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.bad) > 0 {
			t.Fatalf("the sender got %s, want service-unavailable", h.bad[0])
		}
		for i := range n {
			id := fmt.Sprint("m", i)
			if got[id]+h.ids[id] != 1 {
				t.Errorf("%s: read %d times by the component, bounced %d times", id, got[id], h.ids[id])
			}
		}
		if len(h.ids) == 0 {
			t.Fatal("nothing bounced: the writer never blocked")
		}
		t.Logf("%d read by the component, %d bounced; the component's read ended with %v", len(got), len(h.ids), err)
	})
	t.Run("reads slowly", func(t *testing.T) {
		h := &bounces{ids: map[string]int{}}
		s := &Server{Handler: h, WriteTimeout: wt, MaxPending: 64 << 20}
		c := writeTimeoutServer(t, s)
		// Quiet for longer than the timeout first: an old deadline must
		// not fail the next write.
		time.Sleep(2 * wt)
		const n = 240 // read 8 at a time, wt/6 apart: about 5 write timeouts
		deliverN(t, s, "s", n)
		for i := range n {
			if i%8 == 0 {
				time.Sleep(wt / 6)
			}
			st, err := c.Next()
			if err != nil {
				t.Fatalf("after %d stanzas: %v", i, err)
			}
			if want := fmt.Sprint("s", i); st.ID != want {
				t.Fatalf("got %s, want %s", st.ID, want)
			}
		}
		if len(s.Connected()) != 1 || h.count() != 0 {
			t.Fatalf("connected %v, %d bounced", s.Connected(), h.count())
		}
	})
}

// TestClientWriteTimeout: a Conn whose server stops reading ends its
// stream once a write has made no progress for the write timeout: Next
// returns the write's deadline error and Send then fails with ErrClosed.
func TestClientWriteTimeout(t *testing.T) {
	cc, sc := net.Pipe() // no buffer: a write waits for the reader
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		buf := make([]byte, 512)
		sc.Read(buf) // the header
		sc.Write([]byte(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='gw.example' id='3BF96D32'>`))
		sc.Read(buf) // the handshake
		sc.Write([]byte(`<handshake/>`))
		// Then reads nothing.
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const wt = 200 * time.Millisecond
	c, err := NewClientConn(ctx, cc, testDomain, testSecret, WithWriteTimeout(wt), WithLogger(quietLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Send([]byte(`<message from='gw.example' to='a@example.net'/>`)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Next()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Next: %v, want the write's deadline error", err)
	}
	if d := time.Since(start); d < wt/2 || d > 5*time.Second {
		t.Fatalf("the stream ended %v after the write, with a write timeout of %v", d, wt)
	}
	if err := c.Send([]byte(`<message from='gw.example' to='a@example.net'/>`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after the end: %v, want ErrClosed", err)
	}
}

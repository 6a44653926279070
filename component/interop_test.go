package component

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stream"
)

// TestProsody connects to a real Prosody's component port as
// gw.prosody.test: the handshake succeeds with the right secret and fails
// with not-authorized otherwise, and stanzas flow both ways.
func TestProsody(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test")
	}
	// PROSODY_DIR=/some/dir keeps Prosody's work directory (and log).
	p := interop.StartProsody(t, interop.ProsodyOptions{Dir: os.Getenv("PROSODY_DIR")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("wrong secret", func(t *testing.T) {
		_, err := Dial(ctx, p.ComponentAddr(), p.ComponentName, "not-the-secret", WithLogger(quietLogger(t)))
		if !errors.Is(err, stream.ErrNotAuthorized) {
			t.Fatalf("Dial: %v, want not-authorized", err)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		_, err := Dial(ctx, p.ComponentAddr(), "nope."+p.Domain, "secret", WithLogger(quietLogger(t)))
		if !errors.Is(err, stream.ErrHostUnknown) {
			t.Fatalf("Dial: %v, want host-unknown", err)
		}
	})
	t.Run("handshake", func(t *testing.T) {
		c, err := Dial(ctx, p.ComponentAddr(), p.ComponentName, p.ComponentSecret, WithLogger(quietLogger(t)))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if c.ID() == "" {
			t.Error("no stream id")
		}
		// Prosody's own services answer the component: XEP-0199 ping.
		ping := `<iq type='get' id='ping1' from='` + p.ComponentName + `' to='` + p.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`
		if err := c.Send([]byte(ping)); err != nil {
			t.Fatal(err)
		}
		st := nextStanza(t, c)
		if st.Kind != "iq" || st.Type != "result" || st.ID != "ping1" || st.From.String() != p.Domain {
			t.Errorf("ping answered with %s: %s", st, st.El.Raw)
		}
		// Prosody routes a disco#info request from the component and the
		// component's reply back; here a stanza to an unknown user is bounced.
		msg := `<message type='chat' id='m1' from='bot@` + p.ComponentName + `' to='nobody@` + p.Domain + `'><body>hi</body></message>`
		if err := c.Send([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		st = nextStanza(t, c)
		if st.Type != "error" || st.ID != "m1" || st.To.String() != "bot@"+p.ComponentName {
			t.Errorf("message answered with %s", st.El.Raw)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Run("component runner", func(t *testing.T) {
		connected := make(chan *Conn, 1)
		comp := &Component{
			Addr: p.ComponentAddr(), Domain: p.ComponentName, Secret: p.ComponentSecret,
			Logger:    quietLogger(t),
			OnConnect: func(c *Conn) { connected <- c },
		}
		rctx, rcancel := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- comp.Run(rctx) }()
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("Component did not connect to Prosody")
		}
		rcancel()
		if err := <-ran; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		// The clean close shows in Prosody's log.
		waitLog(t, p, "component disconnected", "Disconnected", "closed")
	})
}

func nextStanza(t *testing.T, c *Conn) *route.Stanza {
	t.Helper()
	type res struct {
		st  *route.Stanza
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, err := c.Next()
		ch <- res{st, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.st
	case <-time.After(10 * time.Second):
		t.Fatal("no stanza from Prosody")
		return nil
	}
}

// waitLog waits until prosody.log holds one of the strings, logging (not
// failing) when it never does: log wording varies between versions.
func waitLog(t *testing.T, p *interop.Prosody, any ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		l := p.Log()
		for _, s := range any {
			if strings.Contains(l, s) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("prosody.log never said any of %q", any)
}

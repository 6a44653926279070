package component

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
)

// TestDisconnectBouncesUnwritten: a component that vanishes (TCP reset)
// while stanzas wait in its write queue gets none of them silently lost:
// every stanza the connection did not take comes back to its sender as
// service-unavailable, with its content, and none is bounced twice.
func TestDisconnectBouncesUnwritten(t *testing.T) {
	h := &stanzas{ch: make(chan *route.Stanza, 1000)}
	s := &Server{Handler: h, MaxPending: 64 << 20}
	addr := startServer(t, s)
	c := mustDial(t, addr) // never reads
	waitFor(t, func() bool { return len(s.Connected()) == 1 })
	body := strings.Repeat("x", 32<<10)
	const n = 400 // 12.8 MiB: more than the kernel buffers on loopback
	ctx := xmlstream.StreamContext{NS: xmlstream.NSServer}
	for i := range n {
		raw := fmt.Sprintf("<message from='a@remote.example/r' to='bot@%s' id='m%d'><body>%s</body></message>", testDomain, i, body)
		el, err := xmlstream.ParseElement([]byte(raw), ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := route.NewStanza(el, ctx, route.FromRemote)
		if err := s.Deliver(context.Background(), st); err != nil {
			t.Fatalf("deliver %d: %v", i, err)
		}
	}
	tc := c.nc.(*net.TCPConn)
	tc.SetLinger(0)
	tc.Close()
	bounced := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for quiet := false; !quiet; {
		select {
		case st := <-h.ch:
			if st.Type != "error" || !strings.Contains(string(st.El.Raw), "service-unavailable") {
				t.Fatalf("handler got %s", st.El.Raw)
			}
			// The bounce carries the original content, parsed from the
			// bytes as they were queued on the dead connection.
			if !strings.Contains(string(st.El.Raw), "<body>"+body+"</body>") {
				t.Fatalf("bounce of %s without the original body", st.ID)
			}
			if bounced[st.ID] {
				t.Fatalf("%s bounced twice", st.ID)
			}
			bounced[st.ID] = true
		case <-time.After(500 * time.Millisecond):
			quiet = len(bounced) > 0
		case <-deadline:
			t.Fatal("no bounce")
		}
	}
	t.Logf("%d of %d stanzas were still queued and came back", len(bounced), n)
	// What was bounced is the tail of what was sent, in order.
	first := n - len(bounced)
	for i := first; i < n; i++ {
		if !bounced[fmt.Sprintf("m%d", i)] {
			t.Fatalf("m%d not bounced though m%d was", i, n-1)
		}
	}
}

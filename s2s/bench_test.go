package s2s_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// BenchmarkPoolRelay sends 100-byte messages from a.test to b.test, 500 in
// flight, over one stream (STARTTLS, dialback, XEP-0198 acknowledgements):
// the sending pool's queue, in-flight window and acknowledgements, TLS
// both ways, and the receiving server's reader and router, in one process.
// An operation is one message, parsed on a (as a component's would be),
// routed, sent, read and routed on b.
func BenchmarkPoolRelay(b *testing.B) {
	dns := s2stest.NewDNS(b)
	quiet := slog.New(slog.DiscardHandler)
	sa := s2stest.NewServer(b, dns, "a.test", s2stest.Options{Logger: quiet})
	sb := s2stest.NewServer(b, dns, "b.test", s2stest.Options{Logger: quiet})
	body := strings.Repeat("x", 100)
	raws := make([][]byte, 1000)
	for i := range raws {
		raws[i] = []byte("<message from='alice@a.test/x' to='bob@b.test' type='chat' id='m" + strconv.Itoa(i) + "'><body>" + body + "</body></message>")
	}
	ctx := context.Background()
	send := func(i int) {
		st, err := route.New(raws[i%len(raws)], "jabber:server")
		if err != nil {
			b.Fatal(err)
		}
		sa.Router.Deliver(ctx, st)
	}
	recv := func() {
		select {
		case <-sb.Received:
		case <-time.After(wait):
			b.Fatal("nothing arrived")
		}
	}
	// The stream comes up outside the measurement.
	send(0)
	recv()
	const window = 500
	b.SetBytes(int64(len(raws[0])))
	b.ReportAllocs()
	b.ResetTimer()
	inflight := 0
	for i := 0; i < b.N; i++ {
		if inflight == window {
			recv()
			inflight--
		}
		send(i)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		recv()
	}
}

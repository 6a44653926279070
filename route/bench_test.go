package route_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
)

// sink writes stanzas the way a stream writer does: reframed, appended to a
// buffer.
type sink struct{ buf []byte }

func (s *sink) Deliver(_ context.Context, st *route.Stanza) error {
	s.buf = st.AppendTo(s.buf[:0], xmlstream.StreamContext{NS: xmlstream.NSComponent})
	return nil
}

// BenchmarkRelay reads one stanza from a server stream, routes it, and
// writes it for a component stream: the whole relay path of one hop.
func BenchmarkRelay(b *testing.B) {
	for _, size := range []int{100, 4096} {
		b.Run(map[int]string{100: "100B", 4096: "4KiB"}[size], func(b *testing.B) {
			msg := "<message from='juliet@capulet.example/balcony' to='romeo@bot.montague.example' type='chat' id='m1'><body>" + strings.Repeat("x", size) + "</body></message>"
			hdr := "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
			in := []byte(hdr + strings.Repeat(msg, 1000))
			out := &sink{}
			r := &route.Router{Local: out, Remote: out}
			r.SetComponent("bot.montague.example", out)
			ctx := context.Background()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			var rd *xmlstream.Reader
			var sctx xmlstream.StreamContext
			for b.Loop() {
				if n%1000 == 0 {
					rd = xmlstream.NewReader(bytes.NewReader(in), xmlstream.Limits{})
					h, _ := rd.ReadHeader()
					sctx = h.Context()
				}
				n++
				el, err := rd.Next()
				if err != nil {
					b.Fatal(err)
				}
				s, err := route.NewStanza(el, sctx, route.FromRemote)
				if err != nil {
					b.Fatal(err)
				}
				r.Deliver(ctx, s)
			}
		})
	}
}

// BenchmarkRoute builds a stanza from an element already read and routes
// it, on every core at once, as the reading goroutines of several streams
// do: address lookups and the routing table, without the reader.
func BenchmarkRoute(b *testing.B) {
	ctx := xmlstream.StreamContext{NS: xmlstream.NSServer}
	el, err := xmlstream.ParseElement([]byte("<message from='juliet@capulet.example/balcony' to='romeo@bot.montague.example' type='chat' id='m1'><body>x</body></message>"), ctx)
	if err != nil {
		b.Fatal(err)
	}
	var none route.HandlerFunc = func(context.Context, *route.Stanza) error { return nil }
	r := &route.Router{Local: none, Remote: none}
	r.SetLocal("montague.example")
	r.SetComponent("bot.montague.example", none)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := route.NewStanza(el, ctx, route.FromRemote)
			if err != nil {
				b.Fatal(err)
			}
			r.Deliver(context.Background(), s)
		}
	})
}

// BenchmarkQueueFromComponent reads a component's 100-byte messages and
// keeps what an outbound queue keeps of each until it is acknowledged:
// "copied" as a component stream that copies every stanza, its Stanza,
// Element and bytes all kept; "lent" as one that lends (Server.Lend),
// the stanza reused and its bytes alone copied (KeepBytes).
func BenchmarkQueueFromComponent(b *testing.B) {
	msg := "<message from='bot@gw.example/x' to='romeo@montague.example' type='chat' id='m1'><body>" + strings.Repeat("x", 100) + "</body></message>"
	hdr := "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>"
	in := []byte(hdr + strings.Repeat(msg, 1000))
	server := xmlstream.StreamContext{NS: xmlstream.NSServer}
	for _, lent := range []bool{false, true} {
		b.Run(map[bool]string{false: "copied", true: "lent"}[lent], func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			var rd *xmlstream.Reader
			var sctx xmlstream.StreamContext
			var spare *route.Stanza
			queue := make([][]byte, 1000) // as many kept as in a window
			var stanzas []*route.Stanza   // what the copied queue keeps
			n := 0
			for b.Loop() {
				if n%1000 == 0 {
					rd = xmlstream.NewReader(bytes.NewReader(in), xmlstream.Limits{})
					rd.SetBorrow(lent)
					h, _ := rd.ReadHeader()
					sctx = h.Context()
					stanzas = stanzas[:0]
				}
				el, err := rd.Next()
				if err != nil {
					b.Fatal(err)
				}
				if lent {
					s := spare
					if s == nil {
						s = new(route.Stanza)
					}
					if err := s.Init(el, sctx, route.FromComponent); err != nil {
						b.Fatal(err)
					}
					queue[n%1000] = s.KeepBytes(server)
					if s.LetGo(el) {
						spare = s
					}
				} else {
					s, err := route.NewStanza(el, sctx, route.FromComponent)
					if err != nil {
						b.Fatal(err)
					}
					queue[n%1000] = s.Reframe(server)
					stanzas = append(stanzas, s)
				}
				n++
			}
		})
	}
}

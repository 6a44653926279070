package s2s_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// FuzzInboundStream: whatever a peer sends after its stream header, before
// TLS, the server neither panics nor writes anything but a well-formed
// stream back (up to <proceed/>, after which TLS bytes follow).
func FuzzInboundStream(f *testing.F) {
	for _, s := range []string{
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
		`<db:result from='a.example' to='b.example'>abc</db:result>`,
		`<message from='a@a.example' to='b@b.example'><body>hi</body></message>`,
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`,
		`<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='b.example' version='1.0'>`,
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + "\x16\x03\x01\x00\x05hello",
		`</stream:stream>`,
		`<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>`,
	} {
		f.Add([]byte(s))
	}
	cert := s2stest.SelfSigned(f, "b.example")
	srv := &s2s.Server{
		Hosted:             func(d string) bool { return d == "b.example" },
		GetCertificate:     func(string) (*tls.Certificate, error) { return &cert, nil },
		Secret:             s2s.NewSecret(),
		NegotiationTimeout: time.Second,
		Logger:             slog.New(slog.DiscardHandler),
		MaxConns:           1 << 20,
		MaxConnsPerIP:      1 << 20,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(l)
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		read := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(nc)
			read <- b
		}()
		nc.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.example' to='b.example' version='1.0'>"))
		nc.Write(in)
		nc.(*net.TCPConn).CloseWrite()
		out := <-read
		if i := bytes.Index(out, []byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); i >= 0 {
			out = out[:i]
		}
		if err := xmlstream.CheckStream(out); err != nil {
			t.Fatalf("server wrote a malformed stream (%v):\n%s", err, out)
		}
	})
}

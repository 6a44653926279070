package component

import (
	"bytes"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
)

// FuzzServerStream: whatever an authenticated component sends, the server
// neither panics nor writes anything but a well-formed stream back:
// replies, and at worst a stream error and the end of the stream.
func FuzzServerStream(f *testing.F) {
	for _, s := range []string{
		`<message from='bot@gw.example' to='juliet@example.com' id='m1'><body>hi</body></message>`,
		`<iq type='get' id='q1' from='gw.example' to='example.com' xml:lang='en'><query xmlns='urn:example:q'/></iq></stream:stream>`,
		`<presence from='evil.example' to='x@example.com'/>`,
		`<iq type='set' from='gw.example' to='bad@@jid'/>`,
		`<message from='gw.example' to='a@b'><body>&lt;&#x1F600;&amp;</body></message><!DOCTYPE x>`,
		`<a:b xmlns:a='urn:x'/><stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
	} {
		f.Add([]byte(s))
	}
	idRe := regexp.MustCompile(`id='([0-9a-f]{32})'`)
	f.Fuzz(func(t *testing.T, in []byte) {
		l := startPipeServer(t)
		nc := l.dial()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		var out lockedBuffer
		read := make(chan error, 1)
		go func() {
			_, err := io.Copy(&out, nc)
			read <- err
		}()
		io.WriteString(nc, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example'>")
		var id []byte
		for deadline := time.Now().Add(5 * time.Second); id == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if m := idRe.FindSubmatch(out.Bytes()); m != nil {
				id = m[1]
			}
		}
		if id == nil {
			t.Fatalf("no stream header from the server: %q", out.Bytes())
		}
		io.WriteString(nc, "<handshake>"+string(handshakeDigest(string(id), testSecret))+"</handshake>")
		nc.Write(in)
		// End the stream from this side, wait for the server's end (it
		// then waits for ours: net.Pipe cannot half-close), and close.
		io.WriteString(nc, "</stream:stream>")
		for deadline := time.Now().Add(time.Second); !bytes.HasSuffix(out.Bytes(), []byte(xmlstream.StreamEnd)) && time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		}
		nc.Close()
		<-read

		// What came before this side closed (an input that leaves an
		// element open waits for more) must be well-formed.
		if err := xmlstream.CheckStream(out.Bytes()); err != nil {
			t.Fatalf("server wrote a malformed stream (%v):\n%s", err, out.Bytes())
		}
	})
}

// lockedBuffer is a bytes.Buffer that one goroutine writes while another
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

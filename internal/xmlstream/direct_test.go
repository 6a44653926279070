package xmlstream

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/loopback"
)

// selfCert returns a fresh self-signed certificate for name.
func selfCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// drained is a Source that always has nothing more to read.
type drained struct{}

func (drained) Drained() bool { return true }

func directOnly(t *testing.T) {
	if !tryWriteSupported {
		t.Skip("writes that never block are not available on " + runtime.GOOS)
	}
}

// directWriter returns a Writer with direct writes on one end of a TCP
// connection, that end, and the peer's.
func directWriter(t *testing.T, maxPending int) (w *Writer, a, b net.Conn) {
	t.Helper()
	directOnly(t)
	a, b = loopback.Pair(t)
	sp := NewSpill(a)
	w = NewWriter(sp, maxPending)
	w.Direct(sp)
	return w, a, b
}

// TestDirectWrite: an element from a drained source, with nothing else
// queued, has been written when AppendFrom returns; from a source with more
// to read, it goes to the writer goroutine as before. Both arrive.
func TestDirectWrite(t *testing.T) {
	w, _, b := directWriter(t, 1<<20)
	defer w.Close()
	if err := w.AppendFrom(drained{}, 16, func(q []byte) []byte { return append(q, "<a/>"...) }); err != nil {
		t.Fatal(err)
	}
	if queued, written := w.Progress(); queued != 4 || written != 4 {
		t.Fatalf("after a direct write: %d queued, %d written; want 4 and 4", queued, written)
	}
	if err := w.WriteFrom(nil, []byte("<b/>")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "<a/><b/>" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestSpillNeverBlocks: when the peer stops reading, direct writes keep
// what the socket cannot take instead of blocking the caller, and once the
// peer reads again everything arrives whole and in order, in plain text
// and under TLS (the records TLS writes are kept and sent in order).
func TestSpillNeverBlocks(t *testing.T) {
	directOnly(t)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			a, b := loopback.Pair(t)
			sp := NewSpill(a)
			var out io.Writer = sp
			var in io.Reader = b
			if useTLS {
				out, in = tlsPair(t, sp, b)
			}
			w := NewWriter(out, 256<<10)
			w.Direct(sp)
			// Until the writer refuses more, every call returns: the
			// caller never waits for the peer.
			var sent bytes.Buffer
			done := make(chan error, 1)
			go func() {
				body := strings.Repeat("x", 1000)
				for i := 0; ; i++ {
					el := fmt.Sprintf("<m i='%d'>%s</m>", i, body)
					err := w.WriteFrom(drained{}, []byte(el))
					if errors.Is(err, ErrPendingFull) {
						done <- nil
						return
					}
					if err != nil {
						done <- err
						return
					}
					sent.WriteString(el)
					if i > 100000 {
						done <- errors.New("never full")
						return
					}
				}
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("a writer blocked on a peer that does not read")
			}
			var got bytes.Buffer
			var wg sync.WaitGroup
			wg.Go(func() {
				b.SetReadDeadline(time.Now().Add(20 * time.Second))
				io.CopyN(&got, in, int64(sent.Len()))
			})
			wg.Wait()
			if !bytes.Equal(got.Bytes(), sent.Bytes()) {
				t.Fatalf("%d bytes arrived of %d sent, or out of order", got.Len(), sent.Len())
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if queued, written := w.Progress(); queued != written || written != int64(sent.Len()) {
				t.Fatalf("progress: %d queued, %d written, %d sent", queued, written, sent.Len())
			}
		})
	}
}

// TestDirectOrder: direct writes from several goroutines, racing the
// writer goroutine, keep each goroutine's elements whole and in order.
func TestDirectOrder(t *testing.T) {
	w, a, b := directWriter(t, 64<<20)
	const g, n = 4, 500
	var got bytes.Buffer
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(&got, b)
		read <- err
	}()
	var wg sync.WaitGroup
	for k := range g {
		wg.Go(func() {
			for i := range n {
				var src Source
				if i%2 == 0 {
					src = drained{}
				}
				if err := w.WriteFrom(src, fmt.Appendf(nil, "<m g='%d' i='%d'/>", k, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	next := make([]int, g)
	for _, el := range strings.SplitAfter(got.String(), "/>") {
		if el == "" {
			continue
		}
		var k, i int
		if _, err := fmt.Sscanf(el, "<m g='%d' i='%d'/>", &k, &i); err != nil {
			t.Fatalf("garbled at %q: %v", el, err)
		}
		if i != next[k] {
			t.Fatalf("goroutine %d: element %d arrived, want %d", k, i, next[k])
		}
		next[k]++
	}
	for k, c := range next {
		if c != n {
			t.Fatalf("goroutine %d: %d elements arrived, want %d", k, c, n)
		}
	}
}

// TestReaderDrained: a reader is drained after the last element the peer
// sent, not while another is buffered or still on the socket.
func TestReaderDrained(t *testing.T) {
	directOnly(t)
	a, b := loopback.Pair(t)
	r := NewReader(b, Limits{})
	io.WriteString(a, hdr+"<a/><b/>")
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		el, err := r.Next()
		if err != nil || el.Local != want {
			t.Fatalf("got %v, %v; want <%s/>", el, err, want)
		}
	}
	next("a")
	if r.Drained() {
		t.Error("drained with <b/> buffered")
	}
	next("b")
	if !r.Drained() {
		t.Error("not drained after the last element")
	}
	io.WriteString(a, "<c/>")
	deadline := time.Now().Add(10 * time.Second)
	for !unread(r.rc) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r.Drained() {
		t.Error("drained with <c/> on the socket")
	}
	next("c")
	if !r.Drained() {
		t.Error("not drained after <c/>")
	}
	if NewReader(strings.NewReader(hdr), Limits{}).Drained() {
		t.Error("a reader without a socket says it is drained")
	}
}

// tlsPair runs TLS over a connection: a client on a (a Spill), a server on
// b, handshakes done.
func tlsPair(t *testing.T, a, b net.Conn) (cli, srv *tls.Conn) {
	t.Helper()
	cert := selfCert(t, "b.test")
	srv = tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli = tls.Client(a, &tls.Config{InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cli, srv
}

// countingConn counts the writes that reach a socket.
type countingConn struct {
	*net.TCPConn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(b)
}

// TestGatherRecords: under TLS, a backlog goes to the socket in writes of
// up to a chunk, not one per TLS record (Spill.Gather), and arrives whole
// and in order.
func TestGatherRecords(t *testing.T) {
	directOnly(t)
	a, b := loopback.Pair(t)
	cc := &countingConn{TCPConn: a}
	sp := NewSpill(cc)
	cli, srv := tlsPair(t, sp, b)
	w := NewWriter(cli, 4<<20)
	w.Direct(sp)
	var sent bytes.Buffer
	body := strings.Repeat("y", 4000)
	for i := range 500 { // 2 MB: at least 125 TLS records
		el := fmt.Sprintf("<m i='%d'>%s</m>", i, body)
		sent.WriteString(el)
	}
	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.CopyN(&got, srv, int64(sent.Len()))
	}()
	before := cc.writes.Load()
	if err := w.Write(sent.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatalf("%d bytes arrived of %d sent, or out of order", got.Len(), sent.Len())
	}
	records := sent.Len() / tlsRecord
	if n := cc.writes.Load() - before; n > int64(records)/3 {
		t.Fatalf("%d writes to the socket for %d TLS records", n, records)
	}
}

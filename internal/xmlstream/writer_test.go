package xmlstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// TestWriterOrder: what several goroutines queue arrives whole and, per
// goroutine, in order, with elements smaller and larger than a chunk and
// size hints that are right, too small and too large.
func TestWriterOrder(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, 64<<20)
	sizes := []int{1, 100, 4 << 10, chunkSize - 10, chunkSize + 1, 3 * chunkSize}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 60 {
				el := fmt.Sprintf("<m g='%d' i='%d'>%s</m>", g, i, strings.Repeat("x", sizes[i%len(sizes)]))
				var err error
				switch i % 3 {
				case 0:
					err = w.Write([]byte(el))
				case 1:
					err = w.AppendFunc(len(el), func(b []byte) []byte { return append(b, el...) })
				case 2: // a hint far too small: append grows the chunk
					err = w.AppendFunc(1, func(b []byte) []byte { return append(b, el...) })
				}
				if err != nil {
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
	queued, written := w.Progress()
	if queued != written || written != int64(out.Len()) {
		t.Fatalf("progress %d queued, %d written; %d bytes arrived", queued, written, out.Len())
	}
	next := make([]int, 4)
	s := out.String()
	for s != "" {
		var g, i int
		if _, err := fmt.Sscanf(s, "<m g='%d' i='%d'>", &g, &i); err != nil {
			t.Fatalf("garbled at %.40q: %v", s, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: element %d arrived, want %d", g, i, next[g])
		}
		next[g]++
		end := strings.Index(s, "</m>")
		body := s[strings.IndexByte(s, '>')+1 : end]
		if want := sizes[i%len(sizes)]; len(body) != want || strings.Trim(body, "x") != "" {
			t.Fatalf("goroutine %d element %d: body of %d bytes, want %d x", g, i, len(body), want)
		}
		s = s[end+len("</m>"):]
	}
	for g, n := range next {
		if n != 60 {
			t.Fatalf("goroutine %d: %d elements arrived, want 60", g, n)
		}
	}
}

// blockingWriter takes nothing until released.
type blockingWriter struct {
	release chan struct{}
	out     bytes.Buffer
	mu      sync.Mutex
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// TestWriterPendingFull: a peer that does not read makes Write fail with
// ErrPendingFull once maxPending bytes wait, never block; Flush waits for
// the peer; after it reads, writes go through again.
func TestWriterPendingFull(t *testing.T) {
	bw := &blockingWriter{release: make(chan struct{})}
	w := NewWriter(bw, 10<<10)
	el := []byte("<m>" + strings.Repeat("y", 1000) + "</m>")
	var full error
	n := 0
	for range 100 {
		if full = w.Write(el); full != nil {
			break
		}
		n++
	}
	if !errors.Is(full, ErrPendingFull) {
		t.Fatalf("after %d elements: %v, want ErrPendingFull", n, full)
	}
	// At most maxPending queued, plus the batch the writer took before it
	// blocked (itself at most maxPending).
	if n*len(el) > 2*(10<<10)+len(el) {
		t.Fatalf("%d bytes taken with maxPending 10 KiB", n*len(el))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := w.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with a stuck peer: %v, want deadline exceeded", err)
	}
	cancel()
	close(bw.release)
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Pending() != 0 {
		t.Fatalf("%d bytes pending after Flush", w.Pending())
	}
	if err := w.Write(el); err != nil {
		t.Fatalf("after the peer read: %v", err)
	}
	w.Close()
	if got := bw.out.Len(); got != (n+1)*len(el) {
		t.Fatalf("%d bytes arrived, want %d", got, (n+1)*len(el))
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= f.after {
		f.after -= len(p)
		return len(p), nil
	}
	n := f.after
	f.after = 0
	return n, io.ErrClosedPipe
}

// TestWriterError: a failed write stops the writer; its error comes back
// from every later call, and Progress tells how much the connection took.
func TestWriterError(t *testing.T) {
	w := NewWriter(&failingWriter{after: 150}, 0)
	for range 3 {
		w.Write([]byte(strings.Repeat("z", 100)))
	}
	<-w.Done()
	if err := w.Write([]byte("<m/>")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write after the failure: %v", err)
	}
	if err := w.Flush(context.Background()); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Flush after the failure: %v", err)
	}
	if err := w.Close(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Close after the failure: %v", err)
	}
	if _, written := w.Progress(); written != 150 {
		t.Fatalf("written %d, want 150", written)
	}
}

// TestLostBytesStay: the bytes a failed connection did not take stay
// where they were queued, even while other writers take chunks from the
// shared pool (a component bounces its in-flight stanzas from them).
func TestLostBytesStay(t *testing.T) {
	gate := make(chan struct{})
	w := NewWriter(&gateThenFail{gate: gate, after: 1000}, 0)
	var kept [][]byte
	var want []string
	for i := range 200 {
		el := fmt.Sprintf("<message id='m%d'><body>%s</body></message>", i, strings.Repeat("y", i*97%3000))
		want = append(want, el)
		w.AppendFunc(len(el), func(b []byte) []byte {
			n := len(b)
			b = append(b, el...)
			kept = append(kept, b[n:len(b):len(b)])
			return b
		})
	}
	close(gate)
	<-w.Done()
	_, written := w.Progress()
	// Other writers now take and fill every chunk the pool holds.
	for range 4 {
		o := NewWriter(io.Discard, 0)
		for range 300 {
			o.Write(bytes.Repeat([]byte("#"), 4000))
		}
		o.Close()
	}
	var at int64
	for i, b := range kept {
		at += int64(len(b))
		if at > written && string(b) != want[i] {
			t.Fatalf("lost element %d changed: %.40q", i, b)
		}
	}
}

// gateThenFail takes after bytes once gate is closed, then fails.
type gateThenFail struct {
	gate  chan struct{}
	after int
}

func (g *gateThenFail) Write(p []byte) (int, error) {
	<-g.gate
	f := failingWriter{after: g.after}
	n, err := f.Write(p)
	g.after = f.after
	return n, err
}

// gateWriter fails every write, once released.
type gateWriter struct{ release chan struct{} }

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.release
	return 0, io.ErrClosedPipe
}

// TestWriterOnFail: OnFail's callback runs once, with the error of the
// first failed write; not for a failure while closing, nor for a write
// refused because too much is pending.
func TestWriterOnFail(t *testing.T) {
	failed := make(chan error, 4)
	w := NewWriter(&failingWriter{after: 150}, 250)
	w.OnFail(func(err error) { failed <- err })
	for range 3 {
		w.Write([]byte(strings.Repeat("z", 100)))
	}
	select {
	case err := <-failed:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("OnFail got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnFail not called")
	}
	w.Write([]byte("<m/>"))
	w.Close()

	// A failure while closing: the write is under way when Close begins.
	gate := &gateWriter{release: make(chan struct{})}
	w = NewWriter(gate, 120)
	w.OnFail(func(err error) { failed <- err })
	full := false
	for range 3 {
		if err := w.Write([]byte(strings.Repeat("z", 100))); errors.Is(err, ErrPendingFull) {
			full = true
		}
	}
	if !full {
		t.Fatal("no Write refused past MaxPending")
	}
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	for {
		w.mu.Lock()
		c := w.closed
		w.mu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(gate.release)
	if err := <-closed; !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-failed:
		t.Fatalf("OnFail called with %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if len(failed) != 0 {
		t.Fatal("OnFail called more than once")
	}
}

// BenchmarkWriter queues 4 KiB elements from two goroutines onto a TCP
// loopback connection whose far end discards what it reads.
func BenchmarkWriter(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w := NewWriter(c, 0)
	el := []byte("<message to='a@b.example'><body>" + strings.Repeat("q", 4<<10) + "</body></message>")
	b.SetBytes(int64(len(el)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for w.AppendFunc(len(el), func(p []byte) []byte { return append(p, el...) }) != nil {
				w.Flush(context.Background())
			}
		}
	})
	w.Flush(context.Background())
}

// TestAfterWritten: the callback runs once what was queued before it is
// written, not before, in the order callbacks were asked for; at once
// when nothing waits; with the error when the writer fails first.
func TestAfterWritten(t *testing.T) {
	bw := &blockingWriter{release: make(chan struct{})}
	w := NewWriter(bw, 0)
	done := make(chan string, 4)
	w.AfterWritten(func(err error) { done <- fmt.Sprint("idle ", err) })
	if got := <-done; got != "idle <nil>" {
		t.Fatalf("with nothing queued: %s", got)
	}
	w.Write([]byte("<a/>"))
	w.AfterWritten(func(err error) { done <- fmt.Sprint("a ", err, " ", bw.len()) })
	w.Write([]byte("<b/>"))
	w.AfterWritten(func(err error) { done <- fmt.Sprint("b ", err, " ", bw.len()) })
	select {
	case got := <-done:
		t.Fatalf("called before the peer took anything: %s", got)
	case <-time.After(50 * time.Millisecond):
	}
	close(bw.release)
	for _, want := range []string{"a <nil>", "b <nil> 8"} {
		select {
		case got := <-done:
			if !strings.HasPrefix(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no callback %q", want)
		}
	}
	w.Close()

	fw := NewWriter(&failingWriter{after: 2}, 0)
	fw.Write([]byte("<c/>"))
	fw.AfterWritten(func(err error) { done <- fmt.Sprint("c ", err) })
	select {
	case got := <-done:
		if got != "c "+io.ErrClosedPipe.Error() {
			t.Fatalf("after a failed write: %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback after a failed write")
	}
	fw.AfterWritten(func(err error) { done <- fmt.Sprint("d ", err) })
	if got := <-done; got != "d "+io.ErrClosedPipe.Error() {
		t.Fatalf("on a failed writer: %s", got)
	}
}

// TestHeldUntilWake: elements handled while their source has more
// buffered stay queued, the writer goroutine not woken, until the source
// reads again (or Wake, or Flush): then they go out in one write.
func TestHeldUntilWake(t *testing.T) {
	cw := &countingWriter{}
	w := NewWriter(cw, 0)
	defer w.Close()
	waitWrites := func(want int, data string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, got := cw.get()
			if n == want && got == data {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d writes of %q, want %d of %q", n, got, want, data)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// A writer goroutine that is awake takes what is queued, held or
	// not: let it write once and wait.
	w.Write([]byte("<x/>"))
	waitWrites(1, "<x/>")
	time.Sleep(20 * time.Millisecond)
	// One read takes all three elements; the next one fails.
	r := NewReader(io.MultiReader(strings.NewReader(hdr+"<a/><b/><c/>"), iotest.ErrReader(io.ErrClosedPipe)), Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		el, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		// Without a socket below, a Reader never says more is
		// buffered: say it, as a socket's reader does.
		r.more.Store(r.r < r.w)
		if err := w.AppendFrom(r, len(el.Raw), func(b []byte) []byte { return append(b, el.Raw...) }); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n, _ := cw.get(); n != 1 {
		t.Fatalf("%d writes while the source had more buffered, want 1", n-1)
	}
	r.Wake()
	waitWrites(2, "<x/><a/><b/>")
	// A reader that fails wakes them too.
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	r.more.Store(true)
	w.AppendFrom(r, len(el.Raw), func(b []byte) []byte { return append(b, el.Raw...) })
	time.Sleep(50 * time.Millisecond)
	if n, _ := cw.get(); n != 2 {
		t.Fatalf("%d writes, want 2: <c/> was not held", n)
	}
	if _, err := r.Next(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Next: %v, want the source's error", err)
	}
	waitWrites(3, "<x/><a/><b/><c/>")
}

// TestAfterWrittenHeld: AfterWrittenFrom on the goroutine of a reader
// with more buffered does not wake a writer held for that reader: the
// callback runs after the batch goes out, when the reader wakes it.
// AfterWritten, with no source, wakes it at once.
func TestAfterWrittenHeld(t *testing.T) {
	cw := &countingWriter{}
	w := NewWriter(cw, 0)
	defer w.Close()
	// Let the writer goroutine write once and wait, as in TestHeldUntilWake.
	w.Write([]byte("<x/>"))
	for n, _ := cw.get(); n != 1; n, _ = cw.get() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	r := NewReader(strings.NewReader(hdr+"<a/><b/><c/><d/>"), Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 2)
	handle := func(after func(func(error))) {
		el, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		r.more.Store(true) // as a socket's reader says (TestHeldUntilWake)
		if err := w.AppendFrom(r, len(el.Raw), func(b []byte) []byte { return append(b, el.Raw...) }); err != nil {
			t.Fatal(err)
		}
		after(func(err error) {
			_, out := cw.get()
			done <- fmt.Sprint(err, " ", out)
		})
	}
	handle(func(f func(error)) { w.AfterWrittenFrom(r, f) })
	handle(func(f func(error)) {})
	time.Sleep(50 * time.Millisecond)
	if n, _ := cw.get(); n != 1 || len(done) > 0 {
		t.Fatalf("%d writes and %d callbacks while the reader had more buffered, want none", n-1, len(done))
	}
	r.Wake()
	if got := <-done; got != "<nil> <x/><a/><b/>" {
		t.Fatalf("callback: %q", got)
	}
	// Without a source the callback wakes the writer.
	handle(func(f func(error)) { w.AfterWritten(f) })
	select {
	case got := <-done:
		if got != "<nil> <x/><a/><b/><c/>" {
			t.Fatalf("callback: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AfterWritten did not wake the writer")
	}
}

// countingWriter counts writes.
type countingWriter struct {
	mu  sync.Mutex
	n   int
	out bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.out.Write(p)
}

func (c *countingWriter) get() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.out.String()
}

func (b *blockingWriter) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Len()
}

// TestHoldBounded: a writer holds at most half its maxPending for a busy
// source: past that, its goroutine writes without waiting for Wake, so
// that holding never fills the queue and fails a write.
func TestHoldBounded(t *testing.T) {
	cw := &countingWriter{}
	w := NewWriter(cw, 4<<10)
	defer w.Close()
	// A writer goroutine that is awake takes what is queued, held or
	// not: let it write once and end (or wait).
	w.Write([]byte("<x/>"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, got := cw.get(); got == "<x/>" || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	r := NewReader(strings.NewReader(hdr), Limits{})
	r.more.Store(true)
	el := []byte("<m>" + strings.Repeat("z", 3<<10) + "</m>")
	if err := w.AppendFrom(r, len(el), func(b []byte) []byte { return append(b, el...) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, got := cw.get(); got == "<x/>"+string(el) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("3 KiB held by a writer of at most 4 KiB pending")
		}
		time.Sleep(time.Millisecond)
	}
}

// writerLoops counts the goroutines running a Writer's loop.
func writerLoops() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "xmlstream.(*Writer).loop(")
}

// TestIdleWriterHoldsNoGoroutine: a writer's goroutine runs while there
// is something to write and ends after; the next write starts another,
// and Close and Done work whether one runs or not.
func TestIdleWriterHoldsNoGoroutine(t *testing.T) {
	base := writerLoops()
	cw := &countingWriter{}
	w := NewWriter(cw, 0)
	if n := writerLoops() - base; n != 0 {
		t.Fatalf("%d writer goroutines before anything was written", n)
	}
	idle := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for writerLoops() > base || func() bool { _, got := cw.get(); return got != want }() {
			if time.Now().After(deadline) {
				_, got := cw.get()
				t.Fatalf("%d writer goroutines, %q written; want none and %q", writerLoops()-base, got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i, el := range []string{"<a/>", "<b/>", "<c/>"} {
		if err := w.Write([]byte(el)); err != nil {
			t.Fatal(err)
		}
		idle(strings.Join([]string{"<a/>", "<b/>", "<c/>"}[:i+1], ""))
	}
	select {
	case <-w.Done():
		t.Fatal("done before Close")
	default:
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	<-w.Done()
	if err := w.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if err := w.Write([]byte("<d/>")); !errors.Is(err, ErrWriterClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	idle("<a/><b/><c/>")
}

// TestAppendFromProgress: the counts AppendFromProgress returns are
// Progress's right after the element was queued: queued grows by exactly
// the element's bytes, and written never passes it.
func TestAppendFromProgress(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go io.Copy(io.Discard, b)
	w := NewWriter(a, 1<<20)
	defer w.Close()
	var total int64
	for i := range 100 {
		el := fmt.Sprintf("<m i='%d'/>", i)
		queued, written, err := w.AppendFromProgress(nil, len(el), func(q []byte) []byte { return append(q, el...) })
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(el))
		if queued != total || written > queued {
			t.Fatalf("element %d: queued %d, written %d; %d bytes appended", i, queued, written, total)
		}
		if q, _ := w.Progress(); q != queued {
			t.Fatalf("element %d: Progress says %d queued, AppendFromProgress %d", i, q, queued)
		}
	}
}

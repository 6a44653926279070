package xmlstream

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
)

// ErrWriterClosed is returned by Writer methods after Close or a failed
// write.
var ErrWriterClosed = errors.New("xmlstream: writer closed")

// Writer sends bytes to a connection from one goroutine. Callers append
// whole elements with Write, which never blocks on the network: elements
// queue in memory, bounded by MaxPending, and the writer goroutine sends
// everything queued at once, so that a busy stream batches many stanzas
// into each TLS record and system call. The goroutine runs only while
// there is something to write: an idle stream holds none.
//
// What is queued sits in chunks of chunkSize bytes from a shared pool, so
// that a busy stream neither copies its backlog each time it grows nor
// keeps a large buffer once it is quiet.
//
// With Direct, an element whose source has nothing more to read, handed
// over while nothing else is queued or being written, is written on the
// caller's goroutine instead, without blocking (see direct.go).
type Writer struct {
	w          io.Writer
	maxPending int

	mu sync.Mutex
	// running: the writer goroutine runs; it ends when it has nothing to
	// do, and the next write that needs it starts another (kickLocked),
	// so that an idle stream holds no goroutine. stopped: the last one
	// ended after Close or a failure, and closed done.
	running bool
	stopped bool
	chunks  [][]byte // queued, in order
	pending int      // bytes in chunks
	batch   [][]byte // the writer's previous chunk list, reused
	iov     net.Buffers
	closed  bool
	writing bool // a write to the connection is in progress
	err     error
	done    chan struct{}
	queued  int64 // bytes ever queued
	written int64 // bytes the connection took
	// direct writes (Direct): the Spill below w, and whether it keeps
	// bytes of a direct write (spillN of them queued) to be written out
	sp      *Spill
	spilled bool
	spillN  int64
	// AfterWritten callbacks, in the order of their offsets
	waiters []waiter
	// onFail is called when a write fails (OnFail).
	onFail func(error)
}

// NewWriter starts a writer of w that holds at most maxPending bytes not yet
// written (0 means 1 MiB).
func NewWriter(w io.Writer, maxPending int) *Writer {
	if maxPending <= 0 {
		maxPending = 1 << 20
	}
	return &Writer{w: w, maxPending: maxPending, done: make(chan struct{})}
}

// ErrPendingFull is returned by Write when the peer does not read fast
// enough and MaxPending bytes are queued.
var ErrPendingFull = errors.New("xmlstream: too much data queued for a slow peer")

// Write queues b, which must be one or more complete elements. b is copied.
func (w *Writer) Write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		if w.err != nil {
			return w.err
		}
		return ErrWriterClosed
	}
	if w.pending+len(b) > w.maxPending && w.pending > 0 {
		return ErrPendingFull
	}
	c := w.tail(len(b))
	*c = append(*c, b...)
	w.pending += len(b)
	w.queued += int64(len(b))
	w.kickLocked()
	return nil
}

// WriteFrom is Write for b read from src: see Direct.
func (w *Writer) WriteFrom(src Source, b []byte) error {
	return w.AppendFrom(src, len(b), func(q []byte) []byte { return append(q, b...) })
}

// tail returns the chunk to append about size bytes to: the last one if it
// has room, else a new one; w.mu is held.
func (w *Writer) tail(size int) *[]byte {
	if n := len(w.chunks); n == 0 || cap(w.chunks[n-1])-len(w.chunks[n-1]) < size {
		if size > chunkSize {
			w.chunks = append(w.chunks, make([]byte, 0, size))
		} else {
			w.chunks = append(w.chunks, getChunk())
		}
	}
	return &w.chunks[len(w.chunks)-1]
}

// chunkSize is the size of the chunks queued bytes are kept in: four TLS
// records.
const chunkSize = 64 << 10

// tlsRecord is the most plaintext a TLS record holds.
const tlsRecord = 16 << 10

// freeChunks keeps chunks between batches, for every Writer: enough for a
// few busy streams, little for a quiet process to hold on to.
var freeChunks = make(chan []byte, 32)

func getChunk() []byte {
	select {
	case b := <-freeChunks:
		return b
	default:
		return make([]byte, 0, chunkSize)
	}
}

func putChunk(b []byte) {
	if cap(b) != chunkSize {
		return
	}
	select {
	case freeChunks <- b[:0]:
	default:
	}
}

// AppendFunc queues what f appends, saving a copy for callers that build
// elements in place. size is about how much f appends: a little more than
// the element it copies, say (more is correct, only slower).
func (w *Writer) AppendFunc(size int, f func([]byte) []byte) error {
	return w.AppendFrom(nil, size, f)
}

// AppendFrom is AppendFunc for an element read from src, which the caller
// is handling on the goroutine that reads src: when src is drained and
// nothing else is queued or being written, the element is written on the
// caller's goroutine (see Direct). src may be nil.
//
// The bytes f appends stay where f put them until the connection has taken
// them, and for good once a write failed: a caller may keep a slice of
// them, with where they end in Progress's count, to tell afterwards what
// was lost. So it is for AppendFunc and WriteFrom.
func (w *Writer) AppendFrom(src Source, size int, f func([]byte) []byte) error {
	_, _, err := w.AppendFromProgress(src, size, f)
	return err
}

// AppendFromProgress is AppendFrom that also returns what Progress would
// right after it, without taking the Writer's lock a second time: a
// caller that keeps where each element ends (see AppendFrom) calls it
// for every element.
func (w *Writer) AppendFromProgress(src Source, size int, f func([]byte) []byte) (queued, written int64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		if w.err != nil {
			return w.queued, w.written, w.err
		}
		return w.queued, w.written, ErrWriterClosed
	}
	if w.pending > w.maxPending {
		return w.queued, w.written, ErrPendingFull
	}
	last := w.tail(size)
	n := len(*last)
	*last = f(*last)
	w.pending += len(*last) - n
	w.queued += int64(len(*last) - n)
	if w.holdLocked(src) {
		return w.queued, w.written, nil
	}
	if src != nil && w.sp != nil && !w.writing && !w.spilled && len(w.chunks) == 1 && src.Drained() {
		w.direct()
		return w.queued, w.written, nil
	}
	w.kickLocked()
	return w.queued, w.written, nil
}

// waiter is an AfterWritten callback: f runs once written reaches at.
type waiter struct {
	at int64
	f  func(error)
}

// AfterWritten calls f once every byte queued so far has been written to
// the connection, with nil, or with the error that stopped the writer
// first. It never blocks: f runs on the writer's goroutine, or at once on
// the caller's when nothing queued is waiting to be written. f must not
// block, nor call the Writer's methods other than Write.
func (w *Writer) AfterWritten(f func(error)) { w.AfterWrittenFrom(nil, f) }

// AfterWrittenFrom is AfterWritten for a caller on the goroutine that
// reads src, handling one of its elements: while src has more buffered,
// f does not wake the writer's goroutine, as an element does not
// (AppendFrom), and the bytes queued so far go out with the rest of src's
// batch, when src's Reader is about to wait (Reader.Wake). src may be
// nil.
func (w *Writer) AfterWrittenFrom(src Source, f func(error)) {
	w.mu.Lock()
	if err := w.err; err != nil || w.pending == 0 && !w.writing && !w.spilled {
		w.mu.Unlock()
		f(err)
		return
	}
	w.waiters = append(w.waiters, waiter{at: w.queued, f: f})
	if !w.holdLocked(src) {
		w.kickLocked()
	}
	w.mu.Unlock()
}

// holdLocked leaves the writer goroutine asleep, and reports so, when
// more is buffered on src's goroutine, the caller's: src's Reader wakes
// it when it is about to wait (Reader.Wake). It holds at most holdLimit
// bytes. w.mu is held.
func (w *Writer) holdLocked(src Source) bool {
	r, ok := src.(*Reader)
	if !ok || !r.more.Load() || w.pending >= min(holdLimit, w.maxPending/2) {
		return false
	}
	r.hold(w)
	return true
}

// readyLocked reports whether a waiter's bytes are all written; w.mu is
// held.
func (w *Writer) readyLocked() bool {
	return len(w.waiters) > 0 && w.waiters[0].at <= w.written
}

// fireLocked runs the waiters whose bytes are written, with w.mu released
// meanwhile; w.mu is held.
func (w *Writer) fireLocked() {
	n := 0
	for n < len(w.waiters) && w.waiters[n].at <= w.written {
		n++
	}
	ready := slices.Clone(w.waiters[:n])
	w.waiters = slices.Delete(w.waiters, 0, n)
	w.mu.Unlock()
	for _, x := range ready {
		x.f(nil)
	}
	w.mu.Lock()
}

// holdLimit is how many bytes a writer holds for a busy source (see
// Reader.Wake) before it wakes its goroutine anyway; never more than half
// its MaxPending, so that holding never makes a write fail with
// ErrPendingFull.
const holdLimit = chunkSize

// wake wakes the writer goroutine if bytes are queued.
func (w *Writer) wake() {
	w.mu.Lock()
	if w.pending > 0 {
		w.kickLocked()
	}
	w.mu.Unlock()
}

// Direct makes the writer write on the caller's goroutine, through sp,
// an element handed over with a drained Source while nothing else is queued
// or being written: one element at a time, that spares the hand-off to the
// writer goroutine, most of a relay's latency. sp must be the connection
// the writer writes to, directly or under TLS; what the socket does not
// take at once stays in sp for the writer goroutine, so the caller never
// blocks on the network.
func (w *Writer) Direct(sp *Spill) {
	w.mu.Lock()
	w.sp = sp
	w.mu.Unlock()
}

// direct writes the one queued chunk on the caller's goroutine; w.mu is
// held, and released meanwhile.
func (w *Writer) direct() {
	b, n := w.chunks[0], w.pending
	w.chunks[0] = nil
	w.chunks = w.chunks[:0]
	w.pending = 0
	w.writing = true
	w.mu.Unlock()
	w.sp.setTry(true)
	_, err := w.w.Write(b)
	held := w.sp.setTry(false)
	w.mu.Lock()
	w.writing = false
	if err != nil {
		w.failLocked(err)
		w.kickLocked()
		return
	}
	if held {
		// The writer goroutine writes the rest before anything else.
		// b is not reused: its bytes are not all written (AppendFrom).
		w.spilled = true
		w.spillN += int64(n)
		w.kickLocked()
		return
	}
	w.written += int64(n)
	putChunk(b)
	if w.pending > 0 || w.closed || w.readyLocked() {
		w.kickLocked()
	}
}

// OnFail sets f to be called once, on a goroutine of its own, with the
// error of the first write that fails, so that the stream's owner can end
// a stream whose writes no longer go out (a peer that stopped reading,
// once the connection's write deadline passes). It is not called after
// Close, nor for writes refused with ErrPendingFull. Set it before the
// first write.
func (w *Writer) OnFail(f func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onFail = f
}

// failLocked stops the writer after a failed write; w.mu is held.
func (w *Writer) failLocked(err error) {
	if f := w.onFail; f != nil && w.err == nil && !w.closed {
		go f(err)
	}
	w.err = err
	w.closed = true
	// The chunks are dropped, not reused: what was lost stays as it was
	// queued (AppendFrom).
	clear(w.chunks)
	w.chunks, w.pending = nil, 0
	w.spilled, w.spillN = false, 0
}

// Progress returns how many bytes were ever queued and how many of them
// the connection took. After a failure, the bytes past written were lost
// with the connection; a caller that remembers where each element ended can
// tell which.
func (w *Writer) Progress() (queued, written int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued, w.written
}

// Pending returns the number of bytes queued and not yet written.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending
}

// kickLocked makes the writer goroutine look for work: it starts one
// unless one runs, which looks again before it ends; w.mu is held.
func (w *Writer) kickLocked() {
	if w.running || w.stopped {
		return
	}
	w.running = true
	go w.loop()
}

// loop writes what is queued, and ends when nothing is: when the writer
// is closed, for good.
func (w *Writer) loop() {
	w.mu.Lock()
	for {
		if w.readyLocked() {
			w.fireLocked()
			continue
		}
		if w.writing {
			// A direct write: it kicks when done.
			w.running = false
			w.mu.Unlock()
			return
		}
		if w.pending == 0 && !w.spilled {
			w.running = false
			if w.closed {
				w.stopLocked()
			}
			w.mu.Unlock()
			return
		}
		batch := w.chunks
		w.chunks = w.batch[:0]
		w.pending = 0
		spilled, spillN := w.spilled, w.spillN
		w.spilled, w.spillN = false, 0
		w.writing = true
		w.mu.Unlock()
		// What a direct write left goes first. Then one chunk: one Write.
		// More: one writev on a TCP connection, one Write per chunk on
		// others (WriteTo consumes the slices it is given: it gets copies).
		var n int64
		var err error
		if spilled {
			if err = w.sp.Flush(); err == nil {
				n = spillN
			}
		}
		// Under TLS, more than a record's worth goes to the socket in
		// one system call per chunk, not one per record (Spill.Gather).
		gather := w.sp != nil && w.w != io.Writer(w.sp) && err == nil &&
			(len(batch) > 1 || len(batch) == 1 && len(batch[0]) > tlsRecord)
		if gather {
			w.sp.Gather()
		}
		n0 := n
		switch {
		case err != nil || len(batch) == 0:
		case len(batch) == 1:
			var m int
			m, err = w.w.Write(batch[0])
			n += int64(m)
		default:
			w.iov = append(w.iov[:0], batch...)
			var m int64
			m, err = w.iov.WriteTo(w.w)
			n += m
			clear(w.iov[:cap(w.iov)])
		}
		if gather {
			if gerr := w.sp.EndGather(); gerr != nil && err == nil {
				// What TLS took was gathered, not written.
				err, n = gerr, n0
			}
		}
		w.mu.Lock()
		w.written += n
		w.writing = false
		for i := range batch {
			if err == nil {
				// Written, and counted: no one needs its bytes now.
				putChunk(batch[i])
			}
			batch[i] = nil
		}
		w.batch = batch[:0]
		if err != nil {
			w.failLocked(err)
			w.running = false
			w.stopLocked()
			w.mu.Unlock()
			return
		}
	}
}

// stopLocked ends the writer for good: the callbacks still waiting get
// the error that stopped it, ErrWriterClosed after Close, and done is
// closed; w.mu is held.
func (w *Writer) stopLocked() {
	if w.stopped {
		return
	}
	w.stopped = true
	close(w.done)
	if ws := w.waiters; len(ws) > 0 {
		// On a goroutine of their own: w.mu is held.
		w.waiters = nil
		err := cmp.Or(w.err, ErrWriterClosed)
		go func() {
			for _, x := range ws {
				x.f(err)
			}
		}()
	}
}

// Flush waits until everything queued so far has been written to the
// connection, the writer has failed, or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	w.AfterWritten(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued, then stops the writer. It does not close
// the underlying connection. It returns the first write error.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.kickLocked()
	w.mu.Unlock()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Done is closed when the writer has stopped.
func (w *Writer) Done() <-chan struct{} { return w.done }

// Err returns the write error that stopped the writer, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

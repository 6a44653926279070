package xmlstream

import (
	"context"
	"errors"
	"io"
	"sync"
)

// ErrWriterClosed is returned by Writer methods after Close or a failed
// write.
var ErrWriterClosed = errors.New("xmlstream: writer closed")

// Writer sends bytes to a connection from one goroutine. Callers append
// whole elements with Write, which never blocks on the network: elements
// queue in memory, bounded by MaxPending, and the writer goroutine sends
// everything queued in one write, so that a busy stream batches many
// stanzas into each TLS record and system call.
type Writer struct {
	w          io.Writer
	maxPending int

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	closed  bool
	writing bool // a write to the connection is in progress
	flushed *sync.Cond
	err     error
	done    chan struct{}
	queued  int64 // bytes ever queued
	written int64 // bytes the connection took
	// connection; may be nil.
}

// NewWriter starts a writer of w that holds at most maxPending bytes not yet
// written (0 means 1 MiB).
func NewWriter(w io.Writer, maxPending int) *Writer {
	if maxPending <= 0 {
		maxPending = 1 << 20
	}
	wr := &Writer{w: w, maxPending: maxPending, done: make(chan struct{})}
	wr.cond = sync.NewCond(&wr.mu)
	wr.flushed = sync.NewCond(&wr.mu)
	go wr.loop()
	return wr
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
	if len(w.pending)+len(b) > w.maxPending && len(w.pending) > 0 {
		return ErrPendingFull
	}
	w.pending = append(w.pending, b...)
	w.queued += int64(len(b))
	w.cond.Signal()
	return nil
}

// AppendFunc queues what f appends, saving a copy for callers that build
// elements in place.
func (w *Writer) AppendFunc(f func([]byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		if w.err != nil {
			return w.err
		}
		return ErrWriterClosed
	}
	if len(w.pending) > w.maxPending {
		return ErrPendingFull
	}
	n := len(w.pending)
	w.pending = f(w.pending)
	w.queued += int64(len(w.pending) - n)
	w.cond.Signal()
	return nil
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
	return len(w.pending)
}

func (w *Writer) loop() {
	defer close(w.done)
	w.mu.Lock()
	for {
		for len(w.pending) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.pending) == 0 && w.closed {
			w.flushed.Broadcast()
			w.mu.Unlock()
			return
		}
		buf := w.pending
		w.pending = w.spare[:0]
		w.writing = true
		w.mu.Unlock()
		n, err := w.w.Write(buf)
		w.mu.Lock()
		w.written += int64(n)
		w.writing = false
		w.flushed.Broadcast()
		// Keep the buffer for the next batch, so that a busy stream does
		// not grow a new one each time (an idle stream has none: buffers
		// exist once there is traffic); a very large one is let go.
		if cap(buf) <= 1<<20 {
			w.spare = buf[:0]
		} else {
			w.spare = nil
		}
		if err != nil {
			w.err = err
			w.closed = true
			w.pending = nil
			w.mu.Unlock()
			return
		}
	}
}

// Flush waits until everything queued so far has been written to the
// connection, the writer has failed, or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.flushed.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for (len(w.pending) > 0 || w.writing) && w.err == nil && ctx.Err() == nil {
		w.flushed.Wait()
	}
	if w.err != nil {
		return w.err
	}
	return ctx.Err()
}

// Close writes what is queued, then stops the writer. It does not close
// the underlying connection. It returns the first write error.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.cond.Signal()
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

package xmlstream

import (
	"net"
	"sync"
	"syscall"
)

// Direct writes
//
// A Writer normally hands every element to its goroutine, which batches
// what queued meanwhile. One element at a time, that hand-off is most of a
// relay's latency: the writer goroutine must be woken, often on another
// thread. So when a caller says where an element came from (a Source), the
// source has nothing more to read for now, and the writer has nothing else
// queued or in progress, the caller writes the element itself, through a
// Spill that never blocks: what the socket cannot take at once stays in
// memory for the writer goroutine. Under load the source has more to read,
// elements queue as before and go out in batches.

// Source is where an element handed to a Writer came from.
type Source interface {
	// Drained reports whether nothing more is buffered or waiting on the
	// connection to be read now.
	Drained() bool
}

// Spill is a connection that a Writer can write to without blocking, on
// the caller's goroutine: in try mode, what the socket does not take at
// once is kept and written, before anything else, by the next write out of
// try mode. Under TLS it goes below the tls.Conn, which then encrypts on
// the caller's goroutine.
//
// A Spill also gathers: between Gather and EndGather, the TLS records
// written to it go out together, in as few system calls as they fill
// gatherSize, rather than one each.
type Spill struct {
	net.Conn
	rc syscall.RawConn

	mu     sync.Mutex // serializes writes; guards the rest
	try    bool
	buf    []byte
	gather bool
	gbuf   []byte // gathered, from gatherPool
}

// gatherSize bounds what a Spill gathers before it writes: a Writer's
// chunk, as the four TLS records it makes, with their overhead.
const gatherSize = chunkSize + 4<<10

var gatherPool = sync.Pool{New: func() any { return make([]byte, 0, gatherSize) }}

// NewSpill wraps nc, or returns nil where writes that never block are not
// available (nc has no file descriptor, or the platform lacks support).
func NewSpill(nc net.Conn) *Spill {
	if !tryWriteSupported {
		return nil
	}
	// nc itself, never what it wraps: writing below TLS would bypass it.
	rc := sysConn(nc)
	if rc == nil {
		return nil
	}
	return &Spill{Conn: nc, rc: rc}
}

// SyscallConn returns the wrapped connection's.
func (s *Spill) SyscallConn() (syscall.RawConn, error) { return s.rc, nil }

// Write writes b. In try mode it makes one attempt that does not block and
// keeps what is left; otherwise it writes what is kept, then b, blocking as
// a net.Conn does.
func (s *Spill) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.try {
		n := 0
		if len(s.buf) == 0 {
			var err error
			if n, err = tryWrite(s.rc, b); err != nil {
				return n, err
			}
		}
		if n < len(b) {
			s.buf = append(s.buf, b[n:]...)
		}
		return len(b), nil
	}
	if err := s.flushLocked(); err != nil {
		return 0, err
	}
	if s.gather && len(b) <= gatherSize {
		if len(s.gbuf)+len(b) > gatherSize {
			if err := s.writeGathered(); err != nil {
				return 0, err
			}
		}
		if s.gbuf == nil {
			s.gbuf = gatherPool.Get().([]byte)
		}
		s.gbuf = append(s.gbuf, b...)
		return len(b), nil
	}
	if err := s.writeGathered(); err != nil {
		return 0, err
	}
	return s.Conn.Write(b)
}

// Gather starts gathering what is written: see Spill.
func (s *Spill) Gather() {
	s.mu.Lock()
	s.gather = true
	s.mu.Unlock()
}

// EndGather writes what was gathered, blocking, and stops gathering. Its
// error is that of the write: the bytes gathered are then lost, as those
// of a failed write are.
func (s *Spill) EndGather() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gather = false
	return s.writeGathered()
}

// writeGathered writes what was gathered; s.mu is held.
func (s *Spill) writeGathered() error {
	if s.gbuf == nil {
		return nil
	}
	_, err := s.Conn.Write(s.gbuf)
	gatherPool.Put(s.gbuf[:0]) //nolint:staticcheck // a slice header is fine here
	s.gbuf = nil
	return err
}

// setTry turns try mode on or off, and reports whether bytes are kept.
func (s *Spill) setTry(on bool) (held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.try = on
	return len(s.buf) > 0
}

// Flush writes what try mode kept, blocking.
func (s *Spill) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Spill) flushLocked() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.Conn.Write(s.buf)
	s.buf = nil
	return err
}

// Drained implements Source: nothing is buffered past the last element
// returned, the last read did not fill what it asked for (TLS may hold the
// rest of a record), and the socket has nothing to read. Without a socket
// it is never drained. It may be called from any goroutine.
func (r *Reader) Drained() bool {
	return r.rc != nil && !r.more.Load() && !unread(r.rc)
}

// rawConn finds the socket under src (through TLS), if any.
func rawConn(src any) syscall.RawConn {
	if nc, ok := src.(interface{ NetConn() net.Conn }); ok {
		src = nc.NetConn()
	}
	return sysConn(src)
}

// sysConn returns x's socket, if x is one.
func sysConn(x any) syscall.RawConn {
	sc, ok := x.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

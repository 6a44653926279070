package xmlstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/s2sd/s2sd/stream"
)

// Limits bound what one connection may make the reader hold. The zero value
// of each field means its default.
type Limits struct {
	// MaxStanza is the largest top-level element, in bytes, including its
	// tags (default 512 KiB, at most 1 GiB). A larger one is a
	// policy-violation.
	MaxStanza int
	// MaxDepth is the deepest nesting inside a top-level element; the
	// top-level element itself is depth 1 (default 64).
	MaxDepth int
	// MaxAttrs is the most attributes, namespace declarations included, on
	// one element (default 64).
	MaxAttrs int
	// MaxHeader is the largest stream header, XML declaration included
	// (default 16 KiB, at most 1 GiB).
	MaxHeader int
}

// Default limits.
const (
	DefaultMaxStanza = 512 << 10
	DefaultMaxDepth  = 64
	DefaultMaxAttrs  = 64
	DefaultMaxHeader = 16 << 10
)

// maxLimit caps MaxStanza and MaxHeader. It keeps a Reader's buffer, and so
// every offset into an element, below 2 GiB, the range of a span.
const maxLimit = 1 << 30

func (l Limits) withDefaults() Limits {
	if l.MaxStanza <= 0 {
		l.MaxStanza = DefaultMaxStanza
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	if l.MaxHeader <= 0 {
		l.MaxHeader = DefaultMaxHeader
	}
	l.MaxStanza = min(l.MaxStanza, maxLimit)
	l.MaxHeader = min(l.MaxHeader, maxLimit)
	return l
}

// MaxBuffered is the most bytes a Reader with these limits ever buffers: one
// whole element plus one read.
func (l Limits) MaxBuffered() int {
	l = l.withDefaults()
	return max(l.MaxStanza, l.MaxHeader) + readSize
}

const (
	readSize    = 4 << 10   // bytes asked of the connection per read
	initialBuf  = 4 << 10   // buffer allocated for a new reader
	shrinkAbove = 128 << 10 // a buffer larger than this is dropped when idle
	maxWant     = 64 << 10  // the most one read asks for
	idleSize    = 128       // what a wait between elements reads at most (SetIdleRelease)
)

// ErrStreamEnd is returned by Next when the peer closed the stream with
// </stream:stream>.
var ErrStreamEnd = errors.New("xmlstream: stream closed by peer")

// ErrBufferedData is returned by Reset when the peer sent bytes after the
// element that ended the old stream (e.g. after <starttls/>): such bytes
// would otherwise cross a security boundary.
var ErrBufferedData = stream.New(stream.PolicyViolation, "data sent before the stream restart completed")

// Reader reads an XML stream one top-level element at a time. It checks the
// restrictions of RFC 6120 §11.1 and the configured limits as it scans, and
// never holds more than Limits.MaxBuffered bytes. It is not safe for
// concurrent use.
type Reader struct {
	src  io.Reader
	lim  Limits
	buf  []byte
	r, w int
	err  error
	hdr  Header
	// hdrDecls are hdr.Decls, where the elements read under hdr share
	// them (nil when there are none)
	hdrDecls *[]Decl
	// hdrNS is the default namespace under hdr: its first declaration
	// of one, or its NS
	hdrNS string
	eof   bool
	// borrow: elements' Raw are in buf (SetBorrow); lent is the last one
	// handed out, lentEl its Element, and spare an Element that came back
	// (never owned), for the next one
	borrow bool
	lent   []byte
	lentEl *Element
	spare  *Element
	// alias: buf is the caller's, and elements' Raw alias it (ParseElement)
	alias bool
	// release: between elements, give the buffer back and wait for the
	// next bytes with a small one (SetIdleRelease), or, parked (see
	// Park), read them into a buffer of the pool.
	release bool
	parked  bool
	readAt  time.Time // when the last bytes were read (ReadAt)
	want    int       // adaptive read size, above readSize on busy streams
	full    bool      // the last read filled what it asked for
	// for Drained: the socket under src, and whether more was buffered
	// (or the last read full) after the last element
	rc   syscall.RawConn
	more atomic.Bool
	// writers that queued elements read here without waking their
	// goroutine, because more was buffered: Wake wakes them
	held []*Writer
	// scratch, reused between elements
	names []span
	decls []decl
	attrs []attr // of the elements below the top one
}

// span is a range of an element's bytes, by offsets relative to the
// element's start. The offsets are int32, which halves the attributes an
// Element keeps inline; maxLimit keeps them in range.
type span struct{ start, end int32 }

func newSpan(start, end int) span { return span{int32(start), int32(end)} }

type decl struct {
	prefix string
	ns     string
	depth  int
}

// NewReader returns a Reader of src with the given limits.
func NewReader(src io.Reader, lim Limits) *Reader {
	return &Reader{src: src, lim: lim.withDefaults(), rc: rawConn(src)}
}

// Reset discards the state of the stream and reads a new stream from src,
// as a stream restart after STARTTLS or SASL requires (RFC 6120 §4.3.3). It
// fails if bytes the peer sent are still buffered.
func (r *Reader) Reset(src io.Reader) error {
	r.reclaim()
	if r.w > r.r {
		return ErrBufferedData
	}
	r.src = src
	r.rc = rawConn(src)
	r.r, r.w = 0, 0
	r.err = nil
	r.eof = false
	r.parked = false
	r.setHeader(Header{})
	return nil
}

func (r *Reader) setHeader(h Header) {
	r.hdr, r.hdrDecls, r.hdrNS = h, nil, h.NS
	for _, d := range h.Decls {
		if d.Prefix == "" {
			r.hdrNS = d.NS // as resolve finds it
			break
		}
	}
	if len(h.Decls) > 0 {
		d := h.Decls // allocated here only, not h as a whole
		r.hdrDecls = &d
	}
}

// SetBorrow makes the elements Next returns borrow the Reader's buffer
// instead of getting a copy of their own: an element, its Raw and the
// Element itself, is then valid only until the Reader is used again (Next,
// ReadHeader, Reset, Park, Release), unless Element.Own is called before.
// An element not owned by then is the Reader's again, and Next reuses it.
// It spares, per element, the copy of its bytes and the allocation of
// the Element, for a stream whose elements are mostly handled before the
// next is read.
func (r *Reader) SetBorrow(on bool) { r.borrow = on }

// poison, under PoisonBorrowed, overwrites the bytes of the last element
// lent, now that the Reader is used again.
var poison atomic.Bool

// PoisonBorrowed makes every Reader overwrite a borrowed element's bytes
// with '#' as soon as it is used again, and its name with "#" (instead of
// reusing it), so that code that keeps one without Element.Own reads
// garbage at once, rather than once in a while when the buffer happens to
// be reused: for tests.
func PoisonBorrowed(on bool) { poison.Store(on) }

// Poisoning reports whether PoisonBorrowed is on: code that reuses what it
// lent, as the Reader does, spoils it instead.
func Poisoning() bool { return poison.Load() }

// reclaim ends the loan of the last element lent.
func (r *Reader) reclaim() {
	if r.lent == nil {
		return
	}
	el := r.lentEl
	if poison.Load() {
		for i := range r.lent {
			r.lent[i] = '#'
		}
		if el.borrowed {
			// Not reused, but spoilt as well.
			el.Local, el.Space, el.attrs = "#", "#", nil
		}
	} else if el.borrowed {
		// Not owned: the element is the Reader's again.
		r.spare = el
	}
	r.lent, r.lentEl = nil, nil
}

// ReadAt returns when the Reader last read bytes from its source: for an
// element Next just returned, a moment after its last bytes arrived (one
// clock reading per read, not per element).
func (r *Reader) ReadAt() time.Time { return r.readAt }

// Header returns the last stream header read.
func (r *Reader) Header() Header { return r.hdr }

// Buffered returns the number of bytes read from the connection and not yet
// consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill reads more bytes, keeping buf[keep:w]. It returns the new offset of
// keep (data may move to the front). limit bounds the bytes from keep.
func (r *Reader) fill(keep, limit int) (int, error) {
	r.parked = false
	if r.eof {
		return keep, io.ErrUnexpectedEOF
	}
	if r.w-keep >= limit {
		return keep, stream.Errorf(stream.PolicyViolation, "element larger than %d bytes", limit)
	}
	if keep > 0 && (r.w == len(r.buf) || len(r.buf)-r.w < readSize) {
		n := copy(r.buf, r.buf[keep:r.w])
		r.r -= keep
		r.w = n
		keep = 0
	}
	// Grow for a busy stream that asks for more than one read, or when
	// less than half a read fits; otherwise read into the room there is
	// (a pooled buffer holding the first bytes of a burst, see idleRead,
	// is kept rather than replaced by a new one for every element).
	want := max(readSize, r.want)
	if room := len(r.buf) - r.w; room < readSize/2 || (want > readSize && room < want) {
		size := max(initialBuf, 2*len(r.buf), r.w+want)
		if size > r.lim.MaxBuffered() {
			size = r.lim.MaxBuffered()
		}
		if size-r.w < readSize/2 {
			size = r.w + readSize
		}
		nb := make([]byte, size)
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	r.Wake()
	end := min(len(r.buf), keep+limit+1)
	if end <= r.w {
		end = min(len(r.buf), r.w+readSize)
	}
	n, err := r.src.Read(r.buf[r.w:end])
	r.full = n == end-r.w
	r.w += n
	if n > 0 {
		r.readAt = time.Now()
	}
	if !r.release {
		// A read that fills what was asked means more is waiting: ask
		// for more next time (fewer system calls on busy plain streams);
		// a short one means the stream caught up.
		if n == end-(r.w-n) && r.want < maxWant {
			r.want = max(2*r.want, 2*readSize)
		} else if n < readSize && r.want > 0 {
			r.want /= 2
		}
	}
	if n > 0 {
		return keep, nil
	}
	if err == io.EOF {
		r.eof = true
		return keep, io.ErrUnexpectedEOF
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return keep, err
}

// skipSpace consumes whitespace between top-level elements (keepalives).
// It returns the first other byte without consuming it.
func (r *Reader) skipSpace() (byte, error) {
	for {
		for r.r < r.w {
			switch c := r.buf[r.r]; c {
			case ' ', '\t', '\r', '\n':
				r.r++
			default:
				return c, nil
			}
		}
		r.r, r.w = 0, 0
		if r.err == nil && len(r.buf) > shrinkAbove {
			r.buf = nil
		}
		if r.release && !r.eof {
			if err := r.idleRead(); err != nil {
				if err == io.EOF {
					return 0, io.EOF
				}
				return 0, err
			}
			continue
		}
		if _, err := r.fill(0, readSize); err != nil {
			if err == io.ErrUnexpectedEOF {
				return 0, io.EOF
			}
			return 0, err
		}
	}
}

// SetIdleRelease makes the reader hold no buffer of its own while it waits
// between elements: it returns its buffer to a shared pool and waits with a
// 128-byte one, made for that wait. Streams that are idle most of the time
// then cost less memory; use it where the source buffers itself (TLS), or
// only while the stream is quiet, as it splits the first read of each burst
// in two. After Park, the first read goes to a buffer of the pool instead.
func (r *Reader) SetIdleRelease(on bool) { r.release = on }

// Release drops the read buffer when nothing is buffered, for a stream
// that has been quiet for a while: with SetIdleRelease, the Reader then
// waits without one, and takes one again when bytes come. A shared pool
// would keep the buffer alive for two more collections.
func (r *Reader) Release() {
	r.reclaim()
	r.spare = nil
	if r.r == r.w && !r.alias {
		r.buf, r.r, r.w = nil, 0, 0
	}
}

// Park gives up the read buffer when nothing is buffered, as a wait with
// SetIdleRelease does, for a stream whose owner waits for the socket to
// be readable (WaitReadable) before it reads on: a buffer of the shared
// pool goes back to it, any other is dropped. With SetIdleRelease, the
// first read after that goes straight into a buffer of the pool, as
// bytes are there to read.
func (r *Reader) Park() {
	r.reclaim()
	r.spare = nil // nor an Element kept for the next
	if r.r != r.w || r.alias {
		return
	}
	r.putBuf()
	r.r, r.w = 0, 0
	r.parked = true
}

// putBuf gives up the read buffer: one of the shared pool's size goes
// back to it, any other is dropped.
func (r *Reader) putBuf() {
	if r.buf != nil && len(r.buf) == initialBuf {
		bufPool.Put(r.buf[:initialBuf]) //nolint:staticcheck // a slice header is fine here
	}
	r.buf = nil
}

var bufPool = sync.Pool{New: func() any { return make([]byte, initialBuf) }}

// idleRead waits for the next bytes without a buffer of the reader's own,
// or, after Park, reads them into a buffer of the pool.
func (r *Reader) idleRead() error {
	r.putBuf()
	r.Wake()
	var n int
	var err error
	if r.parked {
		r.parked = false
		r.buf = bufPool.Get().([]byte)
		n, err = r.src.Read(r.buf)
		r.full = n == len(r.buf)
		if n > 0 {
			r.w, r.readAt = n, time.Now()
			return nil
		}
		r.putBuf()
	} else {
		// Made for this wait, not kept in the Reader: a stream that
		// parks never needs one.
		idle := new([idleSize]byte)
		n, err = r.src.Read(idle[:])
		r.full = n == len(idle)
		if n > 0 {
			r.buf = bufPool.Get().([]byte)
			r.w, r.readAt = copy(r.buf, idle[:n]), time.Now()
			return nil
		}
	}
	if err == io.EOF {
		r.eof = true
		return io.EOF
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// hold records that w queued an element read here and did not wake its
// goroutine.
func (r *Reader) hold(w *Writer) {
	for _, h := range r.held {
		if h == w {
			return
		}
	}
	r.held = append(r.held, w)
}

// Wake wakes the goroutines of the writers that queued elements read here
// while more was buffered (Writer.AppendFrom): handled one after the
// other on the reading goroutine, those elements go out together. The
// Reader wakes them itself before it reads from its source and when it
// fails; a caller that stops reading, or waits for anything else between
// two elements, calls Wake first. It must be called on the goroutine that
// reads.
func (r *Reader) Wake() {
	for i, w := range r.held {
		w.wake()
		r.held[i] = nil
	}
	r.held = r.held[:0]
}

// Wake is Reader.Wake for src, when src is a Reader: for code about to
// wait on the goroutine that reads src, while handling one of its
// elements.
func Wake(src Source) {
	if r, ok := src.(*Reader); ok {
		r.Wake()
	}
}

// fail keeps err, which every later call returns, unless it is a timeout:
// then nothing is lost, and the next call of Next or ReadHeader starts the
// element over from its first byte, still buffered, and reads on.
func (r *Reader) fail(err error) error {
	r.Wake()
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return err
	}
	r.err = err
	return err
}

// ReadHeader reads an optional XML declaration and the <stream:stream> start
// tag (RFC 6120 §4.2, §4.7). It checks that the stream namespace is bound
// to http://etherx.jabber.org/streams; which default namespace is acceptable
// is for the caller to decide.
func (r *Reader) ReadHeader() (Header, error) {
	r.reclaim()
	if r.err != nil {
		return Header{}, r.err
	}
	c, err := r.skipSpace()
	if err != nil {
		return Header{}, r.fail(err)
	}
	if c != '<' {
		return Header{}, r.fail(stream.New(stream.NotWellFormed, "expected a stream header"))
	}
	sc := scanner{r: r, start: r.r, limit: r.lim.MaxHeader, header: true}
	hdr, err := sc.streamHeader()
	if err != nil {
		return Header{}, r.fail(err)
	}
	r.setHeader(hdr)
	return hdr, nil
}

// Next returns the next top-level element of the stream. Whitespace between
// elements is skipped. At </stream:stream> it returns ErrStreamEnd. The
// element's Raw bytes are its own and stay valid, unless the Reader lends
// them (SetBorrow).
func (r *Reader) Next() (*Element, error) {
	r.reclaim()
	if r.err != nil {
		return nil, r.err
	}
	c, err := r.skipSpace()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, r.fail(err)
	}
	if c != '<' {
		return nil, r.fail(stream.New(stream.NotWellFormed, "text at the top level of the stream"))
	}
	sc := scanner{r: r, start: r.r, limit: r.lim.MaxStanza}
	el, err := sc.element()
	if err != nil {
		return nil, r.fail(err)
	}
	if r.rc != nil {
		r.more.Store(r.r < r.w || r.full)
	}
	return el, nil
}

// ParseElement scans a single element, read as if it were on a stream with
// context ctx (for locally built stanzas and tests). Limits are the
// defaults. It scans raw in place: the Element's Raw is raw itself, so the
// caller must not change raw while it uses the Element.
func ParseElement(raw []byte, ctx StreamContext) (*Element, error) {
	r := NewReader(nil, Limits{})
	if len(raw) > maxLimit {
		// Scanned in place, it is not bounded by a buffer: refuse it before
		// its offsets could overflow a span.
		return nil, stream.Errorf(stream.PolicyViolation, "element larger than %d bytes", r.lim.MaxStanza)
	}
	r.buf, r.w, r.eof, r.alias = raw, len(raw), true, true
	r.setHeader(Header{NS: ctx.NS, Lang: ctx.Lang, Decls: ctx.Decls})
	el, err := r.Next()
	if err != nil {
		return nil, err
	}
	if r.Buffered() > 0 {
		return nil, stream.New(stream.NotWellFormed, "data after the element")
	}
	return el, nil
}

// scanner scans one element (or the stream header) starting at r.buf[start].
// All positions are relative to start, so that they survive the buffer being
// compacted by fill.
type scanner struct {
	r      *Reader
	start  int
	limit  int
	header bool
	pos    int // relative scan position
	// special: the last start tag has an attribute whose name has a
	// prefix or begins with 'x' (xmlns)
	special bool
}

func (s *scanner) avail() int { return s.r.w - s.start }

func (s *scanner) at(i int) byte { return s.r.buf[s.start+i] }

func (s *scanner) bytes(a, b int) []byte { return s.r.buf[s.start+a : s.start+b] }

func (s *scanner) span(sp span) []byte { return s.bytes(int(sp.start), int(sp.end)) }

// more reads more data or returns the error that stops the scan.
func (s *scanner) more() error {
	keep, err := s.r.fill(s.start, s.limit)
	s.start = keep
	if err == io.ErrUnexpectedEOF && s.r.eof {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ensure makes at least n bytes from pos available.
func (s *scanner) ensure(n int) error {
	if s.start+s.pos+n <= s.r.w {
		return nil
	}
	return s.ensureMore(n)
}

func (s *scanner) ensureMore(n int) error {
	for s.avail()-s.pos < n {
		if err := s.more(); err != nil {
			return err
		}
	}
	return nil
}

var (
	errRestricted = func(what string) error { return stream.New(stream.RestrictedXML, what+" not allowed in XMPP") }
	errSyntax     = func(what string) error { return stream.New(stream.NotWellFormed, what) }
)

func isSpace(c byte) bool { return spaces[c] }

// spaces are the bytes XML calls white space.
var spaces = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

// nameClass classes the bytes a name may hold, as bits: nameByte for
// ASCII letters and digits, '_', '-', '.' and ':', with nameColon for ':',
// nameNoStart for those a name may not begin with, and nameHigh for
// non-ASCII bytes, checked as UTF-8 once the name ends. Zero ends a name.
var nameClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ':':
			t[c] = nameByte | nameColon | nameNoStart
		case c >= utf8.RuneSelf:
			t[c] = nameByte | nameHigh
		case c >= '0' && c <= '9' || c == '-' || c == '.':
			t[c] = nameByte | nameNoStart
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			t[c] = nameByte
		}
	}
	return t
}()

const (
	nameByte = 1 << iota
	nameColon
	nameHigh
	nameNoStart // not as a name's first byte
)

// name scans a name at pos and returns its span, and whether it holds a
// colon; the byte after it is available.
func (s *scanner) name() (span, bool, error) {
	a := s.pos
	var class uint8 // the classes of the name's bytes, ORed together
	for {
		buf := s.r.buf[s.start:s.r.w]
		i := s.pos // in a register, not in s
		for i < len(buf) {
			t := nameClass[buf[i]]
			if t == 0 {
				s.pos = i
				if i == a {
					return span{}, false, errSyntax("expected a name")
				}
				if nameClass[buf[a]]&nameNoStart != 0 {
					return span{}, false, errSyntax("invalid name")
				}
				// Names are nearly always ASCII, which needs no decoding.
				if class&nameHigh != 0 && !utf8.Valid(buf[a:i]) {
					return span{}, false, stream.New(stream.NotWellFormed, "invalid UTF-8 in a name")
				}
				return newSpan(a, i), class&nameColon != 0, nil
			}
			class |= t
			i++
		}
		s.pos = i
		if err := s.more(); err != nil {
			return span{}, false, err
		}
	}
}

// skipWS skips whitespace at pos and reports whether there was any.
func (s *scanner) skipWS() (bool, error) {
	skipped := false
	for {
		for s.pos < s.avail() {
			if !isSpace(s.at(s.pos)) {
				return skipped, nil
			}
			s.pos++
			skipped = true
		}
		if err := s.more(); err != nil {
			return skipped, err
		}
	}
}

// text checks character data from pos up to the next '<' (or, in an
// attribute value, the closing quote q). It allows only the predefined
// entities and character references (RFC 6120 §11.1) and valid UTF-8. It
// reports whether it met a reference: an attribute value with one needs
// unescaping.
func (s *scanner) text(q byte) (refs bool, err error) {
	tbl := &stopText
	switch q {
	case '\'':
		tbl = &stopApos
	case '"':
		tbl = &stopQuot
	}
	pm, pc, sc := stopWords(q)
	x := q
	if q == 0 {
		x = '>'
	}
	for {
		for {
			// Fast path: skip the bytes that need no attention, 32 at a
			// time while none of them might, then find the first that
			// might (a tab or newline is a false alarm, passed over
			// here). Non-ASCII bytes do not stop it: the run they are in
			// is checked as UTF-8 at once, below.
			buf := s.r.buf[s.start+s.pos : s.r.w]
			i := 0
			var high uint64 // the high bits of the bytes skipped
			for {
				for i+32 <= len(buf) {
					x0 := binary.LittleEndian.Uint64(buf[i:])
					x1 := binary.LittleEndian.Uint64(buf[i+8:])
					x2 := binary.LittleEndian.Uint64(buf[i+16:])
					x3 := binary.LittleEndian.Uint64(buf[i+24:])
					if mayStop(x0, pm, pc, sc)|mayStop(x1, pm, pc, sc)|mayStop(x2, pm, pc, sc)|mayStop(x3, pm, pc, sc) != 0 {
						break
					}
					high |= x0 | x1 | x2 | x3
					i += 32
					// A long run: the vector scan takes the rest of it
					// (short ones, most attribute values, end above
					// without its call).
					if n, h := plainRun(buf[i:], x); n > 0 {
						i += n
						if h {
							high |= highs
						}
					}
				}
				for ; i+8 <= len(buf); i += 8 {
					x := binary.LittleEndian.Uint64(buf[i:])
					if m := mayStop(x, pm, pc, sc); m != 0 {
						n := bits.TrailingZeros64(m) >> 3
						high |= x & (1<<(8*n) - 1)
						i += n
						break
					}
					high |= x
				}
				if i+8 > len(buf) {
					for i < len(buf) && !tbl[buf[i]] {
						high |= uint64(buf[i])
						i++
					}
				}
				if i == len(buf) || tbl[buf[i]] {
					break
				}
				i++ // a tab or newline
			}
			if high&highs != 0 {
				// A character may continue past what is buffered: it
				// is checked with the rest once more is read.
				run := buf[:i]
				if i == len(buf) {
					run = fullRunes(run)
				}
				if !validChars(run) {
					return refs, stream.New(stream.NotWellFormed, "invalid UTF-8")
				}
				if len(run) < i {
					s.pos += len(run)
					break
				}
			}
			s.pos += i
			if i == len(buf) {
				break
			}
			switch c := buf[i]; {
			case c == '<':
				if q != 0 {
					return refs, errSyntax("'<' in an attribute value")
				}
				return refs, nil
			case c == q && q != 0:
				return refs, nil
			case c == '>':
				// Content only (in attribute values '>' stops nothing):
				// "]]>" must not appear there (XML 1.0 §2.4).
				if s.pos >= 2 && s.r.buf[s.start+s.pos-2] == ']' && s.r.buf[s.start+s.pos-1] == ']' {
					return refs, errSyntax("']]>' in text")
				}
				s.pos++
			case c == '&':
				if err := s.ref(); err != nil {
					return refs, err
				}
				refs = true
			default:
				return refs, errSyntax("control character in text")
			}
		}
		if err := s.more(); err != nil {
			return refs, err
		}
	}
}

// fullRunes returns b without the first bytes of a character that b
// ends in the middle of (at most three).
func fullRunes(b []byte) []byte {
	for n := 1; n <= utf8.UTFMax-1 && n <= len(b); n++ {
		c := b[len(b)-n]
		if c < utf8.RuneSelf {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-n:]) {
				return b[:len(b)-n]
			}
			return b
		}
	}
	return b
}

// validChars reports whether b is valid UTF-8 without the two
// non-characters XML excludes, U+FFFE and U+FFFF (XML 1.0 §2.2; UTF-8
// excludes surrogates, and the control characters stop the scan before).
func validChars(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for {
		i := bytes.Index(b, []byte("\xef\xbf"))
		if i < 0 || i+2 >= len(b) {
			return true
		}
		if b[i+2] == 0xbe || b[i+2] == 0xbf {
			return false
		}
		b = b[i+2:]
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stopWords returns mayStop's arguments for text in content (q 0) or in
// an attribute value quoted with q. Besides control characters, text
// stops at four bytes, as a pair that differs in one bit and a single
// one: in content '<' and '>' (which may end a "]]>"), then '&'; in
// attribute values '&' and the closing quote, then '<'.
func stopWords(q byte) (pm, pc, sc uint64) {
	switch q {
	case '\'':
		return 1 * ones, '\'' * ones, '<' * ones
	case '"':
		return 4 * ones, '&' * ones, '<' * ones
	}
	return 2 * ones, '>' * ones, '&' * ones
}

// mayStop returns, for the eight bytes in x (little-endian), a mask whose
// lowest set bit is in the first byte that might stop a text scan: a
// control character (tab and newlines included, a false alarm the caller
// passes over), a byte that equals pc once the bits of pm are set in it,
// or the byte in sc. pm and pc name two bytes that differ in one bit ('<'
// and '>', '&' and the apostrophe, '&' and '"'), so that one comparison finds
// either. It is zero when none might. Non-ASCII bytes never match. Bits
// above the first may be spurious: a borrow carries into the next byte
// only from a byte that matched.
func mayStop(x, pm, pc, sc uint64) uint64 {
	ctl := x - 0x20*ones
	pair := (x | pm ^ pc) - ones
	single := (x ^ sc) - ones
	// The high bit of ^x is that of ^(x^c) for any ASCII c.
	return (ctl | pair | single) &^ x & highs
}

// Bytes at which text scanning stops: markup, references, control
// characters, in content '>' (for "]]>") and, in attribute values, the
// closing quote. Non-ASCII runs are checked as UTF-8 as they are skipped.
var stopText, stopApos, stopQuot = stopTable('>'), stopTable('\''), stopTable('"')

func stopTable(q byte) [256]bool {
	var t [256]bool
	for c := 0; c < 256; c++ {
		t[c] = c == '<' || c == '&' || c < 0x20 && c != '\t' && c != '\n' && c != '\r'
	}
	if q != 0 {
		t[q] = true
	}
	return t
}

// ref checks an entity or character reference at pos.
func (s *scanner) ref() error {
	a := s.pos
	for {
		for i := s.pos + 1; i < s.avail(); i++ {
			if s.at(i) != ';' {
				if i-a > 12 {
					return errSyntax("unterminated reference")
				}
				continue
			}
			ref := s.bytes(a+1, i)
			s.pos = i + 1
			switch string(ref) {
			case "amp", "lt", "gt", "quot", "apos":
				return nil
			}
			if len(ref) > 1 && ref[0] == '#' {
				return checkCharRef(ref[1:])
			}
			return errRestricted("entity reference")
		}
		if err := s.more(); err != nil {
			return err
		}
	}
}

func checkCharRef(b []byte) error {
	base := 10
	if b[0] == 'x' {
		base, b = 16, b[1:]
	}
	if len(b) == 0 || len(b) > 8 {
		return errSyntax("invalid character reference")
	}
	var v rune
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case base == 16 && c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return errSyntax("invalid character reference")
		}
		v = v*rune(base) + rune(d)
	}
	if !(v == 0x9 || v == 0xA || v == 0xD || v >= 0x20 && v <= 0xD7FF ||
		v >= 0xE000 && v <= 0xFFFD || v >= 0x10000 && v <= 0x10FFFF) {
		return errSyntax("character reference to an invalid character")
	}
	return nil
}

// expect consumes the literal lit at pos.
func (s *scanner) hasPrefix(lit string) (bool, error) {
	if err := s.ensure(len(lit)); err != nil {
		// Not enough data even at EOF: compare what there is.
		if s.avail()-s.pos < len(lit) && !bytes.HasPrefix([]byte(lit), s.bytes(s.pos, s.avail())) {
			return false, nil
		}
		return false, err
	}
	return string(s.bytes(s.pos, s.pos+len(lit))) == lit, nil
}

// markup handles '<!' and '<?' at pos: CDATA sections are allowed, the rest is
// restricted XML.
func (s *scanner) markup() error {
	ok, err := s.hasPrefix("<![CDATA[")
	if err != nil {
		return err
	}
	if !ok {
		if ok, _ := s.hasPrefix("<!--"); ok {
			return errRestricted("comment")
		}
		if s.at(s.pos+1) == '?' {
			return errRestricted("processing instruction")
		}
		return errRestricted("DTD or declaration")
	}
	s.pos += len("<![CDATA[")
	for {
		for s.pos+2 < s.avail() {
			c := s.at(s.pos)
			if c == ']' && s.at(s.pos+1) == ']' && s.at(s.pos+2) == '>' {
				s.pos += 3
				return nil
			}
			if c >= 0x80 {
				if !utf8.FullRune(s.bytes(s.pos, s.avail())) {
					break
				}
				rn, n := utf8.DecodeRune(s.bytes(s.pos, s.avail()))
				if rn == utf8.RuneError && n == 1 {
					return stream.New(stream.NotWellFormed, "invalid UTF-8")
				}
				s.pos += n
				continue
			}
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return errSyntax("control character in CDATA")
			}
			s.pos++
		}
		if err := s.more(); err != nil {
			return err
		}
	}
}

// attr is an attribute of a start tag, by offsets relative to the element.
type attr struct {
	name, value span
	escaped     bool   // value holds '&'
	prefixed    bool   // name holds ':'
	key         uint16 // nameKey(name)
}

// startTag scans a start tag at pos ('<' already checked). It returns the
// name, whether the name has a prefix, the attributes, and whether the tag
// is empty (<x/>).
func (s *scanner) startTag(attrs []attr) (span, bool, []attr, bool, error) {
	if name, prefixed, out, empty, special, end, ok := startTagFast(s.r.buf[s.start:s.r.w], s.pos, attrs, s.r.lim.MaxAttrs); ok {
		s.pos, s.special = end, special
		return name, prefixed, out, empty, nil
	}
	return s.startTagSlow(attrs)
}

// startTagSlow is startTag for any tag: byte by byte through the Reader,
// reading more as it needs, with the error of anything wrong.
func (s *scanner) startTagSlow(attrs []attr) (span, bool, []attr, bool, error) {
	s.pos++ // '<'
	s.special = false
	name, prefixed, err := s.name()
	if err != nil {
		return span{}, false, nil, false, err
	}
	for {
		ws, err := s.skipWS()
		if err != nil {
			return span{}, false, nil, false, err
		}
		c := s.at(s.pos)
		switch c {
		case '>':
			s.pos++
			return name, prefixed, attrs, false, nil
		case '/':
			if err := s.ensure(2); err != nil {
				return span{}, false, nil, false, err
			}
			if s.at(s.pos+1) != '>' {
				return span{}, false, nil, false, errSyntax("expected '/>'")
			}
			s.pos += 2
			return name, prefixed, attrs, true, nil
		}
		if !ws {
			return span{}, false, nil, false, errSyntax("expected whitespace between attributes")
		}
		if len(attrs) >= s.r.lim.MaxAttrs {
			return span{}, false, nil, false, stream.Errorf(stream.PolicyViolation, "more than %d attributes on an element", s.r.lim.MaxAttrs)
		}
		an, ap, err := s.name()
		if err != nil {
			return span{}, false, nil, false, err
		}
		if _, err := s.skipWS(); err != nil {
			return span{}, false, nil, false, err
		}
		if s.at(s.pos) != '=' {
			return span{}, false, nil, false, errSyntax("expected '=' after an attribute name")
		}
		s.pos++
		if _, err := s.skipWS(); err != nil {
			return span{}, false, nil, false, err
		}
		q := s.at(s.pos)
		if q != '\'' && q != '"' {
			return span{}, false, nil, false, errSyntax("unquoted attribute value")
		}
		s.pos++
		v0 := s.pos
		refs, err := s.text(q)
		if err != nil {
			return span{}, false, nil, false, err
		}
		val := newSpan(v0, s.pos)
		s.pos++ // quote
		nb := s.span(an)
		key := nameKey(nb)
		if hasAttr(s.r.buf[s.start:], attrs, nb, key) {
			return span{}, false, nil, false, errSyntax("duplicate attribute")
		}
		if ap || nb[0] == 'x' {
			s.special = true
		}
		attrs = append(attrs, attr{name: an, value: val, escaped: refs, prefixed: ap, key: key})
	}
}

// startTagFast scans the start tag at buf[pos] ('<' checked) as startTag
// does, when it is of the usual kind and whole in buf: ASCII names, '='
// right after each attribute's name and the quote right after it, values
// of ASCII without references, at most maxAttrs attributes, none twice. It
// works on buf and locals alone, which the compiler keeps in registers,
// where startTag goes through the Reader for every byte. For anything
// else it reports ok false, and startTag scans the tag (and reports what
// is wrong with it, if anything is). Offsets are buf's, as startTag's.
func startTagFast(buf []byte, pos int, attrs []attr, maxAttrs int) (name span, prefixed bool, out []attr, empty, special bool, end int, ok bool) {
	a := pos + 1
	i, class := nameEnd(buf, a)
	if i == a || i >= len(buf) || class&nameHigh != 0 || nameClass[buf[a]]&nameNoStart != 0 {
		return
	}
	name, prefixed = newSpan(a, i), class&nameColon != 0
	for {
		// buf[i] is available here.
		ws := false
		for spaces[buf[i]] {
			ws = true
			if i++; i == len(buf) {
				return
			}
		}
		switch buf[i] {
		case '>':
			return name, prefixed, attrs, false, special, i + 1, true
		case '/':
			if i+1 < len(buf) && buf[i+1] == '>' {
				return name, prefixed, attrs, true, special, i + 2, true
			}
			return
		}
		if !ws || len(attrs) >= maxAttrs {
			return
		}
		a = i
		i, class = nameEnd(buf, a)
		if i == a || i+1 >= len(buf) || class&nameHigh != 0 || nameClass[buf[a]]&nameNoStart != 0 || buf[i] != '=' {
			return
		}
		an := newSpan(a, i)
		q := buf[i+1]
		if q != '\'' && q != '"' {
			return
		}
		tbl := &plainApos
		if q == '"' {
			tbl = &plainQuot
		}
		i += 2
		v0 := i
		// Byte by byte: values are short (a word at a time was slower).
		for i < len(buf) && !tbl[buf[i]] {
			i++
		}
		// The closing quote, and a byte after it.
		if i+1 >= len(buf) || buf[i] != q {
			return
		}
		val := newSpan(v0, i)
		i++
		nb := buf[an.start:an.end]
		key := nameKey(nb)
		if hasAttr(buf, attrs, nb, key) {
			return
		}
		ap := class&nameColon != 0
		if ap || nb[0] == 'x' {
			special = true
		}
		attrs = append(attrs, attr{name: an, value: val, prefixed: ap, key: key})
	}
}

// hasAttr reports whether attrs, whose spans are buf's, hold one named
// name, whose nameKey is key.
func hasAttr(buf []byte, attrs []attr, name []byte, key uint16) bool {
	for _, a := range attrs {
		if a.key == key && string(buf[a.name.start:a.name.end]) == string(name) {
			return true
		}
	}
	return false
}

// nameKey is a name's length and ends, which tell most names apart
// before their bytes are compared.
func nameKey(b []byte) uint16 {
	return uint16(len(b))<<8 ^ uint16(b[0])<<4 ^ uint16(b[len(b)-1])
}

// nameEnd returns where the name bytes from buf[i] end, and their
// classes ORed together (nameClass).
func nameEnd(buf []byte, i int) (int, uint8) {
	var class uint8
	for i < len(buf) {
		t := nameClass[buf[i]]
		if t == 0 {
			break
		}
		class |= t
		i++
	}
	return i, class
}

// plainApos and plainQuot are stopApos and stopQuot that stop also at
// non-ASCII bytes: the values startTagFast takes (it leaves any other to
// startTagSlow).
var plainApos, plainQuot = plainTable(&stopApos), plainTable(&stopQuot)

func plainTable(stop *[256]bool) [256]bool {
	t := *stop
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	return t
}

// element scans one complete top-level element.
func (s *scanner) element() (*Element, error) {
	r := s.r
	// The scratch slices are used in place, not copied to locals and
	// stored back by a deferred call: with this many returns the defer
	// is not open-coded, and its run-time cost showed in profiles.
	r.names, r.decls, r.attrs = r.names[:0], r.decls[:0], r.attrs[:0]
	var top []attr
	var inherited []string
	el := r.spare
	if el != nil {
		r.spare = nil
		*el = Element{}
	} else {
		el = &Element{}
	}
	for {
		if err := s.ensure(1); err != nil {
			return nil, err
		}
		if s.at(s.pos) != '<' {
			if len(r.names) == 0 {
				return nil, errSyntax("text at the top level of the stream")
			}
			if _, err := s.text(0); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.ensure(2); err != nil {
			return nil, err
		}
		switch s.at(s.pos + 1) {
		case '/':
			if len(r.names) == 0 {
				// </stream:stream>
				return nil, s.streamEnd()
			}
			s.pos += 2
			open := r.names[len(r.names)-1]
			// Nearly always the open name and '>', buffered: compared
			// in place, without scanning a name.
			if n := int(open.end - open.start); s.pos+n < s.avail() && s.at(s.pos+n) == '>' &&
				string(s.bytes(s.pos, s.pos+n)) == string(s.span(open)) {
				s.pos += n + 1
			} else {
				n, _, err := s.name()
				if err != nil {
					return nil, err
				}
				if _, err := s.skipWS(); err != nil {
					return nil, err
				}
				if s.at(s.pos) != '>' {
					return nil, errSyntax("expected '>' in an end tag")
				}
				s.pos++
				if !bytes.Equal(s.span(open), s.span(n)) {
					return nil, errSyntax("end tag does not match start tag")
				}
			}
			r.names = r.names[:len(r.names)-1]
			for len(r.decls) > 0 && r.decls[len(r.decls)-1].depth > len(r.names) {
				r.decls = r.decls[:len(r.decls)-1]
			}
			if len(r.names) == 0 {
				return s.finish(el, top, inherited)
			}
			continue
		case '!', '?':
			if len(r.names) == 0 {
				return nil, s.markupTop()
			}
			if err := s.markup(); err != nil {
				return nil, err
			}
			continue
		}
		depth := len(r.names) + 1
		if depth > r.lim.MaxDepth {
			return nil, stream.Errorf(stream.PolicyViolation, "elements nested deeper than %d", r.lim.MaxDepth)
		}
		var name span
		var prefixed bool
		var attrs []attr
		var empty bool
		var err error
		if depth == 1 {
			name, prefixed, attrs, empty, err = s.startTag(el.attrBuf[:0])
		} else {
			name, prefixed, attrs, empty, err = s.startTag(r.attrs[:0])
		}
		if err != nil {
			return nil, err
		}
		if depth == 1 {
			top = attrs
		} else {
			r.attrs = attrs
		}
		// Namespace declarations, then prefix checks: only where a
		// name begins with 'x' or has a prefix (s.special).
		if s.special {
			for _, a := range attrs {
				an := s.span(a.name)
				if !bytes.HasPrefix(an, []byte("xmlns")) {
					continue
				}
				p := ""
				if len(an) > 5 {
					if an[5] != ':' {
						continue
					}
					p = string(an[6:])
				} else if depth > 1 {
					// A default namespace below the top element binds no
					// prefix: nothing to check.
					continue
				}
				r.decls = append(r.decls, decl{prefix: p, ns: s.unescape(a), depth: depth})
			}
		}
		// An unprefixed name below the top element needs no namespace
		// (only the top element's is kept) and binds no prefix: nothing
		// to resolve.
		var ns string
		switch {
		case prefixed:
			var via string
			if ns, via, err = s.resolve(s.span(name), true, r.decls, true); err != nil {
				return nil, err
			}
			if via != "" && !contains(inherited, via) {
				inherited = append(inherited, via)
			}
		case depth == 1:
			ns = s.defaultNS(r.decls)
		}
		for _, a := range attrs {
			if !a.prefixed {
				continue
			}
			an := s.span(a.name)
			if i := bytes.IndexByte(an, ':'); i > 0 {
				p := an[:i]
				if string(p) == "xmlns" || string(p) == "xml" {
					continue
				}
				_, via, err := s.resolve(an, true, r.decls, false)
				if err != nil {
					return nil, err
				}
				if via != "" && !contains(inherited, via) {
					inherited = append(inherited, via)
				}
			}
		}
		if depth == 1 {
			el.nameEnd = name.end
			el.startEnd = int32(s.pos)
			el.Local, el.Space = localName(s.span(name), prefixed), ns
		}
		if empty {
			for len(r.decls) > 0 && r.decls[len(r.decls)-1].depth >= depth {
				r.decls = r.decls[:len(r.decls)-1]
			}
			if depth == 1 {
				return s.finish(el, top, inherited)
			}
			continue
		}
		r.names = append(r.names, name)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// defaultNS is the default namespace for an unprefixed element name, as
// resolve finds it: the innermost declaration in decls, or the header's.
func (s *scanner) defaultNS(decls []decl) string {
	for i := len(decls) - 1; i >= 0; i-- {
		if decls[i].prefix == "" {
			return decls[i].ns
		}
	}
	return s.r.hdrNS
}

// resolve finds the namespace of a qualified name. via is the prefix when it
// is bound only on the stream header.
func (s *scanner) resolve(qname []byte, prefixed bool, decls []decl, isElem bool) (ns, via string, err error) {
	prefix := []byte(nil)
	if prefixed {
		i := bytes.IndexByte(qname, ':')
		prefix = qname[:i]
		if i == 0 || i == len(qname)-1 || bytes.IndexByte(qname[i+1:], ':') >= 0 {
			return "", "", stream.New(stream.NotWellFormed, "invalid qualified name")
		}
		if string(prefix) == "xml" {
			return "http://www.w3.org/XML/1998/namespace", "", nil
		}
	} else if !isElem {
		return "", "", nil
	}
	for i := len(decls) - 1; i >= 0; i-- {
		if decls[i].prefix == string(prefix) {
			return decls[i].ns, "", nil
		}
	}
	for _, d := range s.r.hdr.Decls {
		if d.Prefix == string(prefix) {
			if d.Prefix == "" {
				return d.NS, "", nil
			}
			return d.NS, d.Prefix, nil
		}
	}
	if prefix == nil {
		return s.r.hdr.NS, "", nil
	}
	return "", "", stream.Errorf(stream.BadNamespacePrefix, "unbound namespace prefix %q", prefix)
}

func localName(q []byte, prefixed bool) string {
	if prefixed {
		q = q[bytes.IndexByte(q, ':')+1:]
	}
	switch string(q) {
	case "message":
		return "message"
	case "presence":
		return "presence"
	case "iq":
		return "iq"
	case "result":
		return "result"
	case "verify":
		return "verify"
	}
	return string(q)
}

func (s *scanner) unescape(a attr) string {
	v := s.span(a.value)
	if !a.escaped {
		return string(v)
	}
	return unescape(v)
}

// streamEnd checks </stream:stream> at pos.
func (s *scanner) streamEnd() error {
	s.pos += 2
	n, _, err := s.name()
	if err != nil {
		return err
	}
	if _, err := s.skipWS(); err != nil {
		return err
	}
	if s.at(s.pos) != '>' {
		return errSyntax("expected '>' in an end tag")
	}
	want := s.r.hdr.streamPrefix() + "stream"
	if string(s.span(n)) != want {
		return errSyntax("end tag does not match the stream header")
	}
	s.pos++
	s.r.r = s.start + s.pos
	return ErrStreamEnd
}

// markupTop reports restricted markup between stanzas.
func (s *scanner) markupTop() error {
	if s.at(s.pos+1) == '?' {
		return errRestricted("processing instruction")
	}
	if ok, _ := s.hasPrefix("<!--"); ok {
		return errRestricted("comment")
	}
	if ok, _ := s.hasPrefix("<![CDATA["); ok {
		return errSyntax("character data at the top level of the stream")
	}
	return errRestricted("DTD or declaration")
}

func (s *scanner) finish(el *Element, top []attr, inherited []string) (*Element, error) {
	if s.pos > s.limit {
		// fill checks the limit only when it must read more; an element
		// that arrived whole in one read is checked here.
		return nil, stream.Errorf(stream.PolicyViolation, "element larger than %d bytes", s.limit)
	}
	switch {
	case s.r.alias:
		el.Raw = s.bytes(0, s.pos)
	case s.r.borrow:
		// Capped, so that appending to Raw never writes over what
		// follows it in the buffer.
		el.Raw = s.bytes(0, s.pos)[:s.pos:s.pos]
		el.borrowed = true
		s.r.lent, s.r.lentEl = el.Raw, el
	default:
		// make and copy, recognized together, allocate without
		// clearing: append would clear the size class's slack.
		src := s.bytes(0, s.pos)
		raw := make([]byte, len(src))
		copy(raw, src)
		el.Raw, el.private = raw, true
	}
	el.attrs = top
	el.inherited = inherited
	el.hdrDecls = s.r.hdrDecls
	s.r.r = s.start + s.pos
	return el, nil
}

// CheckStream reads b as what one side of a stream wrote: a stream header,
// then elements until the end of the stream or of b. It returns the first
// error other than those ends (tests use it on what a server wrote).
func CheckStream(b []byte) error {
	r := NewReader(bytes.NewReader(b), Limits{})
	if _, err := r.ReadHeader(); err != nil {
		return err
	}
	for {
		if _, err := r.Next(); err != nil {
			if errors.Is(err, ErrStreamEnd) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
	}
}

package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2sd/s2sd/cpim"
)

// Sink takes the objects the gateway makes. Put returns once the object is
// stored or handed on; an error makes the gateway bounce the stanza (a
// *stanza.Error returned by Put is sent as it is). ctx carries the
// gateway's deadline.
type Sink interface {
	Put(ctx context.Context, obj Object) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, obj Object) error

// Put calls f.
func (f SinkFunc) Put(ctx context.Context, obj Object) error { return f(ctx, obj) }

var (
	_ Sink = (*WriterSink)(nil)
	_ Sink = (*DirSink)(nil)
	_ Sink = (*HTTPSink)(nil)
)

// Extension returns the file name extension for a media type: ".cpim" for
// Message/CPIM, ".pidf" for application/pidf+xml, ".bin" otherwise.
func Extension(mediaType string) string {
	switch {
	case strings.EqualFold(mediaType, cpim.MediaType):
		return ".cpim"
	case strings.EqualFold(mediaType, cpim.MediaTypePIDF):
		return ".pidf"
	}
	return ".bin"
}

// WriterSink writes each object to W as a MIME entity: Content-Type and
// Content-Length headers, an empty line, the object, CRLF. A Message/CPIM
// entity written this way is what cpim.Parse reads.
type WriterSink struct {
	W  io.Writer
	mu sync.Mutex
}

// Put writes obj in one Write call.
func (s *WriterSink) Put(_ context.Context, obj Object) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n\r\n", obj.MediaType, len(obj.Data))
	b.Write(obj.Data)
	b.WriteString("\r\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.W.Write(b.Bytes()); err != nil {
		return fmt.Errorf("cpimgw: writer sink: %w", err)
	}
	return nil
}

// DirSink stores each object in its own file in Dir, named by the time it
// was stored (UTC, nanoseconds), a sequence number and a random part, with
// the extension of its media type:
//
//	20260102T150405.123456789Z-000001-1a2b3c4d.cpim
//
// Names sort in the order Put stored them. A file appears complete or not
// at all: it is written under a name starting with '.', synced, then
// renamed. Readers skip names that start with '.'; Inbox is such a reader,
// so one gateway's DirSink can feed another's Inbox.
type DirSink struct {
	// Dir must exist.
	Dir string
	// Now returns the time in names; nil means time.Now.
	Now func() time.Time

	seq atomic.Uint64
}

// Put stores obj and returns once the file has its final name.
func (s *DirSink) Put(_ context.Context, obj Object) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%s-%06d-%s%s", now().UTC().Format("20060102T150405.000000000Z"), s.seq.Add(1)%1000000, hex.EncodeToString(rnd[:]), Extension(obj.MediaType))
	if err := WriteFileAtomic(s.Dir, name, obj.Data); err != nil {
		return fmt.Errorf("cpimgw: dir sink: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to dir/name through a temporary file whose
// name starts with '.', so that a reader of dir sees the whole file or
// nothing.
func WriteFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	// Make the rename durable; some systems cannot sync a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// DefaultHTTPTimeout bounds one POST when HTTPSink.Timeout is zero.
const DefaultHTTPTimeout = 10 * time.Second

// HTTPSink POSTs each object to URL with the object's media type as
// Content-Type and the stanza's addresses in the X-XMPP-Kind, X-XMPP-From,
// X-XMPP-To and X-XMPP-ID headers (the last two when set). Any 2xx status
// is success; any other status is an *HTTPError.
type HTTPSink struct {
	URL string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Timeout bounds each request, body included (default
	// DefaultHTTPTimeout).
	Timeout time.Duration
	// Header is added to every request (e.g. Authorization).
	Header http.Header
}

// HTTPError is a non-2xx answer from an HTTPSink's endpoint.
type HTTPError struct {
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string { return "cpimgw: http sink: " + e.Status }

// Put POSTs obj.
func (s *HTTPSink) Put(ctx context.Context, obj Object) error {
	d := s.Timeout
	if d <= 0 {
		d = DefaultHTTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(obj.Data))
	if err != nil {
		return fmt.Errorf("cpimgw: http sink: %w", err)
	}
	for k, vs := range s.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", obj.MediaType)
	req.Header.Set("X-XMPP-Kind", obj.Kind)
	req.Header.Set("X-XMPP-From", obj.From)
	if obj.To != "" {
		req.Header.Set("X-XMPP-To", obj.To)
	}
	if obj.ID != "" {
		req.Header.Set("X-XMPP-ID", obj.ID)
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("cpimgw: http sink: %w", err)
	}
	// Drain a little so that the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status}
	}
	return nil
}

// ParseSink builds a sink from a -sink flag value: "stdout", "dir:PATH",
// "http:URL" (or the URL itself, http:// or https://).
func ParseSink(spec string, stdout io.Writer) (Sink, error) {
	switch {
	case spec == "stdout":
		return &WriterSink{W: stdout}, nil
	case strings.HasPrefix(spec, "dir:"):
		dir := strings.TrimPrefix(spec, "dir:")
		if dir == "" {
			return nil, errors.New("cpimgw: sink dir: needs a path")
		}
		return &DirSink{Dir: dir}, nil
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		return parseHTTPSink(spec)
	case strings.HasPrefix(spec, "http:"):
		return parseHTTPSink(strings.TrimPrefix(spec, "http:"))
	}
	return nil, fmt.Errorf("cpimgw: unknown sink %q (want stdout, dir:PATH or http:URL)", spec)
}

func parseHTTPSink(u string) (Sink, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, fmt.Errorf("cpimgw: sink http: %q is not an http or https URL", u)
	}
	return &HTTPSink{URL: u}, nil
}

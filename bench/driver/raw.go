package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// conn is a bare XEP-0114 component connection: the handshake, then bytes.
// The driver measures the servers, so it does as little as it can itself:
// it writes prebuilt stanzas in batches and, reading, only finds where each
// top-level element starts and ends (a depth count over tags, with text
// skipped by bytes.IndexByte) and the id and type attributes of its start
// tag. It trusts the servers to send well-formed XML; what it cannot frame
// ends the run with an error.
type conn struct {
	c net.Conn

	mu  sync.Mutex
	out []byte // written by flush
	err error  // the first write error

	in    []byte // read but not yet framed: in[r:]
	r     int
	depth int // element depth inside the stream
}

// dial connects to a component port and completes the handshake for
// domain with secret.
func dial(ctx context.Context, addr, domain, secret string) (*conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	k := &conn{c: c, in: make([]byte, 0, 256<<10)}
	fail := func(err error) (*conn, error) {
		c.Close()
		return nil, fmt.Errorf("%s as %s: %w", addr, domain, err)
	}
	_, err = fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "+
		"xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain)
	if err != nil {
		return fail(err)
	}
	// The server's header: everything up to the '>' of <stream:stream ...>.
	hdr, err := k.until(func(b []byte) int {
		i := bytes.Index(b, []byte("<stream:stream"))
		if i < 0 {
			return -1
		}
		j := bytes.IndexByte(b[i:], '>')
		if j < 0 {
			return -1
		}
		return i + j + 1
	})
	if err != nil {
		return fail(err)
	}
	id := attr(hdr[bytes.Index(hdr, []byte("<stream:stream")):], "id")
	if id == "" {
		return fail(fmt.Errorf("no stream id in %q", hdr))
	}
	sum := sha1.Sum([]byte(id + secret))
	if _, err := fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(sum[:])); err != nil {
		return fail(err)
	}
	k.depth = 1 // inside <stream:stream>
	el, err := k.next()
	if err != nil {
		return fail(err)
	}
	if !bytes.HasPrefix(el, []byte("<handshake")) {
		return fail(fmt.Errorf("handshake refused: %.300s", el))
	}
	c.SetDeadline(time.Time{})
	return k, nil
}

// until reads until end returns the length of a complete prefix of what
// is buffered, and consumes and returns that prefix.
func (k *conn) until(end func([]byte) int) ([]byte, error) {
	for {
		if n := end(k.in[k.r:]); n >= 0 {
			b := k.in[k.r : k.r+n]
			k.r += n
			return b, nil
		}
		if err := k.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more, first moving what is left to the front of the buffer
// (growing it when it is full).
func (k *conn) fill() error {
	if k.r > 0 {
		n := copy(k.in, k.in[k.r:])
		k.in, k.r = k.in[:n], 0
	}
	if len(k.in) == cap(k.in) {
		k.in = append(k.in, make([]byte, cap(k.in))...)[:len(k.in)]
	}
	n, err := k.c.Read(k.in[len(k.in):cap(k.in)])
	k.in = k.in[:len(k.in)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// next returns the next top-level element of the stream, whole. It is
// valid until the next call.
func (k *conn) next() ([]byte, error) {
	for {
		start := -1
		b := k.in[k.r:]
		i, depth := 0, k.depth
		for {
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				break
			}
			i += j
			if i+1 >= len(b) {
				break
			}
			// The tag's end: the first '>' outside quotes.
			end, q := -1, byte(0)
			for t := i + 1; t < len(b); t++ {
				c := b[t]
				if q != 0 {
					if c == q {
						q = 0
					}
				} else if c == '\'' || c == '"' {
					q = c
				} else if c == '>' {
					end = t
					break
				}
			}
			if end < 0 {
				break
			}
			switch {
			case b[i+1] == '/':
				depth--
				if depth == 0 {
					return nil, io.EOF // </stream:stream>
				}
				if depth == 1 {
					k.r += end + 1
					return b[start : end+1], nil
				}
			case b[i+1] == '?' || b[i+1] == '!':
				// declaration or comment: a well-behaved server sends none
			case b[end-1] == '/':
				if depth == 1 {
					k.r += end + 1
					return b[i : end+1], nil
				}
			default:
				if depth == 1 {
					start = i
				}
				depth++
			}
			i = end + 1
		}
		if err := k.fill(); err != nil {
			return nil, err
		}
	}
}

// attr returns the value of attribute name in the first start tag of el,
// or "".
func attr(el []byte, name string) string {
	end := bytes.IndexByte(el, '>')
	if end < 0 {
		return ""
	}
	tag := el[:end]
	for _, q := range []string{"'", `"`} {
		pat := " " + name + "=" + q
		if i := bytes.Index(tag, []byte(pat)); i >= 0 {
			v := tag[i+len(pat):]
			if j := bytes.IndexByte(v, q[0]); j >= 0 {
				return string(v[:j])
			}
		}
	}
	return ""
}

// send queues one stanza; it goes out with the next flush.
func (k *conn) send(b []byte) {
	k.mu.Lock()
	k.out = append(k.out, b...)
	k.mu.Unlock()
}

// pending returns how many bytes wait for a flush.
func (k *conn) pending() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.out)
}

// flush writes what send queued.
func (k *conn) flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil && len(k.out) > 0 {
		_, k.err = k.c.Write(k.out)
	}
	k.out = k.out[:0]
	return k.err
}

// close ends the stream and the connection.
func (k *conn) close() {
	k.mu.Lock()
	k.c.SetWriteDeadline(time.Now().Add(time.Second))
	k.c.Write([]byte("</stream:stream>"))
	k.mu.Unlock()
	k.c.Close()
}

package node

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHTTPServerBounds: the metrics listener closes a connection left
// idle between requests, and one whose request never completes, after
// their timeouts; a request that completes is answered.
func TestHTTPServerBounds(t *testing.T) {
	defer func(r, w, i time.Duration) { httpReadTimeout, httpWriteTimeout, httpIdleTimeout = r, w, i }(httpReadTimeout, httpWriteTimeout, httpIdleTimeout)
	httpReadTimeout, httpWriteTimeout, httpIdleTimeout = 300*time.Millisecond, time.Second, 300*time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	go srv.Serve(l)
	defer srv.Close()

	// closedWithin reads c until the server closes it, and fails the test
	// if that takes longer than d.
	closedWithin := func(what string, c net.Conn, d time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(start.Add(d + 5*time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: still open %v later", what, time.Since(start).Round(time.Millisecond))
		}
		if took := time.Since(start); took > d+2*time.Second {
			t.Fatalf("%s: closed after %v, want about %v", what, took, d)
		}
	}

	// A keep-alive connection: answered, then closed once idle.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	closedWithin("an idle keep-alive connection", c, httpIdleTimeout)

	// A request that never ends.
	c2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
	closedWithin("an unfinished request", c2, httpReadTimeout)
}

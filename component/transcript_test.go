package component

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// dial returns the client end of a new connection.
func (l *pipeListener) dial() net.Conn {
	c, s := net.Pipe()
	select {
	case l.ch <- s:
	case <-l.done:
		c.Close()
		s.Close()
	}
	return c
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

type step struct {
	client bool
	data   string
	line   int
}

func readTranscript(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "C: "):
			steps = append(steps, step{client: true, data: line[3:], line: n})
		case strings.HasPrefix(line, "S: "):
			steps = append(steps, step{data: line[3:], line: n})
		default:
			t.Fatalf("%s:%d: want C: or S:", path, n)
		}
	}
	return steps
}

// TestTranscripts replays testdata/component/*.txt against a Server over
// net.Pipe.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/component/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			runTranscript(t, path)
		})
	}
}

// startPipeServer starts a Server on a pipeListener, with a Handler that
// answers iq with item-not-found and takes the rest, until the test ends.
func startPipeServer(t testing.TB) *pipeListener {
	l := newPipeListener()
	s := &Server{
		Secret: testSecrets,
		Logger: quietLogger(t),
		Handler: route.HandlerFunc(func(_ context.Context, st *route.Stanza) error {
			if st.Kind == "iq" {
				return stanza.New(stanza.ItemNotFound, "")
			}
			return nil
		}),
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	return l
}

func runTranscript(t *testing.T, path string) {
	steps := readTranscript(t, path)
	l := startPipeServer(t)
	nc := l.dial()
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	id := ""
	for _, st := range steps {
		if st.client {
			if st.data == "EOF" {
				nc.Close()
				continue
			}
			data := strings.ReplaceAll(st.data, "{digest}", string(handshakeDigest(id, testSecret)))
			if _, err := io.WriteString(nc, data); err != nil {
				t.Fatalf("line %d: write: %v", st.line, err)
			}
			continue
		}
		want := st.data
		n := len(want)
		if strings.Contains(want, "{id}") {
			n += 32 - len("{id}")
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(nc, got); err != nil {
			t.Fatalf("line %d: read: %v; got %q\nwant %s", st.line, err, got, want)
		}
		pat := "^" + strings.ReplaceAll(regexp.QuoteMeta(want), regexp.QuoteMeta("{id}"), "([0-9a-f]{32})") + "$"
		m := regexp.MustCompile(pat).FindSubmatch(got)
		if m == nil {
			t.Fatalf("line %d: server wrote\n%s\nwant\n%s", st.line, got, want)
		}
		if len(m) > 1 {
			id = string(m[1])
		}
	}
	// Nothing more: the server closes after the stream ends, or the stream
	// is still open.
	nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if extra, _ := io.ReadAll(nc); len(extra) > 0 {
		t.Errorf("server wrote more: %s", extra)
	}
}

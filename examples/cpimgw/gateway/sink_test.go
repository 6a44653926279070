package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/cpim"
)

var testObj = Object{
	MediaType: cpim.MediaType,
	Data:      []byte("From: <im:romeo@remote.test>\r\nTo: <im:juliet@gw.test>\r\n\r\nContent-type: text/plain; charset=utf-8\r\n\r\nhi"),
	Kind:      "message", From: "romeo@remote.test/orchard", To: "juliet@gw.test", ID: "m1",
}

func TestWriterSink(t *testing.T) {
	var b bytes.Buffer
	s := &WriterSink{W: &b}
	if err := s.Put(context.Background(), testObj); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Content-Type: Message/CPIM\r\nContent-Length: %d\r\n\r\n%s\r\n", len(testObj.Data), testObj.Data)
	if b.String() != want {
		t.Fatalf("wrote %q\nwant  %q", b.String(), want)
	}
	// What it writes is a Message/CPIM MIME entity.
	m, err := cpim.Parse(bytes.TrimSuffix(b.Bytes(), []byte("\r\n")))
	if err != nil || m.FromURI != "im:romeo@remote.test" || string(m.Body) != "hi" {
		t.Fatalf("Parse: %+v %v", m, err)
	}
}

func TestDirSink(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("X", 3600))
	s := &DirSink{Dir: dir, Now: func() time.Time { return clock }}
	pidf := Object{MediaType: cpim.MediaTypePIDF, Data: []byte("<presence/>")}
	for i, o := range []Object{testObj, pidf, testObj} {
		if i == 2 {
			clock = clock.Add(time.Nanosecond)
		}
		if err := s.Put(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 3 || !sort.StringsAreSorted(names) {
		t.Fatalf("files %q (want 3, no temporary files left)", names)
	}
	for i, want := range []struct{ prefix, ext string }{
		{"20260102T140405.000000000Z-000001-", ".cpim"},
		{"20260102T140405.000000000Z-000002-", ".pidf"},
		{"20260102T140405.000000001Z-000003-", ".cpim"},
	} {
		if !strings.HasPrefix(names[i], want.prefix) || !strings.HasSuffix(names[i], want.ext) {
			t.Errorf("file %d is %s, want %s…%s", i, names[i], want.prefix, want.ext)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, names[1])); string(b) != "<presence/>" {
		t.Errorf("content %q", b)
	}

	// A missing directory is an error, and leaves nothing behind.
	s = &DirSink{Dir: filepath.Join(dir, "missing")}
	if err := s.Put(context.Background(), testObj); err == nil {
		t.Error("Put into a missing directory succeeded")
	}
}

func TestHTTPSink(t *testing.T) {
	type req struct {
		method string
		header http.Header
		body   string
	}
	reqs := make(chan req, 1)
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- req{r.Method, r.Header, string(b)}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	s := &HTTPSink{URL: srv.URL + "/cpim", Header: http.Header{"Authorization": {"Bearer t"}}}
	if err := s.Put(context.Background(), testObj); err != nil {
		t.Fatal(err)
	}
	r := <-reqs
	if r.method != "POST" || r.body != string(testObj.Data) {
		t.Errorf("%s %q", r.method, r.body)
	}
	for k, v := range map[string]string{
		"Content-Type": "Message/CPIM", "Authorization": "Bearer t",
		"X-Xmpp-Kind": "message", "X-Xmpp-From": "romeo@remote.test/orchard", "X-Xmpp-To": "juliet@gw.test", "X-Xmpp-Id": "m1",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}

	status = http.StatusServiceUnavailable
	err := s.Put(context.Background(), testObj)
	<-reqs
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 503 {
		t.Errorf("503: %v", err)
	}
	status = http.StatusNoContent
	if err := s.Put(context.Background(), testObj); err != nil {
		t.Errorf("204: %v", err)
	}
	<-reqs
}

func TestHTTPSinkTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	s := &HTTPSink{URL: srv.URL, Timeout: 50 * time.Millisecond}
	err := s.Put(context.Background(), testObj)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow endpoint: %v", err)
	}
	// The gateway answers that with remote-server-timeout.
	g := &Gateway{Domain: "gw.test"}
	if se := g.sinkError(err); se.Condition != "remote-server-timeout" {
		t.Errorf("mapped to %v", se)
	}
}

func TestHTTPSinkRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	s := &HTTPSink{URL: u}
	if err := s.Put(context.Background(), testObj); err == nil {
		t.Fatal("Put to a closed port succeeded")
	}
}

func TestParseSink(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want any
		ok   bool
	}{
		{"stdout", &WriterSink{}, true},
		{"dir:/var/spool/x", &DirSink{}, true},
		{"http:https://example.org/in", &HTTPSink{}, true},
		{"https://example.org/in", &HTTPSink{}, true},
		{"http:example.org", nil, false},
		{"dir:", nil, false},
		{"file:/x", nil, false},
	} {
		s, err := ParseSink(tc.spec, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if tc.ok {
			switch s := s.(type) {
			case *DirSink:
				if s.Dir != "/var/spool/x" {
					t.Errorf("%q: dir %q", tc.spec, s.Dir)
				}
			case *HTTPSink:
				if s.URL != "https://example.org/in" {
					t.Errorf("%q: url %q", tc.spec, s.URL)
				}
			}
		}
	}
}

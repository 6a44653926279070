package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2sd/s2sd/route"
)

// sender records what is sent, or fails with err.
type sender struct {
	sent []string
	err  error
}

func (s *sender) Send(raw []byte) error {
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, string(raw))
	return nil
}

func TestInbox(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, FailedDir), 0o750)
	snd := &sender{err: route.ErrNotConnected}
	g, _ := newGateway(t, nil)
	g.Sender = snd
	in := &Inbox{Dir: dir, Gateway: g}
	msg := func(from, body string) []byte {
		return []byte("From: <" + from + ">\r\nTo: <im:romeo@remote.test>\r\n\r\nContent-type: text/plain; charset=utf-8\r\n\r\n" + body)
	}
	WriteFileAtomic(dir, "2.cpim", msg("im:juliet@gw.test", "second"))
	WriteFileAtomic(dir, "1.cpim", msg("im:juliet@gw.test", "first"))
	WriteFileAtomic(dir, "3.cpim", msg("im:juliet@s2sd.test", "spoofed"))
	WriteFileAtomic(dir, "4.pidf", []byte("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:juliet@gw.test'/>"))
	os.WriteFile(filepath.Join(dir, ".tmp-5"), msg("im:juliet@gw.test", "being written"), 0o600)

	// Disconnected: everything waits.
	if n := in.Scan(); n != 0 {
		t.Fatalf("sent %d while disconnected", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "1.cpim")); err != nil {
		t.Fatalf("1.cpim gone while disconnected: %v", err)
	}

	snd.err = nil
	if n := in.Scan(); n != 2 {
		t.Fatalf("sent %d, want 2", n)
	}
	if len(snd.sent) != 2 || !strings.Contains(snd.sent[0], ">first<") || !strings.Contains(snd.sent[1], ">second<") {
		t.Errorf("sent %q", snd.sent)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".tmp-5 failed" {
		t.Errorf("left in the inbox: %q", names)
	}
	for name, why := range map[string]string{"3.cpim": "not at the gateway's domain", "4.pidf": "names no recipient"} {
		if _, err := os.Stat(filepath.Join(dir, FailedDir, name)); err != nil {
			t.Errorf("%s not in failed/: %v", name, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, FailedDir, name+".error"))
		if !strings.Contains(string(b), why) {
			t.Errorf("%s.error: %q, want %q", name, b, why)
		}
	}

	// Any other send failure is retried too.
	snd.err = errors.New("pending full")
	WriteFileAtomic(dir, "6.cpim", msg("im:juliet@gw.test", "later"))
	if n := in.Scan(); n != 0 {
		t.Fatalf("sent %d", n)
	}
	snd.err = nil
	if n := in.Scan(); n != 1 {
		t.Fatalf("retry sent %d", n)
	}
}

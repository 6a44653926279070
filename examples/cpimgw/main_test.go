package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2sd/s2sd/cpim"
	"github.com/s2sd/s2sd/examples/cpimgw/gateway"
	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

func s2sdConfig(dns string) string {
	return fmt.Sprintf(`
[server]
domains = ["s2sd.test"]
state_dir = "STATE"
log_level = "debug"

[s2s]
listen = "127.0.0.1:0"
dns = [%q]
retry_for = "3s"

[components]
listen = "127.0.0.1:0"

[[component]]
domain = "gw.s2sd.test"
secret = "gwsecret"

[metrics]
listen = "127.0.0.1:0"

[shutdown]
grace = "5s"
`, dns)
}

// TestGatewayAgainstS2SD runs the example as main wires it, against an s2sd
// process and a remote domain federating with it over loopback: a message
// and a presence from remote.test come out of the spool as Message/CPIM and
// PIDF, a Message/CPIM object dropped in the inbox reaches remote.test, a
// sink failure and an iq are answered with errors.
func TestGatewayAgainstS2SD(t *testing.T) {
	dns := s2stest.NewDNS(t)
	proc := s2sdtest.Start(t, "s2sd", s2sdConfig(dns.Addr()))
	dns.AddServer("s2sd.test", proc.S2S)
	dns.AddServer("gw.s2sd.test", proc.S2S)
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})

	dir := t.TempDir()
	spool, inbox := filepath.Join(dir, "out"), filepath.Join(dir, "in")
	connected := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{
			addr: proc.Comp, domain: "gw.s2sd.test", secret: "gwsecret",
			sink: "dir:" + spool, inbox: inbox, poll: 20 * time.Millisecond,
			log:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
			onConnect: func() { connected <- struct{}{} },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the gateway did not stop")
		}
	})
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not connect to s2sd")
	}

	// A message from remote.test becomes one Message/CPIM object.
	remote.Send(t, `<message from='romeo@remote.test/orchard' to='juliet@gw.s2sd.test' type='chat' id='m1' xml:lang='en'><subject>Hello!</subject><body>Art thou not Romeo?</body></message>`)
	files := waitFiles(t, spool, 1)
	if !strings.HasSuffix(files[0], ".cpim") {
		t.Fatalf("spool file %s, want .cpim", files[0])
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := cpim.Parse(b)
	if err != nil {
		t.Fatalf("spooled object: %v\n%s", err, b)
	}
	if m.FromURI != "im:romeo@remote.test" || m.ToURI != "im:juliet@gw.s2sd.test" {
		t.Errorf("From %q To %q", m.FromURI, m.ToURI)
	}
	if len(m.Subjects) != 1 || m.Subjects[0] != (cpim.Subject{Lang: "en", Text: "Hello!"}) {
		t.Errorf("Subjects %+v", m.Subjects)
	}
	if string(m.Body) != "Art thou not Romeo?" || !strings.HasPrefix(m.ContentType, "text/plain") {
		t.Errorf("content %q: %q", m.ContentType, m.Body)
	}
	ext := map[string]string{}
	for _, h := range m.Extensions {
		if uri, local := m.Resolve(h.Name); uri == cpim.NamespaceXMPP {
			ext[local] = h.Value
		}
	}
	if ext["FromResource"] != "orchard" || ext["Type"] != "chat" || ext["ID"] != "m1" || ext["Lang"] != "en" {
		t.Errorf("XMPP.* headers %v", ext)
	}
	os.Remove(files[0])

	// A presence with a status becomes one PIDF document.
	remote.Send(t, `<presence from='romeo@remote.test/orchard' to='juliet@gw.s2sd.test'><show>away</show><status>Climbing the wall</status></presence>`)
	files = waitFiles(t, spool, 1)
	if !strings.HasSuffix(files[0], ".pidf") {
		t.Fatalf("spool file %s, want .pidf", files[0])
	}
	b, _ = os.ReadFile(files[0])
	p, err := cpim.PIDFToPresence(b, cpim.NSClient)
	if err != nil {
		t.Fatalf("spooled PIDF: %v\n%s", err, b)
	}
	if want := `<presence xmlns='jabber:client' from='romeo@remote.test/orchard'><show>away</show><status>Climbing the wall</status></presence>`; string(p) != want {
		t.Errorf("PIDF maps back to\n%s\nwant\n%s\nPIDF:\n%s", p, want, b)
	}
	if !strings.Contains(string(b), "entity='pres:romeo@remote.test'") {
		t.Errorf("PIDF entity:\n%s", b)
	}
	os.Remove(files[0])

	// A Message/CPIM object in the inbox reaches remote.test.
	obj := "From: Juliet <im:juliet@gw.s2sd.test>\r\n" +
		"To: <im:romeo@remote.test>\r\n" +
		"\r\n" +
		"Content-type: text/plain; charset=utf-8\r\n" +
		"Content-ID: <balcony1@gw.s2sd.test>\r\n" +
		"\r\n" +
		"Romeo, Romeo! wherefore art thou Romeo?"
	if err := gateway.WriteFileAtomic(inbox, "0001.cpim", []byte(obj)); err != nil {
		t.Fatal(err)
	}
	st := remote.Expect(t, 15*time.Second)
	var got struct {
		Body string `xml:"body"`
	}
	st.El.Unmarshal(&got)
	if st.Kind != "message" || st.From.String() != "juliet@gw.s2sd.test" || st.To.String() != "romeo@remote.test" ||
		st.ID != "balcony1@gw.s2sd.test" || got.Body != "Romeo, Romeo! wherefore art thou Romeo?" {
		t.Errorf("remote.test got %s: %s", st, st.El.Raw)
	}
	waitGone(t, filepath.Join(inbox, "0001.cpim"))

	// An object from another domain is refused and kept with the reason.
	bad := strings.Replace(obj, "im:juliet@gw.s2sd.test", "im:juliet@s2sd.test", 1)
	gateway.WriteFileAtomic(inbox, "0002.cpim", []byte(bad))
	waitGone(t, filepath.Join(inbox, "0002.cpim"))
	if why, err := os.ReadFile(filepath.Join(inbox, gateway.FailedDir, "0002.cpim.error")); err != nil || !strings.Contains(string(why), "not at the gateway's domain") {
		t.Errorf("failed object: %q %v", why, err)
	}

	// An iq is answered, never left unanswered.
	remote.Send(t, `<iq from='romeo@remote.test/orchard' to='juliet@gw.s2sd.test' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>`)
	st = remote.Expect(t, 15*time.Second)
	if st.Kind != "iq" || st.Type != "error" || st.ID != "v1" || !strings.Contains(string(st.El.Raw), "service-unavailable") {
		t.Errorf("iq answer %s: %s", st, st.El.Raw)
	}

	// A sink that cannot store bounces the message to its sender.
	os.RemoveAll(spool)
	remote.Send(t, `<message from='romeo@remote.test/orchard' to='juliet@gw.s2sd.test' type='chat' id='m2'><body>Lost?</body></message>`)
	st = remote.Expect(t, 15*time.Second)
	if st.Kind != "message" || st.Type != "error" || st.ID != "m2" || st.From.String() != "juliet@gw.s2sd.test" ||
		!strings.Contains(string(st.El.Raw), "service-unavailable") {
		t.Errorf("bounce %s: %s", st, st.El.Raw)
	}
	select {
	case st := <-remote.Received:
		t.Errorf("unexpected stanza at remote.test: %s", st.El.Raw)
	case <-time.After(200 * time.Millisecond):
	}
}

// waitFiles waits until dir holds exactly n objects (names not starting
// with '.') and returns their paths in name order.
func waitFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
		sort.Strings(out)
		if len(out) >= n {
			time.Sleep(100 * time.Millisecond) // catch extras
			ents, _ = os.ReadDir(dir)
			if len(ents) != n {
				t.Fatalf("%s holds %d files, want %d", dir, len(ents), n)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d files within 15s, want %d", dir, len(out), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
	}
	t.Fatalf("%s still there", path)
}

// testWriter sends logs to t.Log until the test ends.
type testWriter struct{ t *testing.T }

var logMu sync.Mutex

func (w testWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestParseFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	for i, tc := range []struct {
		args []string
		err  string
	}{
		0: {args: []string{"-domain", "gw.test", "-secret-file", secret, "-sink", "dir:/tmp/x", "-inbox", "/tmp/in"}},
		1: {args: []string{"-domain", "gw.test", "-secret", "s3cret"}},
		2: {args: []string{"-secret", "s3cret"}, err: "-domain"},
		3: {args: []string{"-domain", "gw.test"}, err: "-secret"},
		4: {args: []string{"-domain", "gw.test", "-secret", "a", "-secret-file", secret}, err: "exclusive"},
		5: {args: []string{"-domain", "gw.test", "-secret", "a", "extra"}, err: "unexpected"},
	} {
		fs := flag.NewFlagSet("cpimgw", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg, err := parseFlags(fs, tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%d: %v, want %q", i, err, tc.err)
			}
			continue
		}
		if err != nil || cfg.secret != "s3cret" || cfg.domain != "gw.test" {
			t.Errorf("%d: %+v %v", i, cfg, err)
		}
	}
}

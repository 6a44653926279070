package node_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// ctl connects to n's control socket.
func ctl(t *testing.T, n *node.Node) *node.ControlClient {
	t.Helper()
	cc, err := node.DialControl(n.Config().ControlSocket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func status(t *testing.T, cc *node.ControlClient) *node.Status {
	t.Helper()
	st, err := cc.Status()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// waitFor polls until cond holds, for at most 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func findStream(st *node.Status, remote, dir string) *node.StreamStatus {
	for i, s := range st.Streams {
		if s.Remote == remote && s.Direction == dir && s.State == "ready" {
			return &st.Streams[i]
		}
	}
	return nil
}

func findQueue(st *node.Status, remote string) *node.QueueStatus {
	for i, q := range st.Queues {
		if q.Remote == remote {
			return &st.Queues[i]
		}
	}
	return nil
}

// closingServer accepts TCP connections and closes them at once: a remote
// server that is there but never talks. It counts the connections.
func closingServer(t *testing.T) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String()), &n
}

// TestControl drives a running node through its control socket: status
// lists its stream to a federated peer (how it authenticated, its
// counters) and its component; close ends the stream and the next stanza
// brings up a new one; retry cuts a backoff short; bounce returns what is
// queued for an unreachable domain to its sender with
// remote-server-not-found.
func TestControl(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := startNode(t, dns, "a.test", node.Options{Version: "test"})
	b := startNode(t, dns, "b.test", node.Options{})
	ca, cb := attach(t, a, "bot.a.test"), attach(t, b, "bot.b.test")
	cc := ctl(t, a)

	if fi, err := os.Stat(a.Config().ControlSocket()); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("control socket: %v, mode %v; want a socket with mode 0600", err, fi.Mode())
	}

	for i := range 3 {
		ca.Send(fmt.Appendf(nil, "<message from='x@bot.a.test' to='y@bot.b.test' id='m%d'/>", i))
	}
	expect(t, cb, "x@bot.a.test", "m0", "m1", "m2")
	var st *node.Status
	waitFor(t, "the outbound stream and its counters in status", func() bool {
		st = status(t, cc)
		s := findStream(st, "bot.b.test", "out")
		// Acknowledged too: close would send again what is not.
		return s != nil && s.StanzasOut == 3 && s.Unacked == 0
	})
	out := findStream(st, "bot.b.test", "out")
	// Self-signed certificates: the stream authenticates with dialback.
	if out.Auth != "dialback" || out.TLSVersion == "" || out.TLSCipher == "" || out.CertVerified || out.Address == "" || fmt.Sprint(out.Local) != "[bot.a.test]" {
		t.Errorf("outbound stream: %+v", out)
	}
	if len(st.Components) != 1 || st.Components[0].Domain != "bot.a.test" || !st.Components[0].Connected || st.Components[0].StanzasIn != 3 || st.Components[0].Address == "" {
		t.Errorf("components: %+v", st.Components)
	}
	if st.Process.Version != "test" || st.Process.PID != os.Getpid() || st.Process.Started.IsZero() || st.Process.Listeners["control"] != a.Config().ControlSocket() {
		t.Errorf("process: %+v", st.Process)
	}
	// b sees the same stream, inbound.
	bst, err := ctl(t, b).Status()
	if err != nil {
		t.Fatal(err)
	}
	if in := findStream(bst, "bot.a.test", "in"); in == nil || in.Auth != "dialback" || in.StanzasIn != 3 || fmt.Sprint(in.Local) != "[bot.b.test]" {
		t.Errorf("b's inbound stream from a: %+v in %+v", in, bst.Streams)
	}

	// close: the stream ends with a stream error; the next stanza brings
	// up a new one.
	var cr node.CloseResult
	if err := cc.Do(node.ControlRequest{Command: node.CmdClose, Domain: "bot.b.test"}, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Streams < 1 {
		t.Errorf("close: %+v", cr)
	}
	waitFor(t, "the stream to bot.b.test to end", func() bool {
		s := findStream(status(t, cc), "bot.b.test", "out")
		return s == nil || s.StreamID != out.StreamID
	})
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='after-close'/>"))
	expect(t, cb, "x@bot.a.test", "after-close")
	waitFor(t, "a new stream to bot.b.test", func() bool {
		s := findStream(status(t, cc), "bot.b.test", "out")
		return s != nil && s.StreamID != out.StreamID
	})
	if err := cc.Do(node.ControlRequest{Command: node.CmdClose, Domain: "bot.b.test", Condition: "see-other-host"}, nil); err == nil {
		t.Error("close with a condition not offered: no error")
	}

	// An unreachable domain: its queue, last error and next retry show;
	// retry cuts the wait short; bounce returns the queue to its sender.
	// A retry_for long enough for backoffs of seconds (a reload applies
	// it).
	long := nodeConfig(t, "a.test", dns.Addr())
	long.Server.StateDir = a.Config().Server.StateDir
	long.S2S.RetryFor.Duration = time.Minute
	if err := a.Reload(long); err != nil {
		t.Fatal(err)
	}
	down, tries := closingServer(t)
	dns.AddServer("down.test", down)
	ca.Send([]byte("<message from='x@bot.a.test' to='y@down.test' id='to-down'/>"))
	var q *node.QueueStatus
	waitFor(t, "a queue for down.test waiting for a retry", func() bool {
		q = findQueue(status(t, cc), "down.test")
		return q != nil && !q.NextRetry.IsZero() && q.LastError != ""
	})
	if q.Queued != 1 || q.Stream || q.Oldest.IsZero() {
		t.Errorf("queue: %+v", q)
	}
	// Wait for a backoff long enough to tell a retry from its end.
	waitFor(t, "a backoff of over a second", func() bool {
		q = findQueue(status(t, cc), "down.test")
		return q != nil && q.RetryIn > 1.2
	})
	before := tries.Load()
	var rr node.RetryResult
	if err := cc.Do(node.ControlRequest{Command: node.CmdRetry, Domain: "down.test"}, &rr); err != nil {
		t.Fatal(err)
	}
	if !rr.Retried || rr.Queued != 1 {
		t.Errorf("retry: %+v", rr)
	}
	for end := time.Now().Add(time.Second); tries.Load() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("retry: no new attempt within a second")
		}
	}
	var br node.BounceResult
	if err := cc.Do(node.ControlRequest{Command: node.CmdBounce, Domain: "down.test"}, &br); err != nil {
		t.Fatal(err)
	}
	if br.Bounced != 1 {
		t.Errorf("bounce: %+v", br)
	}
	s := next(t, ca)
	if s.Type != "error" || s.ID != "to-down" || !strings.Contains(string(s.El.Raw), "remote-server-not-found") {
		t.Errorf("bounced: %s", s.El.Raw)
	}
	if q := findQueue(status(t, cc), "down.test"); q != nil && q.Queued != 0 {
		t.Errorf("queue after bounce: %+v", q)
	}

	for _, req := range []node.ControlRequest{{Command: "close"}, {Command: "retry", Domain: "not a domain"}, {Command: "reboot"}, {}} {
		if err := cc.Do(req, nil); err == nil {
			t.Errorf("%+v: no error", req)
		}
	}
	// A configuration given by a program has no file to reload.
	if err := cc.Do(node.ControlRequest{Command: node.CmdReload}, nil); err == nil || !strings.Contains(err.Error(), "not loaded from a file") {
		t.Errorf("reload without a file: %v", err)
	}
}

// TestControlSecondStart: a second node on the same state directory fails
// at once, naming the running one, and the socket goes with the node.
func TestControlSecondStart(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := startNode(t, dns, "a.test", node.Options{})
	cfg := nodeConfig(t, "a.test", dns.Addr())
	cfg.Server.StateDir = a.Config().Server.StateDir
	second, err := node.New(cfg, node.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = second.Start()
	if err == nil {
		second.Close()
		t.Fatal("second Start on the same state directory succeeded")
	}
	if want := fmt.Sprintf("another s2sd (pid %d) is running", os.Getpid()); !strings.Contains(err.Error(), want) || time.Since(t0) > time.Second {
		t.Errorf("second Start: %v after %v; want %q at once", err, time.Since(t0), want)
	}
	a.Close()
	if _, err := os.Stat(a.Config().ControlSocket()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after Close: %v", err)
	}
}

// TestControlOtherUser: a client of another user is refused, by the
// socket's mode and, when the mode is opened, by its peer credentials.
// It needs root to run a client as another user.
func TestControlOtherUser(t *testing.T) {
	if os.Getenv("S2SD_CTL_CLIENT") != "" {
		// The client, run as nobody by the test below.
		cc, err := node.DialControl(os.Getenv("S2SD_CTL_CLIENT"))
		if err != nil {
			fmt.Println("dial:", err)
			return
		}
		_, err = cc.Status()
		fmt.Println("status:", err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("running a client as another user needs root")
	}
	dns := s2stest.NewDNS(t)
	a := startNode(t, dns, "a.test", node.Options{})
	// The test binary, where nobody may run it.
	dir, err := os.MkdirTemp("", "s2sd-ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	bin := filepath.Join(dir, "node.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := a.Config().ControlSocket()
	run := func() string {
		cmd := exec.Command(bin, "-test.run=^TestControlOtherUser$")
		cmd.Env = append(os.Environ(), "S2SD_CTL_CLIENT="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as nobody: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "permission denied") {
		t.Errorf("client of another user, socket mode 0600: %s", out)
	}
	// The state directory is 0700: open it (and the test's directory
	// above it, both made by t.TempDir) and the socket, and the peer
	// credentials still refuse.
	state := filepath.Dir(sock)
	for _, d := range []string{state, filepath.Dir(state)} {
		os.Chmod(d, 0o711)
	}
	os.Chmod(sock, 0o666)
	if out := run(); !strings.Contains(out, "status: permission denied: uid 65534 may not control this s2sd") {
		t.Errorf("client of another user, socket open to all: %s", out)
	}
	// The owner is still served.
	status(t, ctl(t, a))
}

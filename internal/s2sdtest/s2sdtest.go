package s2sdtest

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/s2sd once per test binary and returns its path. It is
// built with -tags s2sdpoison: a stanza kept past its delivery without
// route.Stanza.Own reads as '#' at once (xmlstream.PoisonBorrowed).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "s2sd-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "s2sd")
		out, err := exec.Command("go", "build", "-tags", "s2sdpoison", "-o", binPath, "github.com/s2sd/s2sd/cmd/s2sd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Proc is a running s2sd process.
type Proc struct {
	t        testing.TB
	name     string
	started  chan struct{}
	cleanup  bool
	cmd      *exec.Cmd
	Dir      string
	CfgPath  string
	mu       sync.Mutex
	lines    []string
	S2S      netip.AddrPort
	Comp     string
	Metrics  string
	Exited   chan struct{}
	ExitCode int
}

var addrRE = regexp.MustCompile(`(\w+)=(?:http://)?(127\.0\.0\.1:\d+)`)

// Start writes cfg to a file (STATE in it becomes a state directory in a
// temporary directory) and runs s2sd on it until the test ends. It returns
// once s2sd has logged its listener addresses.
func Start(t testing.TB, name, cfg string) *Proc {
	t.Helper()
	p := Launch(t, name, cfg)
	p.Wait()
	return p
}

// Launch is Start without waiting: several daemons that need each other
// to start (the nodes of a cluster) are launched, then waited for.
func Launch(t testing.TB, name, cfg string) *Proc {
	t.Helper()
	dir := t.TempDir()
	p := &Proc{t: t, name: name, Dir: dir, CfgPath: filepath.Join(dir, name+".toml"), Exited: make(chan struct{}), started: make(chan struct{})}
	cfg = strings.ReplaceAll(cfg, "STATE", filepath.Join(dir, "state"))
	if err := os.WriteFile(p.CfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.run()
	return p
}

// Restart runs s2sd again on the same configuration and state, after it
// exited, and waits for it.
func (p *Proc) Restart() {
	p.t.Helper()
	<-p.Exited
	p.Exited, p.started = make(chan struct{}), make(chan struct{})
	p.run()
	p.Wait()
}

func (p *Proc) run() {
	t := p.t
	p.cmd = exec.Command(Binary(t), "-config", p.CfgPath)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started, exited := p.started, p.Exited
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if strings.Contains(line, "s2sd started") {
				for _, m := range addrRE.FindAllStringSubmatch(line, -1) {
					switch m[1] {
					case "s2s":
						p.S2S = netip.MustParseAddrPort(m[2])
					case "components":
						p.Comp = m[2]
					case "metrics":
						p.Metrics = m[2]
					}
				}
				once.Do(func() { close(started) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	cmd := p.cmd
	go func() {
		cmd.Wait()
		p.ExitCode = cmd.ProcessState.ExitCode()
		close(exited)
	}()
	if !p.cleanup {
		p.cleanup = true
		t.Cleanup(func() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.Exited:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
			}
			if t.Failed() {
				t.Logf("%s log:\n%s", p.name, p.Log())
			}
		})
	}
}

// Wait waits until s2sd has logged its listener addresses.
func (p *Proc) Wait() {
	p.t.Helper()
	select {
	case <-p.started:
	case <-p.Exited:
		p.t.Fatalf("s2sd %s exited: %s", p.name, p.Log())
	case <-time.After(60 * time.Second):
		p.t.Fatalf("s2sd %s did not start: %s", p.name, p.Log())
	}
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Log returns what s2sd logged so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// WaitLog waits until a log line contains s.
func (p *Proc) WaitLog(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Log(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Signal sends s to the process.
func (p *Proc) Signal(s os.Signal) { p.cmd.Process.Signal(s) }

package interop

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// packages names the Debian package of each peer binary, for Require's
// message.
var packages = map[string]string{
	"prosody":    "prosody lua-unbound",
	"prosodyctl": "prosody",
	"openssl":    "openssl",
	"gpg":        "gnupg",
	"python3":    "python3",
	"ss":         "iproute2",
	"ip":         "iproute2",
}

// Require skips t when bin is not on PATH, or fails it when the CI
// environment variable is "true": CI must run every interop test.
func Require(t testing.TB, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err == nil {
		return
	}
	pkg := packages[bin]
	if pkg == "" {
		pkg = bin
	}
	msg := fmt.Sprintf("%s not found on PATH: install it (apt-get install %s, or %s/install.sh as root)", bin, pkg, PeersDir())
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// PeersDir returns the directory of the peer scripts (prosody-up.sh…).
func PeersDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "internal/interop/peers"
	}
	return filepath.Join(filepath.Dir(file), "peers")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("interop: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ProsodyOptions configure StartProsody; they map to prosody-up.sh options.
// Zero values mean the defaults noted.
type ProsodyOptions struct {
	// Domain is the VirtualHost (default "prosody.test").
	Domain string
	// Dir is the work directory (default a new t.TempDir()). Its
	// prosody.log is kept for inspection when Dir is set.
	Dir string
	// Ports; 0 picks a free port. S2STLS 0 means no direct-TLS s2s port
	// (-1 picks a free one).
	C2S, S2S, S2STLS, Component int
	// ComponentName (default "gw."+Domain) and ComponentSecret (default
	// "secret") configure the XEP-0114 component.
	ComponentName, ComponentSecret string
	// DNS is "127.0.0.1:PORT" of a DNS server every query goes to (--dns).
	DNS string
	// NetNS runs Prosody in a network namespace (--netns).
	NetNS string
	// Users are "user:password" accounts to create (--user).
	Users []string
	// Cert and Key replace the self-signed certificate; CAFile is the CA
	// bundle Prosody trusts for s2s.
	Cert, Key, CAFile string
	// SecureAuth sets s2s_secure_auth (default false).
	SecureAuth bool
	// PlaintextS2S sets s2s_require_encryption = false (default: required).
	PlaintextS2S bool
	// S2STimeout is s2s_timeout (default 15 s).
	S2STimeout time.Duration
	// Bidi loads mod_s2s_bidi (XEP-0288).
	Bidi bool
	// LogLevel is the lowest level logged (default "debug").
	LogLevel string
}

// Prosody is a running Prosody started by StartProsody.
type Prosody struct {
	Domain string
	Dir    string
	Pid    int
	// Ports it listens on, all on 127.0.0.1 (S2STLS is 0 when off).
	C2S, S2S, S2STLS, Component    int
	ComponentName, ComponentSecret string

	t        testing.TB
	stopOnce sync.Once
}

// StartProsody starts Prosody with prosody-up.sh, registers a cleanup that
// stops it with prosody-down.sh, and, when the test fails, logs the tail of
// prosody.log. It skips or fails t as Require does when Prosody is not
// installed.
func StartProsody(t testing.TB, opts ProsodyOptions) *Prosody {
	t.Helper()
	Require(t, "prosody")
	Require(t, "openssl")
	if opts.Domain == "" {
		opts.Domain = "prosody.test"
	}
	if opts.ComponentName == "" {
		opts.ComponentName = "gw." + opts.Domain
	}
	if opts.ComponentSecret == "" {
		opts.ComponentSecret = "secret"
	}
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	// A port picked free may be taken before Prosody binds it: retry with
	// new ones.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p := &Prosody{
			Domain: opts.Domain, Dir: dir, t: t,
			C2S: pick(t, opts.C2S), S2S: pick(t, opts.S2S), Component: pick(t, opts.Component),
			ComponentName: opts.ComponentName, ComponentSecret: opts.ComponentSecret,
		}
		switch {
		case opts.S2STLS > 0:
			p.S2STLS = opts.S2STLS
		case opts.S2STLS < 0:
			p.S2STLS = FreePort(t)
		}
		out, err := p.up(opts)
		if err == nil {
			pid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
			if perr != nil {
				p.down()
				t.Fatalf("interop: prosody-up.sh printed %q, not a pid", out)
			}
			p.Pid = pid
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("interop: tail of %s:\n%s", filepath.Join(dir, "prosody.log"), p.LogTail(40))
				}
				p.Stop()
			})
			return p
		}
		lastErr = err
		fixed := opts.C2S != 0 && opts.S2S != 0 && opts.Component != 0
		if fixed {
			break
		}
	}
	t.Fatalf("interop: starting Prosody: %v", lastErr)
	return nil
}

func pick(t testing.TB, port int) int {
	if port != 0 {
		return port
	}
	return FreePort(t)
}

func (p *Prosody) up(o ProsodyOptions) ([]byte, error) {
	args := []string{p.Domain, p.Dir,
		"--c2s", strconv.Itoa(p.C2S), "--s2s", strconv.Itoa(p.S2S),
		"--component", strconv.Itoa(p.Component),
		"--component-name", p.ComponentName, "--component-secret", p.ComponentSecret,
		"--secure-auth", strconv.FormatBool(o.SecureAuth),
		"--require-encryption", strconv.FormatBool(!o.PlaintextS2S),
	}
	if p.S2STLS != 0 {
		args = append(args, "--s2s-tls", strconv.Itoa(p.S2STLS))
	}
	if o.DNS != "" {
		args = append(args, "--dns", o.DNS)
	}
	if o.NetNS != "" {
		args = append(args, "--netns", o.NetNS)
	}
	for _, u := range o.Users {
		args = append(args, "--user", u)
	}
	if o.Cert != "" || o.Key != "" {
		args = append(args, "--cert", o.Cert, "--key", o.Key)
	}
	if o.CAFile != "" {
		args = append(args, "--cafile", o.CAFile)
	}
	if o.S2STimeout > 0 {
		args = append(args, "--s2s-timeout", strconv.Itoa(int(o.S2STimeout.Round(time.Second)/time.Second)))
	}
	if o.Bidi {
		args = append(args, "--bidi")
	}
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	cmd := exec.Command(filepath.Join(PeersDir(), "prosody-up.sh"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("prosody-up.sh: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (p *Prosody) down() {
	cmd := exec.Command(filepath.Join(PeersDir(), "prosody-down.sh"), p.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Logf("interop: prosody-down.sh: %v: %s", err, out)
	}
}

// Stop stops Prosody (about 2 s). The cleanup calls it; calling it earlier
// is allowed, and later calls do nothing.
func (p *Prosody) Stop() { p.stopOnce.Do(p.down) }

// C2SAddr, S2SAddr and ComponentAddr return "127.0.0.1:PORT".
func (p *Prosody) C2SAddr() string       { return addr(p.C2S) }
func (p *Prosody) S2SAddr() string       { return addr(p.S2S) }
func (p *Prosody) ComponentAddr() string { return addr(p.Component) }

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// LogPath returns the path of prosody.log.
func (p *Prosody) LogPath() string { return filepath.Join(p.Dir, "prosody.log") }

// Log returns prosody.log so far.
func (p *Prosody) Log() string {
	b, _ := os.ReadFile(p.LogPath())
	return string(b)
}

// LogTail returns the last n lines of prosody.log.
func (p *Prosody) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// AddUser creates (or resets) an account on Prosody's domain with
// prosody-user.sh; it works while Prosody runs.
func (p *Prosody) AddUser(t testing.TB, user, password string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(PeersDir(), "prosody-user.sh"), p.Dir, user, p.Domain, password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("interop: prosody-user.sh %s: %v: %s", user, err, out)
	}
}

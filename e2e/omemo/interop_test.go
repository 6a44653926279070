package omemo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// debianPython is Debian's interpreter: the python3-omemo packages install
// for it, not for a python3 that may come first on PATH (pyenv).
const debianPython = "/usr/bin/python3"

const installHint = "apt-get install -y python3-omemo python3-oldmemo python3-twomemo python3-xmlschema"

// needPython skips the test when python-omemo is missing, or fails it
// under CI=true: in CI a missing peer is a failure, never a skip.
func needPython(t *testing.T) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if _, err := os.Stat(debianPython); err != nil {
		fail("%s not found (%v): install Debian's python3 and %s", debianPython, err, installHint)
		return
	}
	out, err := exec.Command(debianPython, "-c", "import omemo, oldmemo, oldmemo.etree, xmlschema").CombinedOutput()
	if err != nil {
		fail("python-omemo is not installed for %s (%v: %s): %s", debianPython, err, bytes.TrimSpace(out), installHint)
	}
}

// pyDevice is one python-omemo device run by testdata/omemo_driver.py.
type pyDevice struct {
	t      *testing.T
	jid    string
	dir    string
	cmd    *exec.Cmd
	in     *json.Encoder
	out    *bufio.Scanner
	stderr *bytes.Buffer
	mu     sync.Mutex

	id          uint32
	fingerprint string
	outbox      []outMsg
}

type outMsg struct {
	To  string `json:"to"`
	XML string `json:"xml"`
}

type pyResp struct {
	Error       string            `json:"error"`
	Outbox      []outMsg          `json:"outbox"`
	DeviceID    uint32            `json:"device_id"`
	Fingerprint string            `json:"fingerprint"`
	DeviceList  *string           `json:"devicelist"`
	Bundles     map[string]string `json:"bundles"`
	XML         string            `json:"xml"`
	Errors      []string          `json:"errors"`
	Plaintext   *string           `json:"plaintext"`
	Device      uint32            `json:"device"`
}

func startPy(t *testing.T, jid, dir string) *pyDevice {
	t.Helper()
	p := &pyDevice{t: t, jid: jid, dir: dir, stderr: new(bytes.Buffer)}
	p.cmd = exec.Command(debianPython, filepath.Join("testdata", "omemo_driver.py"), dir, jid)
	p.cmd.Stderr = p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	p.in = json.NewEncoder(stdin)
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(nil, 16<<20)
	r := p.call(map[string]any{"op": "init"})
	p.id, p.fingerprint = r.DeviceID, r.Fingerprint
	return p
}

func (p *pyDevice) call(req map[string]any) *pyResp {
	p.t.Helper()
	r, err := p.try(req)
	if err != nil {
		p.t.Fatalf("python %s %v: %v\npython stderr:\n%s", p.jid, req["op"], err, p.stderr)
	}
	return r
}

func (p *pyDevice) try(req map[string]any) (*pyResp, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.in.Encode(req); err != nil {
		return nil, err
	}
	if !p.out.Scan() {
		return nil, fmt.Errorf("driver ended: %v", p.out.Err())
	}
	r := new(pyResp)
	if err := json.Unmarshal(p.out.Bytes(), r); err != nil {
		return nil, err
	}
	p.outbox = append(p.outbox, r.Outbox...)
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

func (p *pyDevice) quit() {
	p.call(map[string]any{"op": "quit"})
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("python %s: %v\n%s", p.jid, err, p.stderr)
	}
	if p.stderr.Len() > 0 {
		p.t.Logf("python %s said:\n%s", p.jid, p.stderr)
	}
}

// goSide is the Go device of a pair, in a BoltStore.
type goSide struct {
	t     *testing.T
	path  string
	st    *BoltStore
	d     *Device
	peer  *pyDevice
	fetch int // bundles fetched from python
}

func openGo(t *testing.T, path, jid string, peer *pyDevice) *goSide {
	t.Helper()
	g := &goSide{t: t, path: path, peer: peer}
	var err error
	if g.st, err = OpenBoltStore(path, BoltOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	g.d, err = Open(context.Background(), Config{
		JID: jid, Store: g.st, Logger: quiet,
		FetchBundle: func(_ context.Context, jid string, id uint32) (*Bundle, error) {
			r := g.peer.call(map[string]any{"op": "fetch"})
			x, ok := r.Bundles[strconv.FormatUint(uint64(id), 10)]
			if jid != g.peer.jid || !ok {
				return nil, fmt.Errorf("no bundle for %s/%d", jid, id)
			}
			g.fetch++
			return ParseBundle([]byte(x))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.st.Close() })
	return g
}

// publish gives python the Go device's device list and bundle, as its PEP
// nodes would.
func (g *goSide) publish() {
	g.t.Helper()
	b, err := g.d.Bundle(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	g.peer.call(map[string]any{
		"op":         "publish",
		"jid":        g.d.JID(),
		"devicelist": string(g.d.WithSelf(nil).AppendXML(nil)),
		"bundles":    map[string]string{strconv.FormatUint(uint64(g.d.ID()), 10): string(b.AppendXML(nil))},
	})
}

// learn reads python's device list, as from its PEP node.
func (g *goSide) learn() {
	g.t.Helper()
	r := g.peer.call(map[string]any{"op": "fetch"})
	if r.DeviceList == nil {
		g.t.Fatal("python published no device list")
	}
	l, err := ParseDeviceList([]byte(*r.DeviceList))
	if err != nil {
		g.t.Fatal(err)
	}
	if !l.Contains(g.peer.id) {
		g.t.Fatalf("python's device list %v lacks its device %d", l.Devices, g.peer.id)
	}
	if err := g.d.SetDeviceList(context.Background(), g.peer.jid, l); err != nil {
		g.t.Fatal(err)
	}
}

func (g *goSide) close() {
	if err := g.st.Close(); err != nil {
		g.t.Fatal(err)
	}
}

// decrypt has the Go device decrypt what python sent, and republishes its
// bundle when a pre-key was used.
func (g *goSide) decrypt(x string) *Message {
	g.t.Helper()
	e, err := ParseEncrypted([]byte(x))
	if err != nil {
		g.t.Fatalf("parse python's message: %v\n%s", err, x)
	}
	m, err := g.d.Decrypt(context.Background(), g.peer.jid, e)
	if err != nil {
		g.t.Fatalf("Go decrypt: %v\n%s", err, x)
	}
	if m.Device != g.peer.id || m.Fingerprint != g.peer.fingerprint {
		g.t.Fatalf("sender %d %s, want python's %d %s", m.Device, m.Fingerprint, g.peer.id, g.peer.fingerprint)
	}
	if m.BundleChanged {
		g.publish()
	}
	return m
}

// drain delivers python's own messages (empty ones) to the Go device.
func (g *goSide) drain() int {
	g.t.Helper()
	n := 0
	for len(g.peer.outbox) > 0 {
		o := g.peer.outbox[0]
		g.peer.outbox = g.peer.outbox[1:]
		if o.To != g.d.JID() {
			g.t.Fatalf("python sent to %s", o.To)
		}
		m := g.decrypt(o.XML)
		if m.Plaintext != nil || len(m.Key) != 16 {
			g.t.Fatalf("python's empty message decrypted to %q, key %d bytes", m.Plaintext, len(m.Key))
		}
		n++
	}
	return n
}

type counts struct{ goToPy, pyToGo, empty, outOfOrder int }

// goToPy sends n messages from Go to python, delivered in random order.
func (g *goSide) goToPy(c *counts, tag string, n int) {
	g.t.Helper()
	ctx := context.Background()
	var batch []string
	for i := range n {
		e, err := g.d.Encrypt(ctx, fmt.Appendf(nil, "%s go→py %d ✓", tag, i), g.peer.jid)
		if err != nil {
			g.t.Fatalf("Go encrypt: %v", err)
		}
		if len(e.Keys) != 1 || e.Keys[0].RID != g.peer.id {
			g.t.Fatalf("keys %+v, want one for python's device %d", e.Keys, g.peer.id)
		}
		batch = append(batch, string(e.AppendXML(nil)))
	}
	order := rand.Perm(n)
	for k, i := range order {
		if k != i {
			c.outOfOrder++
		}
		r := g.peer.call(map[string]any{"op": "decrypt", "from": g.d.JID(), "xml": batch[i]})
		want := fmt.Sprintf("%s go→py %d ✓", tag, i)
		if r.Plaintext == nil || *r.Plaintext != want || r.Device != g.d.ID() {
			g.t.Fatalf("python decrypted %v from %d, want %q from %d", r.Plaintext, r.Device, want, g.d.ID())
		}
		c.goToPy++
	}
	c.empty += g.drain()
}

// pyToGo sends n messages from python to Go, delivered in random order.
func (g *goSide) pyToGo(c *counts, tag string, n int) {
	g.t.Helper()
	var batch []string
	for i := range n {
		r := g.peer.call(map[string]any{"op": "encrypt", "to": g.d.JID(), "plaintext": fmt.Sprintf("%s py→go %d ✓", tag, i)})
		if len(r.Errors) > 0 {
			g.t.Fatalf("python encrypt: %v", r.Errors)
		}
		batch = append(batch, r.XML)
	}
	// python's own messages so far go first, in order: they belong to the
	// ratchet before this batch.
	c.empty += g.drain()
	order := rand.Perm(n)
	for k, i := range order {
		if k != i {
			c.outOfOrder++
		}
		m := g.decrypt(batch[i])
		if want := fmt.Sprintf("%s py→go %d ✓", tag, i); string(m.Plaintext) != want {
			g.t.Fatalf("Go decrypted %q, want %q", m.Plaintext, want)
		}
		c.pyToGo++
	}
}

// TestInteropOldmemo runs OMEMO 0.3 against python-omemo with
// python-oldmemo, both directions, through restarts of both sides.
func TestInteropOldmemo(t *testing.T) {
	needPython(t)
	if testing.Short() {
		t.Skip("long interop test")
	}
	dir := t.TempDir()
	const perBatch = 25
	var c counts
	start := time.Now()

	// Pair 1: Go starts. Pair 2: python starts.
	py1dir, py2dir := filepath.Join(dir, "py1"), filepath.Join(dir, "py2")
	os.Mkdir(py1dir, 0o700)
	os.Mkdir(py2dir, 0o700)
	py1 := startPy(t, "py1@example.org", py1dir)
	py2 := startPy(t, "py2@example.net", py2dir)
	go1 := openGo(t, filepath.Join(dir, "go1.db"), "go1@example.com", py1)
	go2 := openGo(t, filepath.Join(dir, "go2.db"), "go2@example.com", py2)
	for _, g := range []*goSide{go1, go2} {
		g.publish() // even a device that only sends publishes its bundle
		g.learn()
	}

	// Pair 1: the first Go message is a pre-key message.
	e, err := go1.d.Encrypt(context.Background(), []byte("first"), py1.jid)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Keys[0].PreKey || go1.fetch != 1 {
		t.Fatalf("first message: pre-key %v, bundles fetched %d", e.Keys[0].PreKey, go1.fetch)
	}
	r := py1.call(map[string]any{"op": "decrypt", "from": go1.d.JID(), "xml": string(e.AppendXML(nil))})
	if r.Plaintext == nil || *r.Plaintext != "first" {
		t.Fatalf("python decrypted %v", r.Plaintext)
	}
	c.goToPy++
	// Pair 2: the first python message is a pre-key message.
	r = py2.call(map[string]any{"op": "encrypt", "to": go2.d.JID(), "plaintext": "first"})
	if !strings.Contains(r.XML, "prekey=") {
		t.Fatalf("python's first message is not a pre-key message:\n%s", r.XML)
	}
	if m := go2.decrypt(r.XML); string(m.Plaintext) != "first" || !m.PreKey || !m.BundleChanged {
		t.Fatalf("Go decrypted %+v", m)
	}
	c.pyToGo++

	const rounds = 3
	for round := range rounds {
		tag := fmt.Sprintf("r%d", round)
		go1.goToPy(&c, tag, perBatch)
		go1.pyToGo(&c, tag, perBatch)
		go2.pyToGo(&c, tag, perBatch)
		go2.goToPy(&c, tag, perBatch)
	}

	// Both sides restart from their stores; the sessions go on.
	py1.quit()
	py2.quit()
	go1.close()
	go2.close()
	py1 = startPy(t, py1.jid, py1dir)
	py2 = startPy(t, py2.jid, py2dir)
	id1, id2 := go1.d.ID(), go2.d.ID()
	go1 = openGo(t, go1.path, go1.d.JID(), py1)
	go2 = openGo(t, go2.path, go2.d.JID(), py2)
	if go1.d.ID() != id1 || go2.d.ID() != id2 {
		t.Fatal("Go devices changed id across the restart")
	}
	for round := rounds; round < rounds+2; round++ {
		tag := fmt.Sprintf("r%d", round)
		go1.goToPy(&c, tag, perBatch)
		go2.goToPy(&c, tag, perBatch)
		go1.pyToGo(&c, tag, perBatch)
		go2.pyToGo(&c, tag, perBatch)
	}
	if go1.fetch != 0 || go2.fetch != 0 {
		t.Fatalf("after the restart Go fetched bundles (%d, %d): the sessions were lost", go1.fetch, go2.fetch)
	}
	py1.quit()
	py2.quit()
	t.Logf("OMEMO 0.3 with python-oldmemo: %d messages Go→python, %d python→Go (+%d empty messages python→Go), %d delivered out of order, in %v",
		c.goToPy, c.pyToGo, c.empty, c.outOfOrder, time.Since(start).Round(time.Millisecond))
	if c.goToPy < 200 || c.pyToGo < 200 {
		t.Fatalf("only %d and %d messages", c.goToPy, c.pyToGo)
	}
}

package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// The control socket is a unix socket in the state directory through
// which `s2sd status` and `s2sd ctl` talk to a running node: one JSON
// object per line each way (docs/control.md). It is never a TCP port: who
// may use it is decided by the file's mode (0600, the daemon's user) and,
// on Linux, by the peer credentials the kernel gives with each connection
// (SO_PEERCRED), which every action is logged with.

// ControlSocketName is the name of the control socket in the state
// directory.
const ControlSocketName = "control.sock"

// ControlSocket returns the path of the control socket of a node running
// on c: STATE_DIR/control.sock.
func (c *Config) ControlSocket() string {
	return filepath.Join(c.Server.StateDir, ControlSocketName)
}

// Control commands.
const (
	CmdStatus = "status" // result: Status
	CmdClose  = "close"  // domain; result: CloseResult
	CmdRetry  = "retry"  // domain; result: RetryResult
	CmdBounce = "bounce" // domain; result: BounceResult
	CmdReload = "reload" // result: ReloadResult
)

// ControlRequest is one request on the control socket.
type ControlRequest struct {
	Command string `json:"command"`
	// Domain is the remote (or component) domain of close, retry and
	// bounce.
	Domain string `json:"domain,omitempty"`
	// Condition is the stream error close sends (default "reset"; also
	// "policy-violation", "system-shutdown", "undefined-condition").
	Condition string `json:"condition,omitempty"`
}

// ControlResponse is the answer to a ControlRequest: OK and Result, or
// Error.
type ControlResponse struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// CloseResult is what close did.
type CloseResult struct {
	Domain string `json:"domain"`
	// Streams is the number of s2s streams closed, Components the
	// component streams (when Domain is a component's).
	Streams    int `json:"streams_closed"`
	Components int `json:"components_closed"`
	// Queued stanzas for Domain stay queued: they go out on the next
	// stream.
	Queued int `json:"queued"`
}

// RetryResult is what retry did.
type RetryResult struct {
	Domain string `json:"domain"`
	// Retried is true when a backoff wait was cut short: the next
	// attempt has started.
	Retried bool `json:"retried"`
	Queued  int  `json:"queued"`
}

// BounceResult is what bounce did.
type BounceResult struct {
	Domain  string `json:"domain"`
	Bounced int    `json:"bounced"`
}

// Cred is the identity of the process at the other end of the control
// socket, as the kernel tells it (-1 where it cannot).
type Cred struct {
	PID int `json:"pid"`
	UID int `json:"uid"`
	GID int `json:"gid"`
}

var closeConditions = []stream.Condition{stream.Reset, stream.PolicyViolation, stream.SystemShutdown, stream.UndefinedCondition}

// CloseDomain ends every s2s stream with domain, in both directions, and
// the stream of the component of domain if one is attached, with the
// stream error cond (stream.Reset when ""). Stanzas queued for domain
// stay queued; what was sent on an outbound stream and not acknowledged
// is queued again. A peer reconnects when it has something to send, and
// so does the node.
func (n *Node) CloseDomain(domain string, cond stream.Condition) (*CloseResult, error) {
	if cond == "" {
		cond = stream.Reset
	}
	if !slices.Contains(closeConditions, cond) {
		return nil, fmt.Errorf("node: close: condition %q is not one of %v", cond, closeConditions)
	}
	e := stream.New(cond, "closed by the server's administrator")
	res := &CloseResult{Domain: domain}
	for _, c := range n.s2s.Streams() {
		if _, ok := c.Pairs()[domain]; ok || c.Remote() == domain {
			c.CloseWithError(e)
			res.Streams++
		}
	}
	for _, c := range n.pool.Streams() {
		if c.Remote() == domain {
			c.CloseWithError(e)
			res.Streams++
		}
	}
	if n.comps.CloseDomain(domain, e) {
		res.Components++
	}
	for _, l := range n.pool.Links() {
		if l.Remote == domain {
			res.Queued = l.Queued + l.Unacked
		}
	}
	return res, nil
}

// RetryDomain cuts short the wait before the next attempt to reach
// domain, when one waits.
func (n *Node) RetryDomain(domain string) *RetryResult {
	res := &RetryResult{Domain: domain, Retried: n.pool.Retry(domain)}
	for _, l := range n.pool.Links() {
		if l.Remote == domain {
			res.Queued = l.Queued
		}
	}
	return res
}

// BounceDomain returns the stanzas queued for domain to their senders
// with remote-server-not-found, as if its retries were spent.
func (n *Node) BounceDomain(domain string) *BounceResult {
	k := n.pool.Bounce(domain, stanza.New(stanza.RemoteServerNotFound, "bounced by the server's administrator"))
	return &BounceResult{Domain: domain, Bounced: k}
}

// controlServer serves a node's control socket.
type controlServer struct {
	n     *Node
	l     *net.UnixListener
	log   *slog.Logger
	allow func(Cred) bool

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// checkRunning fails when another node answers on the control socket of
// cfg: it runs on the same state directory (and holds its queue file).
func checkRunning(cfg *Config) error {
	path := cfg.ControlSocket()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil // stale: its daemon is gone
	}
	defer c.Close()
	who := "another s2sd"
	if cred, err := peerCred(c.(*net.UnixConn)); err == nil && cred.PID > 0 {
		who = fmt.Sprintf("another s2sd (pid %d)", cred.PID)
	}
	return fmt.Errorf("node: %s is running on the state directory %s (its control socket %s answers)", who, cfg.Server.StateDir, path)
}

// startOperator records the start and opens the control socket. A
// control socket that cannot be opened is logged, not fatal: the node
// serves without it.
func (n *Node) startOperator(cfg *Config) {
	n.op.mu.Lock()
	defer n.op.mu.Unlock()
	n.op.started = time.Now()
	path := cfg.ControlSocket()
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path) // stale: checkRunning found no daemon behind it
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		n.log.Error("control socket: cannot listen; s2sd status and s2sd ctl will not work", "path", path, "err", err)
		return
	}
	// The state directory is 0700 already; the socket's own mode is
	// what protects it where the directory is more open.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		n.log.Error("control socket: cannot set its mode; not serving it", "path", path, "err", err)
		return
	}
	euid := os.Geteuid()
	cs := &controlServer{n: n, l: l, log: n.log.With("control", path), conns: map[net.Conn]bool{},
		allow: func(c Cred) bool { return c.UID == euid || c.UID == 0 }}
	n.op.ctl, n.op.ctlPath = cs, path
	n.serve(cs.serve)
	n.log.Info("control socket", "path", path)
}

// stopOperator closes the control socket and waits for its requests.
func (n *Node) stopOperator() {
	n.op.mu.Lock()
	cs := n.op.ctl
	n.op.ctl, n.op.ctlPath = nil, ""
	n.op.mu.Unlock()
	if cs != nil {
		cs.close()
	}
}

func (cs *controlServer) serve() error {
	for {
		c, err := cs.l.AcceptUnix()
		if err != nil {
			cs.mu.Lock()
			closed := cs.closed
			cs.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("control socket: %w", err)
		}
		cs.mu.Lock()
		if cs.closed {
			cs.mu.Unlock()
			c.Close()
			return nil
		}
		cs.conns[c] = true
		cs.wg.Add(1)
		cs.mu.Unlock()
		go cs.handle(c)
	}
}

func (cs *controlServer) close() {
	cs.mu.Lock()
	cs.closed = true
	cs.l.Close() // removes the socket file
	for c := range cs.conns {
		c.Close()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
}

// controlIdle closes a control connection with no request for that long.
const controlIdle = time.Minute

// handle serves one connection: requests, one a line, each answered with
// a line.
func (cs *controlServer) handle(c *net.UnixConn) {
	defer func() {
		c.Close()
		cs.mu.Lock()
		delete(cs.conns, c)
		cs.mu.Unlock()
		cs.wg.Done()
	}()
	cred, err := peerCred(c)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		cs.log.Warn("control socket: no peer credentials; refusing", "err", err)
		return
	}
	enc := json.NewEncoder(c)
	if err == nil && !cs.allow(cred) {
		cs.log.Warn("control socket: refused a client of another user", "uid", cred.UID, "pid", cred.PID)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		enc.Encode(ControlResponse{Error: fmt.Sprintf("permission denied: uid %d may not control this s2sd (run as uid %d or root)", cred.UID, os.Geteuid())})
		return
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(controlIdle))
		if !sc.Scan() {
			return
		}
		var req ControlRequest
		var resp ControlResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			result, err := cs.do(req, cred)
			if err != nil {
				resp.Error = err.Error()
			} else if resp.Result, err = json.Marshal(result); err != nil {
				resp.Error = err.Error()
			} else {
				resp.OK = true
			}
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// do runs one request from cred.
func (cs *controlServer) do(req ControlRequest, cred Cred) (any, error) {
	n := cs.n
	log := cs.log.With("command", req.Command, "uid", cred.UID, "pid", cred.PID)
	needDomain := func() error {
		if req.Domain == "" {
			return fmt.Errorf("%s needs a domain", req.Command)
		}
		if err := checkDomain(req.Domain); err != nil {
			return err
		}
		return nil
	}
	switch req.Command {
	case CmdStatus:
		log.Debug("control: status")
		return n.Status(), nil
	case CmdClose:
		if err := needDomain(); err != nil {
			return nil, err
		}
		res, err := n.CloseDomain(req.Domain, stream.Condition(req.Condition))
		if err != nil {
			return nil, err
		}
		log.Info("control: closed the streams of a domain", "domain", req.Domain, "streams", res.Streams, "components", res.Components, "queued", res.Queued)
		return res, nil
	case CmdRetry:
		if err := needDomain(); err != nil {
			return nil, err
		}
		res := n.RetryDomain(req.Domain)
		log.Info("control: retry now", "domain", req.Domain, "retried", res.Retried, "queued", res.Queued)
		return res, nil
	case CmdBounce:
		if err := needDomain(); err != nil {
			return nil, err
		}
		res := n.BounceDomain(req.Domain)
		log.Info("control: bounced the queue of a domain", "domain", req.Domain, "bounced", res.Bounced)
		return res, nil
	case CmdReload:
		log.Info("control: reload")
		return n.ReloadFile()
	case "":
		return nil, errors.New("bad request: no command")
	}
	return nil, fmt.Errorf("unknown command %q (status, close, retry, bounce, reload)", req.Command)
}

// ControlClient talks to a node's control socket.
type ControlClient struct {
	c   net.Conn
	sc  *bufio.Scanner
	enc *json.Encoder
}

// DialControl connects to the control socket at path.
func DialControl(path string) (*ControlClient, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no s2sd is running with the control socket %s: %w", path, err)
		}
		return nil, err
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	return &ControlClient{c: c, sc: sc, enc: json.NewEncoder(c)}, nil
}

// Close closes the connection.
func (cc *ControlClient) Close() error { return cc.c.Close() }

// Do sends req and decodes the result into result (nil to ignore it).
// A refusal by the node is an error with its text.
func (cc *ControlClient) Do(req ControlRequest, result any) error {
	cc.c.SetDeadline(time.Now().Add(time.Minute))
	// A node that refuses the client answers and closes at once: read
	// its answer even when the request could not be written.
	werr := cc.enc.Encode(req)
	if !cc.sc.Scan() {
		if werr != nil {
			return werr
		}
		if err := cc.sc.Err(); err != nil {
			return err
		}
		return errors.New("control socket: closed without an answer")
	}
	var resp ControlResponse
	if err := json.Unmarshal(cc.sc.Bytes(), &resp); err != nil {
		return fmt.Errorf("control socket: bad answer: %w", err)
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(resp.Result, result)
}

// Status asks for the node's Status.
func (cc *ControlClient) Status() (*Status, error) {
	var st Status
	return &st, cc.Do(ControlRequest{Command: CmdStatus}, &st)
}

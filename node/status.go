package node

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/s2s"
)

// Status is what a running node can tell an operator: its streams,
// components and queues, and the process. The control socket's status
// command, `s2sd status`, /status and /status.json all show it. It
// follows nats-server's /varz and /connz: a snapshot, taken without
// stopping traffic, whose parts may be a few microseconds apart.
type Status struct {
	Process    ProcessStatus     `json:"process"`
	Streams    []StreamStatus    `json:"streams"`
	Components []ComponentStatus `json:"components"`
	Queues     []QueueStatus     `json:"queues"`
	// Cluster is the node's view of its cluster; nil without one.
	Cluster *cluster.Status `json:"cluster,omitempty"`
}

// ProcessStatus describes the node and the process it runs in.
type ProcessStatus struct {
	Version   string    `json:"version"`
	GoVersion string    `json:"go_version"`
	PID       int       `json:"pid"`
	Now       time.Time `json:"now"`
	Started   time.Time `json:"started"`
	Uptime    Seconds   `json:"uptime_seconds"`
	// ConfigFile is the file the running configuration came from; "" for
	// the embedded default or a configuration given by a program.
	ConfigFile string `json:"config_file"`
	// Reloaded is when the configuration was last reloaded (zero if
	// never), and LastReload what that reload did.
	Reloaded   time.Time     `json:"reloaded,omitzero"`
	LastReload *ReloadResult `json:"last_reload,omitempty"`
	Domains    []string      `json:"domains"`
	StateDir   string        `json:"state_dir"`
	// Listeners by name: s2s, s2s_direct_tls, components, metrics,
	// control.
	Listeners map[string]string `json:"listeners"`
	// Queued is the number of stanzas waiting for, or sent and not yet
	// acknowledged on, outbound streams.
	Queued int `json:"queued"`
}

// Seconds is a duration that JSON shows in seconds.
type Seconds float64

func seconds(d time.Duration) Seconds { return Seconds(d.Round(time.Millisecond).Seconds()) }

// Duration returns s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// Brief writes a duration the way an operator reads it: 3d4h, 5m12s,
// 800ms (the status page and s2sd status).
func (s Seconds) Brief() string {
	d := s.Duration()
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
}

// StreamStatus describes one server-to-server stream.
type StreamStatus struct {
	// Direction is "in" (the peer connected to us) or "out".
	Direction string `json:"direction"`
	// Remote is the peer's domain ("" before its stream header says),
	// Local our domains authenticated with it on this stream (or, before
	// authentication, the one its header names).
	Remote string   `json:"remote"`
	Local  []string `json:"local"`
	// Pairs lists the other remote domains authenticated on an inbound
	// stream (XEP-0220 multiplexing), with their local domains.
	Pairs    map[string][]string `json:"other_pairs,omitempty"`
	Address  string              `json:"address"`
	StreamID string              `json:"stream_id"`
	// State is "negotiating" or "ready".
	State string `json:"state"`
	// Auth is "sasl-external", "dialback" or "" (not yet authenticated).
	Auth       string `json:"auth"`
	TLSVersion string `json:"tls_version,omitempty"`
	TLSCipher  string `json:"tls_cipher,omitempty"`
	// CertVerified: the peer's certificate is valid for its domain
	// (against the CA roots, or DANE when DANE is set too).
	CertVerified bool `json:"cert_verified"`
	DANE         bool `json:"dane"`
	// StreamManagement: XEP-0198 acknowledgements are on (outbound
	// streams only report it).
	StreamManagement bool      `json:"stream_management"`
	Since            time.Time `json:"since"`
	Age              Seconds   `json:"age_seconds"`
	StanzasIn        uint64    `json:"stanzas_in"`
	StanzasOut       uint64    `json:"stanzas_out"`
	// Unacked counts the stanzas sent on an outbound stream and not yet
	// acknowledged (XEP-0198).
	Unacked int `json:"unacked"`
}

// ComponentStatus describes a configured external component (XEP-0114).
type ComponentStatus struct {
	Domain    string `json:"domain"`
	Connected bool   `json:"connected"`
	// Node is, in a cluster, the node the component is attached to.
	Node       string    `json:"node,omitempty"`
	Address    string    `json:"address,omitempty"`
	StreamID   string    `json:"stream_id,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Age        Seconds   `json:"age_seconds,omitempty"`
	StanzasIn  uint64    `json:"stanzas_in"`
	StanzasOut uint64    `json:"stanzas_out"`
}

// QueueStatus describes what waits for one remote domain.
type QueueStatus struct {
	Remote string `json:"remote"`
	// Queued stanzas wait for a stream; Unacked were sent on the stream
	// and wait for its acknowledgement.
	Queued  int `json:"queued"`
	Unacked int `json:"unacked"`
	// Oldest is when the oldest of them arrived; OldestAge how long ago.
	Oldest    time.Time `json:"oldest,omitzero"`
	OldestAge Seconds   `json:"oldest_age_seconds,omitempty"`
	// Stream says whether an outbound stream is up; Dialing whether one
	// is being brought up (or waits for its next attempt, at NextRetry).
	Stream    bool      `json:"stream"`
	Dialing   bool      `json:"dialing"`
	NextRetry time.Time `json:"next_retry,omitzero"`
	RetryIn   Seconds   `json:"retry_in_seconds,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// operator holds what the node keeps for its operators: times, the last
// reload, the control socket. Its zero value is ready.
type operator struct {
	mu         sync.Mutex
	started    time.Time
	reloaded   time.Time
	lastReload *ReloadResult
	ctl        *controlServer
	ctlPath    string
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() *Status {
	now := time.Now()
	cfg := n.cfg.Load()
	n.op.mu.Lock()
	started, reloaded, last, ctlPath := n.op.started, n.op.reloaded, n.op.lastReload, n.op.ctlPath
	n.op.mu.Unlock()
	if last != nil {
		r := *last
		r.Applied, r.Restart = slices.Clone(r.Applied), slices.Clone(r.Restart)
		last = &r
	}
	st := &Status{
		Process: ProcessStatus{
			Version:    orStr(n.opts.Version, "devel"),
			GoVersion:  runtime.Version(),
			PID:        os.Getpid(),
			Now:        now,
			Started:    started,
			ConfigFile: cfg.Path(),
			Reloaded:   reloaded,
			LastReload: last,
			Domains:    slices.Clone(cfg.Server.Domains),
			StateDir:   cfg.Server.StateDir,
			Listeners:  map[string]string{},
		},
		Streams:    []StreamStatus{},
		Components: []ComponentStatus{},
		Queues:     []QueueStatus{},
	}
	if !started.IsZero() {
		st.Process.Uptime = seconds(now.Sub(started))
	}
	for name, a := range map[string]net.Addr{"s2s": n.S2SAddr(), "s2s_direct_tls": n.DirectTLSAddr(), "components": n.ComponentAddr(), "metrics": n.MetricsAddr()} {
		if a != nil {
			st.Process.Listeners[name] = a.String()
		}
	}
	if ctlPath != "" {
		st.Process.Listeners["control"] = ctlPath
	}

	for _, c := range n.s2s.Streams() {
		st.Streams = append(st.Streams, streamStatus(c, "in", now, 0))
	}
	links := n.pool.Links()
	for _, l := range links {
		if l.Stream != nil {
			st.Streams = append(st.Streams, streamStatus(l.Stream, "out", now, l.Unacked))
		}
		if l.Queued+l.Unacked == 0 && !l.Dialing && l.LastError == nil {
			continue
		}
		q := QueueStatus{Remote: l.Remote, Queued: l.Queued, Unacked: l.Unacked, Oldest: l.Oldest, Stream: l.Stream != nil, Dialing: l.Dialing, NextRetry: l.NextRetry}
		st.Process.Queued += l.Queued + l.Unacked
		if !l.Oldest.IsZero() {
			q.OldestAge = seconds(now.Sub(l.Oldest))
		}
		if !l.NextRetry.IsZero() {
			q.RetryIn = seconds(max(l.NextRetry.Sub(now), 0))
		}
		if l.LastError != nil {
			q.LastError = l.LastError.Error()
		}
		st.Queues = append(st.Queues, q)
	}
	slices.SortFunc(st.Streams, func(a, b StreamStatus) int {
		return cmp.Or(cmp.Compare(a.Remote, b.Remote), cmp.Compare(a.Direction, b.Direction), a.Since.Compare(b.Since))
	})
	slices.SortFunc(st.Queues, func(a, b QueueStatus) int { return cmp.Compare(a.Remote, b.Remote) })

	if clu := n.Cluster(); clu != nil {
		cs := clu.Status()
		st.Cluster = &cs
	}
	connected := map[string]bool{}
	for _, ci := range n.comps.Components() {
		connected[ci.Domain] = true
		cs := ComponentStatus{Domain: ci.Domain, Connected: true, StreamID: ci.StreamID, Since: ci.Since, Age: seconds(now.Sub(ci.Since)), StanzasIn: ci.In, StanzasOut: ci.Out}
		if ci.RemoteAddr != nil {
			cs.Address = ci.RemoteAddr.String()
		}
		if st.Cluster != nil {
			cs.Node = st.Cluster.Node
		}
		st.Components = append(st.Components, cs)
	}
	for _, c := range cfg.Component {
		if connected[c.Domain] {
			continue
		}
		cs := ComponentStatus{Domain: c.Domain}
		if st.Cluster != nil {
			cs.Node = st.Cluster.Components[c.Domain]
			cs.Connected = cs.Node != ""
		}
		st.Components = append(st.Components, cs)
	}
	slices.SortFunc(st.Components, func(a, b ComponentStatus) int { return cmp.Compare(a.Domain, b.Domain) })
	return st
}

func streamStatus(c *s2s.Conn, dir string, now time.Time, unacked int) StreamStatus {
	state := c.State()
	ss := StreamStatus{
		Direction:        dir,
		Remote:           c.Remote(),
		StreamID:         c.ID(),
		State:            "negotiating",
		Auth:             c.AuthMethod(),
		CertVerified:     state&s2s.Verified != 0,
		DANE:             state&s2s.DANE != 0,
		StreamManagement: c.StreamManagement(),
		Since:            c.Since(),
		Age:              seconds(now.Sub(c.Since())),
		Unacked:          unacked,
	}
	if a := c.RemoteAddr(); a != nil {
		ss.Address = a.String()
	}
	if state&s2s.Ready != 0 {
		ss.State = "ready"
	}
	if dir == "in" {
		ss.StanzasIn = c.Stanzas()
	} else {
		ss.StanzasOut = c.Stanzas()
	}
	if ts, ok := c.TLSState(); ok {
		ss.TLSVersion = tls.VersionName(ts.Version)
		ss.TLSCipher = tls.CipherSuiteName(ts.CipherSuite)
	}
	pairs := c.Pairs()
	ss.Local = pairs[ss.Remote]
	delete(pairs, ss.Remote)
	if len(pairs) > 0 {
		ss.Pairs = pairs
	}
	if len(ss.Local) == 0 && c.Local() != "" {
		ss.Local = []string{c.Local()}
	}
	slices.Sort(ss.Local)
	return ss
}

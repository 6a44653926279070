package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/boltstore"
	"github.com/s2sd/s2sd/stream"
)

// Errors returned by Start.
var (
	ErrStarted = errors.New("node: already started")
	ErrClosed  = errors.New("node: closed")
)

// Options are what a node takes besides its configuration: where it logs
// and counts, and the seams that code built around a node (a cluster)
// installs before Start. The zero value is a standalone node.
type Options struct {
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
	// Level, when set, is the level of Logger's handler: New and every
	// Reload set it to the configuration's server.log_level.
	Level *slog.LevelVar
	// Registry holds the node's metrics, which the metrics listener
	// serves. nil means a registry of the node's own, with the Go runtime
	// and process collectors, so that nodes in one process count apart;
	// on a registry given here the node registers only its own metrics.
	Registry *prometheus.Registry
	// Version is the software version the node logs at start and answers
	// with (XEP-0092, when server.version is set); "" means "devel".
	Version string
	// DialbackSecret, when set, is the dialback secret (XEP-0185) instead
	// of the configuration's s2s.dialback_secret_file or the one generated
	// in the state directory: nodes that serve the same domains share one,
	// so that any of them verifies a key another issued.
	DialbackSecret []byte
	// WrapRemote, when set, wraps the handler of remote domains: it is
	// called once, by New, with the node's *s2s.Pool, and the Router
	// calls what it returns for every stanza to a domain that is neither
	// local nor a component's, bounces included. Stanzas from remote
	// servers and from components borrow their stream's read buffer
	// (s2s.Server.Lend, component.Server.Lend): a wrapper that keeps one
	// past Deliver calls its Own method first.
	WrapRemote func(h route.Handler) route.Handler
	// WrapComponent, when set, wraps the handler of a component domain: it
	// is called with the domain and the node's *component.Server for each
	// configured component domain, by New and by the Reload that adds the
	// domain, and the Router calls what it returns for every stanza to
	// that domain, whether or not the component is connected to this node
	// (component.Server.Deliver then returns route.ErrNotConnected, which
	// the Router bounces as service-unavailable). As for WrapRemote, a
	// wrapper that keeps a stanza past Deliver calls its Own method first.
	WrapComponent func(domain string, h route.Handler) route.Handler
	// OnComponent, when set, is told when a component authenticates on
	// this node (up) and when its stream ends; see
	// component.Server.OnConnect. It runs on connection goroutines and
	// should not block.
	OnComponent func(domain string, up bool)
}

type state uint8

const (
	stateNew state = iota
	stateStarted
	stateStopped
)

// Node is one s2sd: an s2s.Server and a component.Server whose stanzas go
// through a route.Router to the node's own domains, to components, or to
// remote domains through an s2s.Pool, with a metrics listener. Build it
// with New, run it with Start, stop it with Shutdown or Close. Its methods
// are safe for concurrent use.
type Node struct {
	opts    Options
	cfg     atomic.Pointer[Config]
	log     *slog.Logger
	metrics *metrics
	router  *route.Router
	dialer  *s2s.Dialer
	pool    *s2s.Pool
	s2s     *s2s.Server
	comps   *component.Server
	httpSrv *http.Server
	// op is what the node keeps for operators: times, the last reload,
	// the control socket (status.go, control.go).
	op operator

	mu sync.Mutex // guards what follows, and serializes Start and Reload
	// compHandlers are what the Router calls for each component domain:
	// the component Server, wrapped.
	compHandlers map[string]route.Handler
	clu          *cluster.Cluster // nil outside a cluster
	state        state
	store        s2s.Store
	// Listener addresses, known once Start returns.
	s2sAddr, directAddr, compAddr, metricsAddr net.Addr
	serveWG                                    sync.WaitGroup
}

// New builds a node from cfg, which it validates again and prepares (state
// directory, generated secrets, self-signed certificates) on a copy of its
// own: cfg is not modified and may be reused. New listens on nothing;
// Start does.
func New(cfg *Config, opts Options) (*Node, error) {
	c, err := opts.prepare(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{opts: opts, log: opts.Logger}
	if n.log == nil {
		n.log = slog.Default()
	}
	if opts.Level != nil {
		opts.Level.Set(c.logLevel)
	}
	if n.metrics, err = newMetrics(opts.Registry); err != nil {
		return nil, err
	}
	if c.cluster != nil {
		// A node of a cluster joins it now: the dialback secret is the
		// cluster's, and the wrappers below send stanzas across nodes.
		cc := *c.cluster
		cc.Logger = n.log
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if n.clu, err = cluster.Start(ctx, cc); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		if c.dbSecret, err = n.clu.Secret(ctx, c.dbSecret); err != nil {
			n.clu.Shutdown(ctx)
			return nil, fmt.Errorf("node: %w", err)
		}
		opts = n.clusterOptions(opts)
		n.opts = opts
	}
	n.cfg.Store(c)
	log := n.log
	n.router = &route.Router{Logger: log, Counter: n.metrics}
	n.router.SetLocal(c.Server.Domains...)
	n.router.Local = &local{
		router:  n.router,
		version: func() bool { return n.cfg.Load().Server.Version },
		release: orStr(opts.Version, "devel"),
		log:     log,
	}
	getCert := func(domain string) (*tls.Certificate, error) { return n.cfg.Load().certificate(domain), nil }
	policy := func(remote string) s2s.Policy { return n.cfg.Load().policyFor(remote) }
	n.dialer = newDialer(c, getCert, policy, log)
	n.dialer.Observe = n.metrics.observe
	n.pool = &s2s.Pool{
		Dialer:      n.dialer,
		Bouncer:     n.router,
		QueueLimit:  c.S2S.QueueLimit,
		RetryFor:    orDur(c.S2S.RetryFor.Duration, time.Hour),
		IdleTimeout: c.S2S.IdleTimeout.Duration,
		KeepAlive:   c.S2S.KeepAlive.Duration,
		AckTimeout:  c.S2S.AckTimeout.Duration,
		Logger:      log,
		OnStream: func(_ *s2s.Conn, up bool) {
			if up {
				n.metrics.streams.WithLabelValues("out").Inc()
			} else {
				n.metrics.streams.WithLabelValues("out").Dec()
			}
		},
		OnQueue: func(delta int) { n.metrics.queue.Add(float64(delta)) },
	}
	n.comps = &component.Server{
		Secret:       func(domain string) (string, bool) { return n.cfg.Load().Secret(domain) },
		Handler:      n.router,
		Lend:         true,
		Conflict:     c.conflict,
		RateLimit:    c.Limits.Rate,
		RateBurst:    c.Limits.RateBurst,
		Limits:       c.limits(),
		WriteTimeout: c.Components.WriteTimeout.Duration,
		Logger:       log,
		OnConnect: func(domain string) {
			n.metrics.comps.Inc()
			if opts.OnComponent != nil {
				opts.OnComponent(domain, true)
			}
		},
		OnDisconnect: func(domain string) {
			n.metrics.comps.Dec()
			if opts.OnComponent != nil {
				opts.OnComponent(domain, false)
			}
		},
	}
	n.router.Remote = n.pool
	if opts.WrapRemote != nil {
		n.router.Remote = opts.WrapRemote(n.pool)
	}
	n.compHandlers = map[string]route.Handler{}
	n.setComponents(c)
	n.s2s = &s2s.Server{
		Hosted:             n.router.Hosted,
		Handler:            n.router,
		Lend:               true,
		GetCertificate:     getCert,
		Roots:              c.roots,
		Policy:             policy,
		Secret:             c.dbSecret,
		Dialer:             n.dialer,
		Limits:             c.limits(),
		IdleTimeout:        c.S2S.IdleTimeout.Duration,
		MaxConns:           c.S2S.MaxConns,
		MaxConnsPerIP:      c.S2S.MaxConnsPerIP,
		AfterWritten:       n.comps.AfterWrittenFrom,
		RateLimit:          c.Limits.Rate,
		RateBurst:          c.Limits.RateBurst,
		NegotiationTimeout: c.S2S.Negotiation.Duration,
		WriteTimeout:       c.S2S.WriteTimeout.Duration,
		Logger:             log,
		OnStream: func(_ *s2s.Conn, up bool) {
			if up {
				n.metrics.streams.WithLabelValues("in").Inc()
			} else {
				n.metrics.streams.WithLabelValues("in").Dec()
			}
		},
	}
	if err := n.metrics.watchParked(n.s2s.Parked, n.pool.Parked); err != nil {
		return nil, err
	}
	return n, nil
}

// prepare validates a copy of cfg and prepares its state, with the
// options' dialback secret.
func (o *Options) prepare(cfg *Config) (*Config, error) {
	c := cfg.clone()
	if err := c.resolve(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if o.DialbackSecret != nil {
		c.dbSecret = bytes.Clone(o.DialbackSecret)
	}
	if err := c.Prepare(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return c, nil
}

// newDialer builds the s2s.Dialer of a configuration; certificates and
// policies come from the callbacks, so that a reload changes them.
func newDialer(c *Config, getCert func(string) (*tls.Certificate, error), policy s2s.PolicyFunc, log *slog.Logger) *s2s.Dialer {
	return &s2s.Dialer{
		Resolver:           &s2s.Resolver{Servers: c.S2S.DNS, Logger: log, TrustAD: c.S2S.DANE},
		NegotiationTimeout: c.S2S.Negotiation.Duration,
		WriteTimeout:       c.S2S.WriteTimeout.Duration,
		DANE:               c.S2S.DANE,
		GetCertificate:     getCert,
		Roots:              c.roots,
		Policy:             policy,
		Secret:             c.dbSecret,
		Limits:             c.limits(),
		Logger:             log,
	}
}

// Dialer returns an s2s.Dialer that connects as a node on c would: its DNS
// servers, DANE, certificates, CA bundle, policies, dialback secret,
// limits and timeouts. s2sd diag uses it. Call Prepare first.
func (c *Config) Dialer(log *slog.Logger) *s2s.Dialer {
	return newDialer(c, func(d string) (*tls.Certificate, error) { return c.certificate(d), nil }, c.policyFor, log)
}

// certificate returns the certificate for one of our domains; a peer's SNI
// may be absent or name another of our domains.
func (c *Config) certificate(domain string) *tls.Certificate {
	if cert := c.certFor(domain); cert != nil {
		return cert
	}
	return c.certFor(c.AnyDomain())
}

// Start opens the queue store and the listeners the configuration names
// (127.0.0.1:0 picks a free port: see the address methods), serves them,
// and restores the stanzas the store kept. When Start returns, the node
// accepts connections. It fails with ErrStarted after a successful Start
// and ErrClosed after Shutdown or Close; after any other failure nothing
// is left open and Start may be called again.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateStarted:
		return ErrStarted
	case stateStopped:
		return ErrClosed
	}
	cfg := n.cfg.Load()
	// Before the queue file, whose lock would only time out: say who
	// holds it.
	if err := checkRunning(cfg); err != nil {
		return err
	}
	var store s2s.Store
	switch {
	case n.clu != nil && n.clu.Queue() != nil:
		// Replicated: the cluster's stream is the queue; no file.
		store = n.clu.Queue()
	case !cfg.Queue.Memory:
		path := cfg.Queue.Path
		if path == "" {
			path = filepath.Join(cfg.Server.StateDir, "queue.db")
		}
		st, err := boltstore.Open(path, boltstore.Options{Sync: cfg.Queue.Sync, Logger: n.log})
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		store = st
	}
	// Every listener opens before any serves, so that a failure leaves
	// nothing running. Only the s2s listener is always there (on an
	// unset s2s.listen, a free port: see S2SAddr).
	var ls []net.Listener
	listen := func(what, addr string) (net.Listener, error) {
		if addr == "" && what != "s2s" {
			return nil, nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			if st, ok := store.(*boltstore.Store); ok {
				st.Close() // the replicated queue stays for the next Start
			}
			return nil, fmt.Errorf("node: %s listener: %w", what, err)
		}
		ls = append(ls, l)
		return l, nil
	}
	s2sL, err := listen("s2s", cfg.S2S.Listen)
	if err != nil {
		return err
	}
	directL, err := listen("s2s direct TLS", cfg.S2S.DirectTLSListen)
	if err != nil {
		return err
	}
	compL, err := listen("component", cfg.Components.Listen)
	if err != nil {
		return err
	}
	metricsL, err := listen("metrics", cfg.Metrics.Listen)
	if err != nil {
		return err
	}
	n.store = store
	if store != nil {
		n.pool.Store = store
	}
	n.s2sAddr = s2sL.Addr()
	n.serve(func() error { return n.s2s.Serve(s2sL) })
	if directL != nil {
		n.directAddr = directL.Addr()
		n.serve(func() error { return n.s2s.ServeDirectTLS(directL) })
	}
	if compL != nil {
		n.compAddr = compL.Addr()
		n.serve(func() error { return n.comps.Serve(compL) })
	}
	if metricsL != nil {
		n.metricsAddr = metricsL.Addr()
		n.httpSrv = newHTTPServer(n.withStatus(n.metrics.handler(n.healthy, func() bool { return n.cfg.Load().Metrics.Pprof })))
		n.serve(func() error { return n.httpSrv.Serve(metricsL) })
	}
	n.state = stateStarted
	n.startOperator(cfg)
	if _, err := n.pool.Restore(); err != nil {
		n.log.Error("queue store: cannot restore queued stanzas", "err", err)
	}
	if n.clu != nil {
		n.clu.SetBouncer(n.router)
		if err := n.clu.Run(); err != nil {
			n.log.Error("cluster: cannot run", "err", err)
		}
	}
	n.logStarted(cfg)
	return nil
}

func (n *Node) serve(f func() error) {
	n.serveWG.Add(1)
	go func() {
		defer n.serveWG.Done()
		if err := f(); err != nil && !errors.Is(err, s2s.ErrServerClosed) && !errors.Is(err, component.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("listener failed", "err", err)
		}
	}()
}

// logStarted logs where the node listens. internal/s2sdtest reads the
// addresses from this line.
func (n *Node) logStarted(cfg *Config) {
	attrs := []any{"version", orStr(n.opts.Version, "devel"), "domains", cfg.Server.Domains, "s2s", addrString(n.s2sAddr), "state_dir", cfg.Server.StateDir}
	if n.directAddr != nil {
		attrs = append(attrs, "s2s_direct_tls", addrString(n.directAddr))
	}
	if n.compAddr != nil {
		attrs = append(attrs, "components", addrString(n.compAddr))
	}
	if n.metricsAddr != nil {
		attrs = append(attrs, "metrics", "http://"+addrString(n.metricsAddr)+"/metrics")
	}
	n.log.Info("s2sd started", attrs...)
	if len(cfg.selfSigned) > 0 {
		n.log.Warn("using self-signed certificates: peers that require valid certificates will refuse them; set [[certificate]] for production", "domains", cfg.selfSigned)
	}
}

func (n *Node) healthy() error {
	if n.clu != nil {
		return n.clu.Healthy()
	}
	return nil
}

// setComponents routes each configured component domain to the component
// server, wrapped once per domain, and drops domains no longer configured.
func (n *Node) setComponents(cfg *Config) {
	want := map[string]bool{}
	for _, c := range cfg.Component {
		want[c.Domain] = true
		h, ok := n.compHandlers[c.Domain]
		if !ok {
			h = n.comps
			if n.opts.WrapComponent != nil {
				h = n.opts.WrapComponent(c.Domain, h)
			}
			n.compHandlers[c.Domain] = h
		}
		n.router.SetComponent(c.Domain, h)
	}
	for _, dom := range n.router.Components() {
		if !want[dom] {
			n.router.SetComponent(dom, nil)
			delete(n.compHandlers, dom)
		}
	}
}

// Reload validates and prepares cfg, then makes it the running
// configuration without touching established streams. Most keys take
// effect at once or for the next stream (see ReloadApplies); listeners,
// the state directory, the queue, DNS servers, DANE and the dialback
// secret keep their values until the next start, and Reload logs which
// changed keys wait for it (Reconfigure also returns them). On error the
// running configuration stays as it was.
func (n *Node) Reload(cfg *Config) error {
	_, err := n.Reconfigure(cfg)
	return err
}

// stop marks the node stopped and reports whether it was running.
func (n *Node) stop() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	was := n.state
	n.state = stateStopped
	return was == stateStarted
}

// Shutdown stops the node gracefully. No new stanzas come in: components
// cannot connect, and remote servers cannot authenticate new streams
// (they may still verify our dialback keys, which the streams that drain
// need). Queued stanzas get until ctx ends to go out; then streams end
// with system-shutdown, given 5 more seconds to close, and what is left
// is bounced, or kept in the queue store for the next start. Shutdown
// returns once every goroutine of the node has ended; the error is the
// s2s.Pool's, which is also logged. A second call, or one before Start,
// does nothing.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.stop() {
		return nil
	}
	attrs := []any{}
	if dl, ok := ctx.Deadline(); ok {
		attrs = append(attrs, "grace", time.Until(dl).Round(time.Millisecond))
	}
	n.log.Info("shutting down", attrs...)
	if n.clu != nil {
		// Partitions, queued stanzas and components go to the other
		// nodes first: a rolling restart loses nothing.
		n.clu.Handover(ctx)
	}
	n.s2s.Drain()
	n.comps.CloseListeners()
	err := n.pool.Shutdown(ctx)
	if err != nil {
		n.log.Warn("s2s pool shutdown", "err", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	n.s2s.Shutdown(sctx)
	n.comps.Shutdown(sctx)
	if n.httpSrv != nil {
		n.httpSrv.Shutdown(sctx)
	}
	n.s2s.Close()
	n.comps.Close()
	n.stopOperator()
	n.serveWG.Wait()
	if n.store != nil {
		n.store.Close()
	}
	if n.clu != nil {
		n.clu.Shutdown(sctx)
	}
	n.log.Info("stopped")
	return err
}

// Close stops the node at once: listeners and connections close without
// waiting, outbound streams end with system-shutdown, and queued stanzas
// are bounced, or kept in the queue store. A second call, or one before
// Start, does nothing.
func (n *Node) Close() error {
	if !n.stop() {
		return nil
	}
	n.s2s.Close()
	n.comps.Close()
	if n.httpSrv != nil {
		n.httpSrv.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := n.pool.Shutdown(ctx)
	n.stopOperator()
	n.serveWG.Wait()
	if n.store != nil {
		n.store.Close()
	}
	if n.clu != nil {
		n.clu.Shutdown(context.Background())
	}
	n.log.Info("stopped")
	return err
}

// Cluster returns the node's cluster membership, or nil outside a cluster.
func (n *Node) Cluster() *cluster.Cluster { return n.clu }

// clusterOptions puts the cluster's wrappers under the caller's: stanzas
// for remote domains go to the owner of their partition, stanzas for a
// component to the node it is attached to, and the cluster learns where
// components are.
func (n *Node) clusterOptions(o Options) Options {
	c := n.clu
	wrapRemote, wrapComp, onComp := o.WrapRemote, o.WrapComponent, o.OnComponent
	o.WrapRemote = func(h route.Handler) route.Handler {
		h = c.WrapRemote(h.(cluster.Pool))
		if wrapRemote != nil {
			h = wrapRemote(h)
		}
		return h
	}
	o.WrapComponent = func(domain string, h route.Handler) route.Handler {
		h = c.WrapComponent(domain, h)
		if wrapComp != nil {
			h = wrapComp(domain, h)
		}
		return h
	}
	// The component conflict policy holds across nodes: a component that
	// connects here while attached to another node replaces it there, or
	// (refuse) is closed here.
	c.SetComponentCloser(func(domain string) {
		n.comps.CloseDomain(domain, stream.New(stream.Conflict, "replaced by a stream to another node"))
	})
	o.OnComponent = func(domain string, up bool) {
		if up {
			if !c.ComponentUp(domain, n.cfg.Load().conflict == component.Refuse) {
				go n.comps.CloseDomain(domain, stream.New(stream.Conflict, "this component is connected to another node"))
				return
			}
		} else {
			c.ComponentDown(domain)
		}
		if onComp != nil {
			onComp(domain, up)
		}
	}
	return o
}

// Config returns the running configuration, as New or the last Reload
// prepared it. It must not be modified.
func (n *Node) Config() *Config { return n.cfg.Load() }

// Logger returns the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Registry returns the registry of the node's metrics.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

// Router returns the node's Router: stanzas from remote servers and
// components enter it, and code built around the node delivers through it
// what it brings from elsewhere.
func (n *Node) Router() *route.Router { return n.router }

// Pool returns the outbound s2s pool (unwrapped).
func (n *Node) Pool() *s2s.Pool { return n.pool }

// S2SServer returns the inbound s2s server.
func (n *Node) S2SServer() *s2s.Server { return n.s2s }

// ComponentServer returns the server of external components (unwrapped).
func (n *Node) ComponentServer() *component.Server { return n.comps }

// Dialer returns the dialer of outbound streams and dialback checks.
func (n *Node) Dialer() *s2s.Dialer { return n.dialer }

func (n *Node) addr(a *net.Addr) net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return *a
}

// S2SAddr returns the address of the s2s listener, nil before Start.
func (n *Node) S2SAddr() net.Addr { return n.addr(&n.s2sAddr) }

// DirectTLSAddr returns the address of the direct TLS s2s listener
// (XEP-0368), nil before Start or without s2s.direct_tls_listen.
func (n *Node) DirectTLSAddr() net.Addr { return n.addr(&n.directAddr) }

// ComponentAddr returns the address of the component listener, nil before
// Start or without components.listen.
func (n *Node) ComponentAddr() net.Addr { return n.addr(&n.compAddr) }

// MetricsAddr returns the address of the metrics listener, nil before
// Start or without metrics.listen.
func (n *Node) MetricsAddr() net.Addr { return n.addr(&n.metricsAddr) }

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

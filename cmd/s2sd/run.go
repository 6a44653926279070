package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
)

// daemon is a running s2sd.
type daemon struct {
	cfg     atomic.Pointer[Config]
	log     *slog.Logger
	level   *slog.LevelVar
	metrics *metrics
	router  *route.Router
	dialer  *s2s.Dialer
	pool    *s2s.Pool
	s2s     *s2s.Server
	comps   *component.Server
	httpSrv *http.Server
	store   *s2s.BoltStore

	// Listeners, for tests and the first log lines.
	s2sAddr, directAddr, compAddr, metricsAddr net.Addr

	mu      sync.Mutex
	outUp   int
	serveWG sync.WaitGroup
}

func newLogger(c *Config, level *slog.LevelVar) *slog.Logger {
	level.Set(c.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.Server.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// start builds the daemon from cfg and starts its listeners.
func start(cfg *Config, log *slog.Logger, level *slog.LevelVar) (*daemon, error) {
	if err := cfg.prepareState(); err != nil {
		return nil, err
	}
	d := &daemon{log: log, level: level, metrics: newMetrics()}
	d.cfg.Store(cfg)
	d.router = &route.Router{Logger: log, Counter: d.metrics}
	d.router.SetLocal(cfg.Server.Domains...)
	d.router.Local = &local{router: d.router, version: func() bool { return d.cfg.Load().Server.Version }, log: log}

	getCert := func(domain string) (*tls.Certificate, error) {
		c := d.cfg.Load()
		if cert := c.certFor(domain); cert != nil {
			return cert, nil
		}
		// SNI may be absent or name another of our domains.
		return c.certFor(c.anyDomain()), nil
	}
	policy := func(remote string) s2s.Policy { return d.cfg.Load().policyFor(remote) }
	d.dialer = &s2s.Dialer{
		Resolver:           &s2s.Resolver{Servers: cfg.S2S.DNS, Logger: log, TrustAD: cfg.S2S.DANE},
		NegotiationTimeout: cfg.S2S.Negotiation.Duration,
		WriteTimeout:       cfg.S2S.WriteTimeout.Duration,
		DANE:               cfg.S2S.DANE,
		GetCertificate:     getCert,
		Roots:              cfg.roots,
		Policy:             policy,
		Secret:             cfg.dbSecret,
		Limits:             cfg.limits(),
		Logger:             log,
		Observe:            d.metrics.observe,
	}
	if !cfg.Queue.Memory {
		path := cfg.Queue.Path
		if path == "" {
			path = filepath.Join(cfg.Server.StateDir, "queue.db")
		}
		st, err := s2s.OpenBoltStore(path, s2s.BoltOptions{Sync: cfg.Queue.Sync, Logger: log})
		if err != nil {
			return nil, err
		}
		d.store = st
	}
	d.pool = &s2s.Pool{
		Dialer:      d.dialer,
		Bouncer:     d.router,
		QueueLimit:  cfg.S2S.QueueLimit,
		RetryFor:    orDur(cfg.S2S.RetryFor.Duration, time.Hour),
		IdleTimeout: cfg.S2S.IdleTimeout.Duration,
		KeepAlive:   cfg.S2S.KeepAlive.Duration,
		AckTimeout:  cfg.S2S.AckTimeout.Duration,
		Logger:      log,
		OnStream: func(c *s2s.Conn, up bool) {
			if up {
				d.metrics.streams.WithLabelValues("out").Inc()
			} else {
				d.metrics.streams.WithLabelValues("out").Dec()
			}
		},
		OnQueue: func(delta int) { d.metrics.queue.Add(float64(delta)) },
	}
	if d.store != nil {
		d.pool.Store = d.store
	}
	d.router.Remote = d.pool
	d.comps = &component.Server{
		Secret: func(domain string) (string, bool) {
			s, ok := d.cfg.Load().secrets[domain]
			return s, ok
		},
		Handler:   d.router,
		Conflict:  cfg.conflict,
		RateLimit: cfg.Limits.Rate,
		RateBurst: cfg.Limits.RateBurst,
		Limits:    cfg.limits(),
		Logger:    log,
		OnConnect: func(domain string) {
			d.metrics.comps.Inc()
		},
		OnDisconnect: func(domain string) {
			d.metrics.comps.Dec()
		},
	}
	d.setComponents(cfg)
	d.s2s = &s2s.Server{
		Hosted:             d.router.Hosted,
		Handler:            d.router,
		GetCertificate:     getCert,
		Roots:              cfg.roots,
		Policy:             policy,
		Secret:             cfg.dbSecret,
		Dialer:             d.dialer,
		Limits:             cfg.limits(),
		IdleTimeout:        cfg.S2S.IdleTimeout.Duration,
		MaxConns:           cfg.S2S.MaxConns,
		MaxConnsPerIP:      cfg.S2S.MaxConnsPerIP,
		Flush:              d.comps.Flush,
		RateLimit:          cfg.Limits.Rate,
		RateBurst:          cfg.Limits.RateBurst,
		NegotiationTimeout: cfg.S2S.Negotiation.Duration,
		WriteTimeout:       cfg.S2S.WriteTimeout.Duration,
		Logger:             log,
		OnStream: func(c *s2s.Conn, up bool) {
			if up {
				d.metrics.streams.WithLabelValues("in").Inc()
			} else {
				d.metrics.streams.WithLabelValues("in").Dec()
			}
		},
	}
	var ls []net.Listener
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			if d.store != nil {
				d.store.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
		return l, nil
	}
	l, err := listen(cfg.S2S.Listen)
	if err != nil {
		return nil, fmt.Errorf("s2s listener: %w", err)
	}
	d.s2sAddr = l.Addr()
	d.serve(func() error { return d.s2s.Serve(l) })
	if cfg.S2S.DirectTLSListen != "" {
		l, err := listen(cfg.S2S.DirectTLSListen)
		if err != nil {
			return nil, fmt.Errorf("s2s direct TLS listener: %w", err)
		}
		d.directAddr = l.Addr()
		d.serve(func() error { return d.s2s.ServeDirectTLS(l) })
	}
	if cfg.Components.Listen != "" {
		l, err := listen(cfg.Components.Listen)
		if err != nil {
			return nil, fmt.Errorf("component listener: %w", err)
		}
		d.compAddr = l.Addr()
		d.serve(func() error { return d.comps.Serve(l) })
	}
	if cfg.Metrics.Listen != "" {
		l, err := listen(cfg.Metrics.Listen)
		if err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		d.metricsAddr = l.Addr()
		d.httpSrv = &http.Server{Handler: d.metrics.handler(d.healthy, cfg.Metrics.Pprof), ReadHeaderTimeout: 5 * time.Second}
		d.serve(func() error { return d.httpSrv.Serve(l) })
	}
	if _, err := d.pool.Restore(); err != nil {
		log.Error("queue store: cannot restore queued stanzas", "err", err)
	}
	return d, nil
}

func (d *daemon) serve(f func() error) {
	d.serveWG.Add(1)
	go func() {
		defer d.serveWG.Done()
		if err := f(); err != nil && !errors.Is(err, s2s.ErrServerClosed) && !errors.Is(err, component.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("listener failed", "err", err)
		}
	}()
}

func (d *daemon) healthy() error { return nil }

// setComponents routes each configured component domain to the component
// server, and drops domains no longer configured.
func (d *daemon) setComponents(cfg *Config) {
	want := map[string]bool{}
	for _, c := range cfg.Component {
		want[c.Domain] = true
		d.router.SetComponent(c.Domain, d.comps)
	}
	for _, dom := range d.router.Components() {
		if !want[dom] {
			d.router.SetComponent(dom, nil)
		}
	}
}

// reload re-reads the config file. Certificates, component secrets,
// policies, local domains and the log level change without touching
// established streams; listeners and the DNS servers need a restart. A bad
// file keeps the running config.
func (d *daemon) reload() {
	old := d.cfg.Load()
	cfg, err := loadConfig(old.path)
	if err == nil {
		err = cfg.prepareState()
	}
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if cfg.S2S.Listen != old.S2S.Listen || cfg.Components.Listen != old.Components.Listen || cfg.Metrics.Listen != old.Metrics.Listen || cfg.S2S.DirectTLSListen != old.S2S.DirectTLSListen {
		d.log.Warn("listener addresses changed; they take effect at the next restart")
	}
	if cfg.S2S.DANE != old.S2S.DANE || !slices.Equal(cfg.S2S.DNS, old.S2S.DNS) {
		d.log.Warn("s2s.dns and s2s.dane changed; they take effect at the next restart")
	}
	d.cfg.Store(cfg)
	d.level.Set(cfg.logLevel)
	d.router.SetLocal(cfg.Server.Domains...)
	d.setComponents(cfg)
	d.log.Info("configuration reloaded", "domains", cfg.Server.Domains, "components", len(cfg.Component))
}

// shutdown stops the daemon: listeners close, queued stanzas get grace to
// go out, streams end with system-shutdown, what is left bounces.
func (d *daemon) shutdown(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	d.log.Info("shutting down", "grace", grace)
	// No new stanzas in: components cannot connect, remote servers cannot
	// authenticate (but may still verify our dialback keys, which the
	// streams that drain need).
	d.s2s.Drain()
	d.comps.CloseListeners()
	if err := d.pool.Shutdown(ctx); err != nil {
		d.log.Warn("s2s pool shutdown", "err", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	d.s2s.Shutdown(sctx)
	d.comps.Shutdown(sctx)
	if d.httpSrv != nil {
		d.httpSrv.Shutdown(sctx)
	}
	d.s2s.Close()
	d.comps.Close()
	d.serveWG.Wait()
	if d.store != nil {
		d.store.Close()
	}
	d.log.Info("stopped")
}

// run serves until SIGTERM or SIGINT; SIGHUP reloads.
func run(cfg *Config) error {
	if os.Getenv("GOGC") == "" && cfg.Server.GCPercent > 0 {
		debug.SetGCPercent(cfg.Server.GCPercent)
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg, level)
	d, err := start(cfg, log, level)
	if err != nil {
		return err
	}
	d.greet()
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s == syscall.SIGHUP {
			d.reload()
			continue
		}
		break
	}
	signal.Stop(sig)
	d.shutdown(orDur(cfg.Shutdown.Grace.Duration, 10*time.Second))
	return nil
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// greet logs where s2sd listens and, on the embedded default, how to attach
// a component and how to go to production.
func (d *daemon) greet() {
	cfg := d.cfg.Load()
	attrs := []any{"version", version, "domains", cfg.Server.Domains, "s2s", addrString(d.s2sAddr), "state_dir", cfg.Server.StateDir}
	if d.directAddr != nil {
		attrs = append(attrs, "s2s_direct_tls", addrString(d.directAddr))
	}
	if d.compAddr != nil {
		attrs = append(attrs, "components", addrString(d.compAddr))
	}
	if d.metricsAddr != nil {
		attrs = append(attrs, "metrics", "http://"+addrString(d.metricsAddr)+"/metrics")
	}
	d.log.Info("s2sd started", attrs...)
	if len(cfg.selfSigned) > 0 {
		d.log.Warn("using self-signed certificates: peers that require valid certificates will refuse them; set [[certificate]] for production", "domains", cfg.selfSigned)
	}
	if cfg.isDefault {
		for _, c := range cfg.Component {
			// The embedded default prints its generated component secret
			// once, on purpose: it is the laptop setup's only credential.
			fmt.Fprintf(os.Stderr, "\nAttach a component (XEP-0114): connect to %s as %s with secret %s\n",
				addrString(d.compAddr), c.Domain, cfg.secrets[c.Domain])
			fmt.Fprintf(os.Stderr, "  e.g. in Go: component.Dial(ctx, %q, %q, SECRET)\n", addrString(d.compAddr), c.Domain)
		}
		fmt.Fprintf(os.Stderr, "To go to production: copy s2sd.example.toml, set your domains, certificates and public listeners, check it with `s2sd -t -config FILE`, and run `s2sd -config FILE`.\n\n")
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

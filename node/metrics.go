package node

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// metrics are a node's Prometheus metrics, on the node's registry.
type metrics struct {
	reg      *prometheus.Registry
	streams  *prometheus.GaugeVec
	routed   *prometheus.CounterVec
	bounces  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	queue    prometheus.Gauge
	dialTime *prometheus.HistogramVec
	comps    prometheus.Gauge

	// The counters Routed, Bounced and Dropped add to, resolved from
	// their vectors on first use and kept, so that counting a stanza is
	// an index or a map read and an atomic add, not a hash of its label
	// values and a lookup under the vector's lock. A child is made on
	// first use, as WithLabelValues would: /metrics shows the same series
	// as without the cache (none with a 0 that never counted).
	routedBy  [len(routedKinds)][nOrigins][nOrigins]atomic.Pointer[prometheus.Counter]
	bouncesBy labelCache[stanza.Condition]
	droppedBy labelCache[string]
}

// routedKinds are the stanza kinds whose routed counters are cached, in
// the order of metrics.routedBy; any other kind goes through the vector.
var routedKinds = [...]string{"message", "presence", "iq"}

// nOrigins is the number of route.Origin values (local, component,
// remote), which index metrics.routedBy.
const nOrigins = int(route.FromRemote) + 1

func kindIndex(kind string) int {
	switch kind {
	case "message":
		return 0
	case "presence":
		return 1
	case "iq":
		return 2
	}
	return -1
}

// newMetrics registers a node's metrics on reg; a nil reg means a new
// registry with the Go runtime and process collectors.
func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	own := reg == nil
	if own {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "s2sd_streams", Help: "Authenticated server-to-server streams, by direction.",
		}, []string{"dir"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s2sd_stanzas_routed_total", Help: "Stanzas routed, by kind, origin and destination.",
		}, []string{"kind", "from", "to"}),
		bounces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s2sd_bounces_total", Help: "Stanzas returned to their sender, by stanza error condition.",
		}, []string{"condition"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s2sd_dropped_total", Help: "Stanzas neither delivered nor bounced (errors are never answered with errors), by reason.",
		}, []string{"reason"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "s2sd_queue_depth", Help: "Stanzas waiting for an outbound stream.",
		}),
		dialTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "s2sd_dial_seconds", Help: "Time to resolve (dns) and to connect and negotiate (connect) outbound streams.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"phase"}),
		comps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "s2sd_components", Help: "Connected external components.",
		}),
	}
	cs := []prometheus.Collector{m.streams, m.routed, m.bounces, m.dropped, m.queue, m.dialTime, m.comps}
	if own {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
	}
	m.bouncesBy.vec, m.droppedBy.vec = m.bounces, m.dropped
	return m, nil
}

// watchParked registers s2sd_streams_parked, read from in and out when
// scraped.
func (m *metrics) watchParked(in, out func() int) error {
	for dir, f := range map[string]func() int{"in": in, "out": out} {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "s2sd_streams_parked",
			Help:        "Server-to-server streams parked, by direction: quiet, without a read buffer or (on Linux) a goroutine of their own.",
			ConstLabels: prometheus.Labels{"dir": dir},
		}, func() float64 { return float64(f()) })
		if err := m.reg.Register(g); err != nil {
			return fmt.Errorf("node: metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) Routed(kind string, from, to route.Origin) {
	k := kindIndex(kind)
	if k < 0 || int(from) >= nOrigins || int(to) >= nOrigins {
		m.routed.WithLabelValues(kind, from.String(), to.String()).Inc()
		return
	}
	p := &m.routedBy[k][from][to]
	c := p.Load()
	if c == nil {
		// Two first uses at once resolve the same child: either store
		// is right.
		cc := m.routed.WithLabelValues(kind, from.String(), to.String())
		c = &cc
		p.Store(c)
	}
	(*c).Inc()
}

func (m *metrics) Bounced(c stanza.Condition) { m.bouncesBy.get(c).Inc() }

func (m *metrics) Dropped(reason string) { m.droppedBy.get(reason).Inc() }

// labelCacheMax bounds a labelCache; label values beyond it are counted
// through the vector each time. Conditions (RFC 6120 §8.3.3, 22 of them)
// and drop reasons are fixed sets well below it.
const labelCacheMax = 64

// labelCache is the counters of a one-label vector, by label value. Reads
// load an immutable map through an atomic pointer (no lock, no write to a
// shared cache line); a value seen for the first time is added to a copy
// under mu.
type labelCache[K ~string] struct {
	vec *prometheus.CounterVec
	m   atomic.Pointer[map[K]prometheus.Counter]
	mu  sync.Mutex
}

func (l *labelCache[K]) get(v K) prometheus.Counter {
	if p := l.m.Load(); p != nil {
		if c, ok := (*p)[v]; ok {
			return c
		}
	}
	c := l.vec.WithLabelValues(string(v))
	l.mu.Lock()
	defer l.mu.Unlock()
	var old map[K]prometheus.Counter
	if p := l.m.Load(); p != nil {
		old = *p
	}
	if _, ok := old[v]; ok || len(old) >= labelCacheMax {
		return c
	}
	next := make(map[K]prometheus.Counter, len(old)+1)
	for k, x := range old {
		next[k] = x
	}
	next[v] = c
	l.m.Store(&next)
	return c
}

func (m *metrics) observe(phase string, d time.Duration) {
	m.dialTime.WithLabelValues(phase).Observe(d.Seconds())
}

// handler serves /metrics and /healthz, and /debug/pprof/ while
// profiling says so (metrics.pprof, which a reload changes).
func (m *metrics) handler(healthy func() error, profiling func() bool) http.Handler {
	mux := http.NewServeMux()
	pp := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !profiling() {
				http.NotFound(w, r)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/debug/pprof/", pp(pprof.Index))
	mux.HandleFunc("/debug/pprof/profile", pp(pprof.Profile))
	mux.HandleFunc("/debug/pprof/symbol", pp(pprof.Symbol))
	mux.HandleFunc("/debug/pprof/trace", pp(pprof.Trace))
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// The metrics listener's bounds on each connection: a client that sends
// its request slowly, reads the answer slowly, or keeps an idle
// connection open is closed. The write bound leaves room for a CPU
// profile (/debug/pprof/profile?seconds=N, which net/http/pprof refuses
// for N past it). Variables for tests.
var (
	httpReadTimeout  = 10 * time.Second
	httpWriteTimeout = 2 * time.Minute
	httpIdleTimeout  = time.Minute
)

// newHTTPServer returns the metrics listener's server of h.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(5*time.Second, httpReadTimeout),
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
	}
}

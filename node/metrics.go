package node

import (
	"fmt"
	"net/http"
	"net/http/pprof"
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
	return m, nil
}

func (m *metrics) Routed(kind string, from, to route.Origin) {
	m.routed.WithLabelValues(kind, from.String(), to.String()).Inc()
}

func (m *metrics) Bounced(c stanza.Condition) { m.bounces.WithLabelValues(string(c)).Inc() }

func (m *metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

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

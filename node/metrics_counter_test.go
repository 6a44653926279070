package node

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// series returns the s2sd_ counters in reg as "name{label=value,...}" →
// value, as /metrics would show them.
func series(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "s2sd_") || mf.GetType().String() != "COUNTER" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestMetricsCount: Routed, Bounced and Dropped count under the same
// names, labels and values as the vectors did, and /metrics shows only
// the series that counted (the cache makes no series of its own).
func TestMetricsCount(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if got := series(t, m.reg); len(got) != 0 {
		t.Fatalf("before any stanza: %v", got)
	}
	for i := 0; i < 3; i++ {
		m.Routed("message", route.FromComponent, route.FromRemote)
	}
	m.Routed("message", route.FromRemote, route.FromComponent)
	m.Routed("presence", route.FromLocal, route.FromRemote)
	m.Routed("presence", route.FromLocal, route.FromRemote)
	m.Routed("iq", route.FromRemote, route.FromLocal)
	m.Routed("other", route.FromRemote, route.FromLocal) // not cached: through the vector
	m.Routed("iq", route.Origin(7), route.FromComponent) // an unknown origin reads "local"
	m.Routed("iq", route.FromLocal, route.FromComponent) // the same series as the line above
	m.Bounced(stanza.ServiceUnavailable)
	m.Bounced(stanza.ServiceUnavailable)
	m.Bounced(stanza.RemoteServerNotFound)
	m.Dropped("error-not-bounced")
	for i := 0; i < labelCacheMax+5; i++ { // past the cache's bound
		m.Dropped(fmt.Sprintf("r%d", i%(labelCacheMax+2)))
	}
	want := map[string]float64{
		"s2sd_stanzas_routed_total{from=component,kind=message,to=remote}": 3,
		"s2sd_stanzas_routed_total{from=remote,kind=message,to=component}": 1,
		"s2sd_stanzas_routed_total{from=local,kind=presence,to=remote}":    2,
		"s2sd_stanzas_routed_total{from=remote,kind=iq,to=local}":          1,
		"s2sd_stanzas_routed_total{from=remote,kind=other,to=local}":       1,
		"s2sd_stanzas_routed_total{from=local,kind=iq,to=component}":       2,
		"s2sd_bounces_total{condition=service-unavailable}":                2,
		"s2sd_bounces_total{condition=remote-server-not-found}":            1,
		"s2sd_dropped_total{reason=error-not-bounced}":                     1,
	}
	for i := 0; i < labelCacheMax+2; i++ {
		n := 1.0
		if i < 3 {
			n = 2
		}
		want[fmt.Sprintf("s2sd_dropped_total{reason=r%d}", i)] = n
	}
	got := series(t, m.reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s = %v", k, v)
		}
	}
}

// TestMetricsCountConcurrent: first uses at once, from many goroutines,
// lose no count (run with -race).
func TestMetricsCountConcurrent(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const g, n = 8, 1000
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				m.Routed(routedKinds[j%3], route.Origin(j%nOrigins), route.FromRemote)
				m.Bounced(stanza.Condition(fmt.Sprint("c", j%4)))
				m.Dropped("x")
			}
		}()
	}
	wg.Wait()
	var routed, bounced, dropped float64
	for k, v := range series(t, m.reg) {
		switch {
		case strings.HasPrefix(k, "s2sd_stanzas_routed_total{"):
			routed += v
		case strings.HasPrefix(k, "s2sd_bounces_total{"):
			bounced += v
		case strings.HasPrefix(k, "s2sd_dropped_total{"):
			dropped += v
		}
	}
	if routed != g*n || bounced != g*n || dropped != g*n {
		t.Errorf("routed %v, bounced %v, dropped %v; want %d each", routed, bounced, dropped, g*n)
	}
}

// benchRoutes are the (kind, origin, destination) a relay counts.
var benchRoutes = [...]struct {
	kind     string
	from, to route.Origin
}{
	{"message", route.FromComponent, route.FromRemote},
	{"message", route.FromRemote, route.FromComponent},
	{"presence", route.FromComponent, route.FromRemote},
	{"iq", route.FromRemote, route.FromLocal},
}

// BenchmarkRouted is the counting of one routed stanza (the per-stanza
// cost in route.Router.Route).
func BenchmarkRouted(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &benchRoutes[i%len(benchRoutes)]
		m.Routed(r.kind, r.from, r.to)
	}
}

// BenchmarkRoutedParallel: the same from every P, as a daemon's readers
// count at once.
func BenchmarkRoutedParallel(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			r := &benchRoutes[i%len(benchRoutes)]
			m.Routed(r.kind, r.from, r.to)
		}
	})
}

// BenchmarkBounced is the counting of one bounce.
func BenchmarkBounced(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	conds := []stanza.Condition{stanza.ServiceUnavailable, stanza.RemoteServerNotFound, stanza.RemoteServerTimeout}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Bounced(conds[i%len(conds)])
	}
}

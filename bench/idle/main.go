// Command idle measures what an idle stream costs a running s2sd: it opens M
// streams to it, and reports the growth of its resident memory (VmRSS from
// /proc/PID/status) per stream, and, when s2sd's metrics listener is given,
// the growth of its Go heap and goroutines.
//
// Usage:
//
//	idle s2s  -pid PID -target a.test -listen 127.0.0.1:PORT -dns 127.0.0.1:PORT -m 1000
//	idle comp -pid PID -addr 127.0.0.1:PORT -domain c%d.a.test -secret S -m 1000
//	idle out  -pid PID -addr 127.0.0.1:PORT -domain c1.a.test -secret S -listen 127.0.0.1:PORT -dns 127.0.0.1:PORT -m 1000
//
// In s2s mode, idle is M remote servers at once: one s2s.Server and one
// s2s.Dialer in this process host d1.test … dM.test (-prefix, -suffix),
// which the zone served to s2sd points at -listen. For each domain idle
// dials target as dN.test: STARTTLS, then Server Dialback, for which s2sd
// connects back to idle's server (found through the same DNS) to verify
// the key. Each dial leaves s2sd with one authenticated inbound stream and
// nothing else (the verification stream closes), which is what a federated
// server holds for each idle peer that has written to it. No stanza is
// needed.
//
// In comp mode, idle connects M components (XEP-0114) named by -domain
// (a format with one %d, from 1 to M); s2sd's configuration must list them.
//
// In out mode, idle hosts d1.test … dM.test as in s2s mode and connects
// one component (-domain, no %d) to s2sd, which sends a message to
// someone at each remote domain in turn; a stream counts as open once its
// message has arrived. s2sd then holds M authenticated outbound streams,
// and the state it keeps for each remote domain it has written to.
//
// The streams are held for -hold, then closed.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
)

// Result is printed as one JSON line.
type Result struct {
	Mode       string  `json:"mode"`
	Wanted     int     `json:"wanted"`
	Opened     int     `json:"opened"`
	Failed     int     `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"open_seconds"`
	// Warm streams are opened first, before RSSBefore: what only the
	// first streams cost (code run for the first time, caches filled) is
	// not counted per stream. RSSStart is before them, KiBPerFromStart
	// the growth from there over every stream.
	Warm            int     `json:"warm"`
	RSSStart        int     `json:"rss_start_kib"`
	KiBPerFromStart float64 `json:"rss_kib_per_stream_from_start"`
	RSSBefore       int     `json:"rss_before_kib"`
	RSSAfter        int     `json:"rss_after_kib"`
	KiBPer          float64 `json:"rss_kib_per_stream"`
	HeapBefore      float64 `json:"heap_inuse_before_kib,omitempty"`
	HeapAfter       float64 `json:"heap_inuse_after_kib,omitempty"`
	HeapKiBPer      float64 `json:"heap_kib_per_stream,omitempty"`
	GoroutinesPer   float64 `json:"goroutines_per_stream,omitempty"`
	// Parked is s2sd_streams_parked in the direction measured (inbound
	// for s2s, outbound for out) once all the streams are open, the warm
	// ones included: idle streams that wait with no read buffer and, on
	// Linux, no goroutine.
	Parked int `json:"parked_streams,omitempty"`
	// Where the resident memory is, per stream: goroutine stacks, and heap
	// the runtime holds free but has not returned to the system yet.
	StackKiBPer    float64 `json:"stack_kib_per_stream,omitempty"`
	HeapFreeKiBPer float64 `json:"heap_free_kib_per_stream,omitempty"`
	// After one garbage collection (what the runtime does by itself
	// within two minutes on an idle daemon) and the settle time, in which
	// the runtime returns freed pages: what the streams keep.
	RSSCollected    int     `json:"rss_collected_kib,omitempty"`
	KiBPerCollected float64 `json:"rss_collected_kib_per_stream,omitempty"`
	HeapLiveKiBPer  float64 `json:"heap_live_kib_per_stream,omitempty"`
	HeapObjKiBPer   float64 `json:"heap_objects_kib_per_stream,omitempty"`
}

type common struct {
	pid      int
	m        int
	warm     int
	parallel int
	settle   time.Duration
	hold     time.Duration
	metrics  string
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "s2s" && os.Args[1] != "comp" && os.Args[1] != "out") {
		fmt.Fprintln(os.Stderr, "usage: idle s2s|comp|out [flags] (idle s2s -h)")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet("idle "+mode, flag.ExitOnError)
	var c common
	fs.IntVar(&c.pid, "pid", 0, "`pid` of the s2sd to measure")
	fs.IntVar(&c.m, "m", 1000, "streams to open")
	fs.IntVar(&c.warm, "warm", -1, "streams opened before the first measurement (-1: m/10), which the per-stream figures leave out")
	fs.IntVar(&c.parallel, "parallel", 16, "streams opened at a time")
	fs.StringVar(&heapProfile, "heapprofile", "", "save s2sd's heap profile, taken after the collection with the streams open, to `FILE`")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait before each measurement")
	fs.DurationVar(&c.hold, "hold", 0, "keep the streams open this long after measuring")
	fs.StringVar(&c.metrics, "metrics", "", "s2sd's metrics `URL` (http://127.0.0.1:PORT/metrics), for heap and goroutines")
	var (
		target = fs.String("target", "a.test", "s2s: the s2sd's `domain`")
		listen = fs.String("listen", "127.0.0.1:5270", "s2s, out: `address` of the server that hosts the remote domains")
		dnsSrv = fs.String("dns", "127.0.0.1:15353", "s2s, out: `nameserver` that resolves the remote domains and target")
		prefix = fs.String("prefix", "d", "s2s, out: remote domains are PREFIX1SUFFIX … PREFIXmSUFFIX")
		suffix = fs.String("suffix", ".test", "s2s, out: see -prefix")
		addr   = fs.String("addr", "127.0.0.1:5347", "comp, out: s2sd's component `address`")
		domain = fs.String("domain", "c%d.a.test", "comp: component domain `format`, %d from 1 to m; out: the one component's domain")
		secret = fs.String("secret", "secret", "comp, out: component `secret`")
	)
	fs.Parse(os.Args[2:])
	if c.warm < 0 {
		c.warm = c.m / 10
	}
	if c.pid == 0 {
		fmt.Fprintln(os.Stderr, "idle: -pid is required")
		os.Exit(2)
	}

	var (
		open func(ctx context.Context, i int) (io.Closer, error)
		stop func()
	)
	switch mode {
	case "s2s":
		r, err := newRemotes(*listen, *dnsSrv, *prefix, *suffix, c.m)
		if err != nil {
			fmt.Fprintln(os.Stderr, "idle:", err)
			os.Exit(1)
		}
		stop = r.close
		open = func(ctx context.Context, i int) (io.Closer, error) {
			return r.dialer.DialContext(ctx, r.domain(i), *target)
		}
	case "comp":
		stop = func() {}
		open = func(ctx context.Context, i int) (io.Closer, error) {
			return component.Dial(ctx, *addr, fmt.Sprintf(*domain, i), *secret)
		}
	case "out":
		r, err := newRemotes(*listen, *dnsSrv, *prefix, *suffix, c.m)
		if err == nil {
			err = r.sendFrom(*addr, *domain, *secret)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "idle:", err)
			os.Exit(1)
		}
		stop = r.close
		open = r.openOut
	}
	res, conns := measure(c, mode, open)
	fmt.Fprintf(os.Stderr, "idle %s: %d of %d streams in %.1fs; s2sd VmRSS %d KiB at start, %d with %d streams open, %d with all: %.1f KiB per stream after the first %d (%.1f from the start)",
		mode, res.Opened, res.Wanted, res.Seconds, res.RSSStart, res.RSSBefore, res.Warm, res.RSSAfter, res.KiBPer, res.Warm, res.KiBPerFromStart)
	if res.HeapKiBPer != 0 {
		fmt.Fprintf(os.Stderr, "; Go heap in use %.0f -> %.0f KiB = %.1f KiB per stream; %.1f goroutines per stream; stacks %.1f KiB and free heap not yet returned %.1f KiB per stream",
			res.HeapBefore, res.HeapAfter, res.HeapKiBPer, res.GoroutinesPer, res.StackKiBPer, res.HeapFreeKiBPer)
	}
	if res.Parked != 0 {
		fmt.Fprintf(os.Stderr, "; %d parked", res.Parked)
	}
	if res.RSSCollected != 0 {
		fmt.Fprintf(os.Stderr, "; after a collection: VmRSS %d KiB = %.1f KiB per stream, Go heap in use %.1f KiB per stream (objects %.1f KiB)",
			res.RSSCollected, res.KiBPerCollected, res.HeapLiveKiBPer, res.HeapObjKiBPer)
	}
	if res.Failed > 0 {
		fmt.Fprintf(os.Stderr, "; %d failed (first: %s)", res.Failed, res.FirstError)
	}
	fmt.Fprintln(os.Stderr)
	j, _ := json.Marshal(res)
	fmt.Println(string(j))
	if c.hold > 0 {
		time.Sleep(c.hold)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, cl := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			cl.Close()
			<-sem
		}()
	}
	wg.Wait()
	stop()
	if res.Opened == 0 {
		os.Exit(1)
	}
}

// measure opens c.m streams with open, c.parallel at a time, and measures
// s2sd before and after.
func measure(c common, mode string, open func(context.Context, int) (io.Closer, error)) (Result, []io.Closer) {
	res := Result{Mode: mode, Wanted: c.m}
	var (
		mu     sync.Mutex
		conns  []io.Closer
		failed atomic.Int64
		first  atomic.Pointer[string]
		next   atomic.Int64
	)
	// openTo opens streams up to number last, c.parallel at a time.
	openTo := func(last int) {
		var wg sync.WaitGroup
		for range c.parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1))
					if i > last {
						next.Add(-1)
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					cl, err := open(ctx, i)
					cancel()
					if err != nil {
						failed.Add(1)
						s := err.Error()
						first.CompareAndSwap(nil, &s)
						continue
					}
					mu.Lock()
					conns = append(conns, cl)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	time.Sleep(c.settle)
	res.RSSStart = rss(c.pid)
	if c.warm > 0 {
		openTo(c.warm)
		time.Sleep(c.settle)
	}
	res.Warm = len(conns)
	res.RSSBefore = rss(c.pid)
	m0 := scrape(c.metrics)
	heap0, gor0 := m0["go_memstats_heap_inuse_bytes"], m0["go_goroutines"]
	res.HeapBefore = heap0 / 1024

	start := time.Now()
	openTo(c.m)
	res.Seconds = time.Since(start).Seconds()
	res.Opened, res.Failed = len(conns), int(failed.Load())
	if p := first.Load(); p != nil {
		res.FirstError = *p
	}

	time.Sleep(c.settle)
	res.RSSAfter = rss(c.pid)
	m1 := scrape(c.metrics)
	heap1, gor1 := m1["go_memstats_heap_inuse_bytes"], m1["go_goroutines"]
	switch mode {
	case "s2s":
		res.Parked = int(m1[`s2sd_streams_parked{dir="in"}`])
	case "out":
		res.Parked = int(m1[`s2sd_streams_parked{dir="out"}`])
	}
	if n := res.Opened - res.Warm; n > 0 {
		res.KiBPerFromStart = float64(res.RSSAfter-res.RSSStart) / float64(res.Opened)
		res.KiBPer = float64(res.RSSAfter-res.RSSBefore) / float64(n)
		if heap1 > 0 {
			res.HeapAfter = heap1 / 1024
			res.GoroutinesPer = (gor1 - gor0) / float64(n)
			// per: KiB per stream of a gauge, from before the streams
			// to the scrape m.
			per := func(m map[string]float64, name string) float64 {
				return (m[name] - m0[name]) / 1024 / float64(n)
			}
			res.HeapKiBPer = per(m1, "go_memstats_heap_inuse_bytes")
			res.StackKiBPer = per(m1, "go_memstats_stack_inuse_bytes")
			free := func(m map[string]float64) float64 {
				return m["go_memstats_heap_idle_bytes"] - m["go_memstats_heap_released_bytes"]
			}
			res.HeapFreeKiBPer = (free(m1) - free(m0)) / 1024 / float64(n)
			if collect(c.metrics) {
				time.Sleep(c.settle)
				res.RSSCollected = rss(c.pid)
				res.KiBPerCollected = float64(res.RSSCollected-res.RSSBefore) / float64(n)
				m2 := scrape(c.metrics)
				res.HeapLiveKiBPer = per(m2, "go_memstats_heap_inuse_bytes")
				res.HeapObjKiBPer = per(m2, "go_memstats_heap_alloc_bytes")
			}
		}
	}
	return res, conns
}

// rss returns VmRSS of pid in KiB, or -1.
func rss(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}

// heapProfile is where collect saves s2sd's heap profile, taken while the
// streams are open (-heapprofile).
var heapProfile string

// collect makes s2sd run a garbage collection, through its profiling
// endpoint beside the metrics (metrics.pprof): the heap profile with gc=1.
func collect(metrics string) bool {
	u, ok := strings.CutSuffix(metrics, "/metrics")
	if !ok {
		return false
	}
	resp, err := http.Get(u + "/debug/pprof/heap?gc=1")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var w io.Writer = io.Discard
	if heapProfile != "" {
		if f, err := os.Create(heapProfile); err == nil {
			defer f.Close()
			w = f
		}
	}
	io.Copy(w, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// scrape returns the Go runtime's gauges (go_*) from a Prometheus text
// endpoint, or none.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	if url == "" {
		return out
	}
	resp, err := http.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "s2sd_streams_parked{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// remotes is M remote servers in one: an s2s.Server that hosts every
// domain PREFIXiSUFFIX, answering s2sd's dialback verifications, and a
// Dialer that opens streams from them.
type remotes struct {
	prefix, suffix string
	m              int
	dialer         *s2s.Dialer
	srv            *s2s.Server

	// out mode: the component that has s2sd write to each domain, and
	// the message each domain waits for (closed when it arrived)
	comp    *component.Conn
	compDom string
	mu      sync.Mutex
	arrived map[string]chan struct{}
}

// sendFrom connects the component through which openOut has s2sd write
// to the remote domains.
func (r *remotes) sendFrom(addr, domain, secret string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := component.Dial(ctx, addr, domain, secret)
	if err != nil {
		return err
	}
	r.comp, r.compDom = c, domain
	return nil
}

// waitFor returns the channel closed when a message for domain arrives.
func (r *remotes) waitFor(domain string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.arrived == nil {
		r.arrived = map[string]chan struct{}{}
	}
	ch, ok := r.arrived[domain]
	if !ok {
		ch = make(chan struct{})
		r.arrived[domain] = ch
	}
	return ch
}

// deliver is the server's handler: it marks the message's domain arrived.
func (r *remotes) deliver(_ context.Context, st *route.Stanza) error {
	ch := r.waitFor(st.ToDomain())
	select {
	case <-ch:
	default:
		close(ch)
	}
	return nil
}

// openOut has s2sd write to domain i, which makes it open an outbound
// stream there, and waits until the message arrived. The stream is s2sd's:
// the returned Closer does nothing (s2sd's shutdown ends it).
func (r *remotes) openOut(ctx context.Context, i int) (io.Closer, error) {
	d := r.domain(i)
	ch := r.waitFor(d)
	msg := fmt.Sprintf("<message from='idle@%s' to='user@%s' id='m%d' type='chat'><body>hello</body></message>", r.compDom, d, i)
	if err := r.comp.Send([]byte(msg)); err != nil {
		return nil, err
	}
	select {
	case <-ch:
		return io.NopCloser(nil), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no message at %s: %w", d, ctx.Err())
	}
}

func (r *remotes) domain(i int) string { return r.prefix + strconv.Itoa(i) + r.suffix }

func (r *remotes) hosted(d string) bool {
	n, ok := strings.CutPrefix(d, r.prefix)
	if !ok {
		return false
	}
	n, ok = strings.CutSuffix(n, r.suffix)
	if !ok {
		return false
	}
	i, err := strconv.Atoi(n)
	return err == nil && i >= 1 && i <= r.m
}

func newRemotes(listen, dnsAddr, prefix, suffix string, m int) (*remotes, error) {
	cert, err := selfSigned("idle.test", "*"+suffix)
	if err != nil {
		return nil, err
	}
	getCert := func(string) (*tls.Certificate, error) { return &cert, nil }
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	secret := s2s.NewSecret()
	policy := func(string) s2s.Policy { return s2s.DialbackOverTLS }
	r := &remotes{prefix: prefix, suffix: suffix, m: m}
	r.dialer = &s2s.Dialer{
		Resolver:       &s2s.Resolver{Servers: []string{dnsAddr}, Logger: log},
		GetCertificate: getCert,
		Policy:         policy,
		Secret:         secret,
		Logger:         log,
	}
	r.srv = &s2s.Server{
		Hosted:         r.hosted,
		Handler:        route.HandlerFunc(r.deliver),
		GetCertificate: getCert,
		Policy:         policy,
		Secret:         secret,
		Dialer:         r.dialer,
		MaxConns:       1 << 20,
		MaxConnsPerIP:  1 << 20,
		Logger:         log,
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := r.srv.Serve(l); err != nil && !errors.Is(err, s2s.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "idle: s2s server:", err)
		}
	}()
	return r, nil
}

func (r *remotes) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r.comp != nil {
		r.comp.Close()
	}
	r.srv.Shutdown(ctx)
	r.srv.Close()
}

// selfSigned returns a self-signed certificate for names. s2sd cannot
// verify it, so the streams authenticate with dialback, as the default
// policy wants.
func selfSigned(names ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Command driver is the relay benchmark's load driver. It attaches as an
// external component (XEP-0114) to two federating servers, A and B, sends
// messages from the component on A to the component on B, and measures
// what arrives: messages per second, per-message latency (one process, one
// clock), lost and duplicated messages. XEP-0114 is the same against s2sd
// and Prosody, so the same driver measures both.
//
// Usage:
//
//	driver -a HOST:PORT -from send.a.test -b HOST:PORT -to recv.b.test [flags]
//	driver summary RESULTS.jsonl
//	driver compare S2SD.jsonl PROSODY.jsonl
//	driver owner -domain recv.b.test http://NODE1/status.json …
//
// Each message carries its sequence number in its id. At most -window
// messages are in flight: a new one is sent when one arrives (window 1
// measures latency, a large window throughput). -warmup messages are sent
// and awaited first, so that the s2s stream's setup (DNS, TLS, dialback) is
// not in the figures. A run ends when every message has arrived, or when
// nothing has arrived for -drain; what is missing then is lost.
//
// With -bursts K, the measurement is K bursts of -n messages on the same
// two component connections, separated by -gap of quiet: one result per
// burst (scenario NAME#i), then one for all of them (NAME/all), taken a
// second after the last burst. Every burst's messages stay known until the
// end, so a message of burst 1 that arrives again during burst 3 counts as
// a duplicate of burst 1 in the last line, and one that arrives after its
// burst ended counts as late, not lost.
//
// The result is printed as one human line on stderr and one JSON line on
// stdout. summary prints the human lines of a file of JSON lines; compare
// reads two such files and prints the ratios.
//
// When A is a cluster of s2sd nodes, -pids takes A's process ids joined
// with '+' (A1+A2+A3,B): A's CPU is their sum, and each node's is reported
// too. owner waits until the nodes whose status pages it is given agree on
// their members and each partition has its preferred owner, then prints
// the position (from 1) of the node that owns -domain's partition: the
// node that dials it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Result is one run, as printed in the JSON line.
type Result struct {
	Server     string  `json:"server"`
	Scenario   string  `json:"scenario"`
	Size       int     `json:"body_bytes"`
	Window     int     `json:"window"`
	Sent       int     `json:"sent"`
	Received   int     `json:"received"`
	Lost       int     `json:"lost"`
	Duplicated int     `json:"duplicated"`
	Errors     int     `json:"errors"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"msgs_per_sec"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
	// Late is the number of messages that arrived after their burst's
	// result was taken (-bursts; in the NAME/all line only).
	Late int `json:"late,omitempty"`
	// CPU time per message received, in microseconds, of server A, server
	// B (with -pids) and the driver itself, over the measured run.
	CPUA      float64 `json:"cpu_us_per_msg_a,omitempty"`
	CPUB      float64 `json:"cpu_us_per_msg_b,omitempty"`
	CPUDriver float64 `json:"cpu_us_per_msg_driver,omitempty"`
	// CPUANodes is each node's share of CPUA when A is a cluster.
	CPUANodes []float64 `json:"cpu_us_per_msg_a_nodes,omitempty"`
	// System calls per 1,000 messages received, of server A (its nodes
	// together) and server B, that read and that wrote
	// (/proc/PID/io syscr and syscw, with -pids), over the measured run:
	// how many stanzas each read and write carried on average. Only the
	// read and write families count there: a server that uses recv and
	// send (Prosody) shows zeros, and the line leaves them out.
	ReadsA  float64 `json:"reads_per_1000_a,omitempty"`
	WritesA float64 `json:"writes_per_1000_a,omitempty"`
	ReadsB  float64 `json:"reads_per_1000_b,omitempty"`
	WritesB float64 `json:"writes_per_1000_b,omitempty"`
}

func (r *Result) String() string {
	s := fmt.Sprintf("%-8s %-12s %d/%d msgs in %.2fs = %.0f msg/s; latency p50 %.2fms p99 %.2fms max %.2fms; lost %d dup %d errors %d",
		r.Server, r.Scenario, r.Received, r.Sent, r.Seconds, r.Rate, r.P50, r.P99, r.Max, r.Lost, r.Duplicated, r.Errors)
	switch {
	case r.CPUA > 0 || r.CPUB > 0:
		s += fmt.Sprintf("; CPU µs/msg A %.1f", r.CPUA)
		if len(r.CPUANodes) > 1 {
			nodes := make([]string, len(r.CPUANodes))
			for i, c := range r.CPUANodes {
				nodes[i] = fmt.Sprintf("A%d %.1f", i+1, c)
			}
			s += " (" + strings.Join(nodes, ", ") + ")"
		}
		s += fmt.Sprintf(" B %.1f driver %.1f", r.CPUB, r.CPUDriver)
		if r.ReadsA > 0 && r.WritesA > 0 && r.ReadsB > 0 && r.WritesB > 0 {
			s += fmt.Sprintf("; syscalls per 1000 msgs A read %.1f write %.1f, B read %.1f write %.1f", r.ReadsA, r.WritesA, r.ReadsB, r.WritesB)
		}
	case r.CPUDriver > 0:
		s += fmt.Sprintf("; CPU µs/msg driver %.1f", r.CPUDriver)
	}
	if r.Late > 0 {
		s += fmt.Sprintf("; late %d", r.Late)
	}
	if r.FirstError != "" {
		s += " (first: " + r.FirstError + ")"
	}
	return s
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "owner" {
		if err := owner(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "compare" || os.Args[1] == "summary") {
		f := compare
		if os.Args[1] == "summary" {
			f = summary
		}
		if err := f(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			os.Exit(1)
		}
		return
	}
	var (
		addrA   = flag.String("a", "127.0.0.1:5347", "component `address` of server A")
		from    = flag.String("from", "send.a.test", "component `domain` on A (the sender)")
		secretA = flag.String("secret-a", "secret", "component `secret` on A")
		addrB   = flag.String("b", "127.0.0.1:5348", "component `address` of server B")
		to      = flag.String("to", "recv.b.test", "component `domain` on B (the receiver)")
		secretB = flag.String("secret-b", "secret", "component `secret` on B")
		n       = flag.Int("n", 20000, "messages to measure")
		warmup  = flag.Int("warmup", 1000, "messages sent and awaited before measuring")
		window  = flag.Int("window", 500, "messages in flight at most")
		size    = flag.Int("size", 100, "body `bytes`")
		drain   = flag.Duration("drain", 5*time.Second, "end a run when nothing has arrived for this long")
		server  = flag.String("server", "s2sd", "server `name` for the report")
		label   = flag.String("scenario", "", "scenario `name` for the report (default SIZE/wWINDOW)")
		dups    = flag.Int("show-dups", 0, "print the first `n` duplicated messages")
		pids    = flag.String("pids", "", "`A,B`: process ids of the servers, to report their CPU time per message (A1+A2+…,B when A is a cluster)")
		cpuprof = flag.String("cpuprofile", "", "write the driver's CPU profile to `file`")
		times   = flag.String("times", "", "write each measured message's send time and latency, in ns, to `file`.SCENARIO")
		bursts  = flag.Int("bursts", 1, "measure `k` bursts of -n messages, separated by -gap")
		gap     = flag.Duration("gap", 5*time.Second, "quiet between bursts (with -bursts)")
	)
	flag.Parse()
	if *label == "" {
		*label = sizeName(*size) + "/w" + strconv.Itoa(*window)
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof + "." + strings.ReplaceAll(*label, "/", "-"))
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *n < 1 || *window < 1 || *size < 0 || *bursts < 1 || *gap < 0 {
		fmt.Fprintln(os.Stderr, "driver: -n, -window and -bursts must be positive, -size and -gap not negative")
		os.Exit(2)
	}
	b := &bench{
		from: *from, to: *to, window: *window, drain: *drain, showDups: *dups,
		body: strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", *size/62+1)[:*size],
	}
	if *times != "" {
		b.times = *times + "." + strings.ReplaceAll(*label, "/", "-")
	}
	b.phases = make([]atomic.Pointer[phase], *bursts+1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	var err error
	b.recv, err = dial(ctx, *addrB, *to, *secretB)
	if err == nil {
		b.send, err = dial(ctx, *addrA, *from, *secretA)
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
	go b.receive()
	go b.bounces()

	if *warmup > 0 {
		w := b.run(0, *warmup)
		if w.Received < *warmup {
			fmt.Fprintf(os.Stderr, "driver: warm-up: %d of %d messages arrived; measuring anyway\n", w.Received, *warmup)
		}
	}
	pa, pb, _ := strings.Cut(*pids, ",")
	nodes := strings.Split(pa, "+")
	// cpu returns the CPU times of A's nodes, then B, then the driver.
	cpu := func() []time.Duration {
		t := make([]time.Duration, 0, len(nodes)+2)
		for _, p := range nodes {
			t = append(t, procCPU(p))
		}
		return append(t, procCPU(pb), selfCPU())
	}
	// syscalls returns the reads and writes of A's nodes together, then
	// of B.
	syscalls := func() [4]int64 {
		var c [4]int64
		for _, p := range nodes {
			r, w := procIO(p)
			c[0] += r
			c[1] += w
		}
		c[2], c[3] = procIO(pb)
		return c
	}
	report := func(res Result) {
		fmt.Fprintln(os.Stderr, res.String())
		j, _ := json.Marshal(res)
		fmt.Println(string(j))
	}
	b.errMu.Lock()
	errs0 := b.errs
	b.errMu.Unlock()
	failed := false
	for i := 1; i <= *bursts; i++ {
		if i > 1 {
			time.Sleep(*gap)
		}
		cpu0, io0 := cpu(), syscalls()
		res := b.run(i, *n)
		cpu1, io1 := cpu(), syscalls()
		res.Server, res.Scenario, res.Size = *server, *label, *size
		if *bursts > 1 {
			res.Scenario += "#" + strconv.Itoa(i)
		}
		if res.Received > 0 {
			per := func(i int) float64 {
				return float64((cpu1[i] - cpu0[i]).Microseconds()) / float64(res.Received)
			}
			k := len(nodes)
			if *pids != "" {
				for j := range k {
					res.CPUA += per(j)
					if k > 1 {
						res.CPUANodes = append(res.CPUANodes, per(j))
					}
				}
				res.CPUB = per(k)
				perK := func(j int) float64 {
					if io1[j] < io0[j] || io0[j] == 0 {
						return 0 // not readable
					}
					return float64(io1[j]-io0[j]) * 1000 / float64(res.Received)
				}
				res.ReadsA, res.WritesA, res.ReadsB, res.WritesB = perK(0), perK(1), perK(2), perK(3)
			}
			res.CPUDriver = per(k + 1)
		}
		report(res)
		failed = failed || res.Received == 0
	}
	if *bursts > 1 {
		// Late arrivals and duplicates of the last burst would come now.
		time.Sleep(time.Second)
		res := b.total(1, *bursts)
		res.Server, res.Scenario, res.Size = *server, *label+"/all", *size
		b.errMu.Lock()
		res.Errors = b.errs - errs0
		res.FirstError = b.firstErr
		b.errMu.Unlock()
		report(res)
	}

	b.send.close()
	b.recv.close()
	if failed {
		os.Exit(1)
	}
}

// procCPU returns the user and system time of process pid from
// /proc/PID/stat (in clock ticks, taken as 100 per second: USER_HZ on
// Linux), or 0.
func procCPU(pid string) time.Duration {
	if pid == "" {
		return 0
	}
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// procIO returns the read and write system calls process pid made
// (/proc/PID/io syscr and syscw), or zeros when they cannot be read.
func procIO(pid string) (reads, writes int64) {
	if pid == "" {
		return 0, 0
	}
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		switch k {
		case "syscr":
			reads, _ = strconv.ParseInt(v, 10, 64)
		case "syscw":
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}

// selfCPU returns this process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// bench is the state shared by the sender and the two readers.
type bench struct {
	send, recv *conn
	from, to   string
	body       string
	window     int
	drain      time.Duration
	showDups   int
	times      string
	start      time.Time // the clock's origin: times are nanoseconds since

	// The current phase; set before its messages go out.
	phase atomic.Pointer[phase]
	// Every phase by number, kept after it ends: late arrivals and
	// duplicates still count.
	phases []atomic.Pointer[phase]

	errMu    sync.Mutex
	errs     int
	firstErr string
}

// phase is one run: warm-up (number 0) or the measurement (1).
type phase struct {
	num      int
	sent     []atomic.Int64 // send time of each message, 0 before
	recv     []atomic.Int64 // first arrival of each message, 0 before
	got      atomic.Int64   // distinct messages arrived
	dup      atomic.Int64
	late     atomic.Int64  // arrived after the phase ended
	seconds  float64       // the measured time, set when the phase ends
	credits  chan struct{} // one per free slot of the window
	progress atomic.Int64  // time of the last arrival
	done     chan struct{} // closed when every message has arrived
}

func (b *bench) now() int64 { return int64(time.Since(b.start)) }

// run sends count messages of phase num and waits for them.
func (b *bench) run(num, count int) Result {
	if b.start.IsZero() {
		b.start = time.Now()
	}
	p := &phase{
		num:     num,
		sent:    make([]atomic.Int64, count),
		recv:    make([]atomic.Int64, count),
		credits: make(chan struct{}, b.window),
		done:    make(chan struct{}),
	}
	for range b.window {
		p.credits <- struct{}{}
	}
	if num < len(b.phases) {
		b.phases[num].Store(p)
	}
	b.phase.Store(p)
	b.errMu.Lock()
	errs0 := b.errs
	b.errMu.Unlock()

	prefix := fmt.Sprintf("<message from='%s' to='%s' type='normal' id='m%d-", b.from, b.to, num)
	suffix := "'><body>" + b.body + "</body></message>"
	buf := make([]byte, 0, len(prefix)+len(suffix)+16)
	t0 := b.now()
	p.progress.Store(t0)
	sent := 0
	for i := range count {
		// What is queued goes out when the window is full (or the batch
		// large): the messages written together are the ones that were
		// free to go together.
		if !b.tryAcquire(p) {
			if err := b.send.flush(); err != nil {
				fmt.Fprintf(os.Stderr, "driver: send: %v\n", err)
				break
			}
			if !b.acquire(p) {
				fmt.Fprintf(os.Stderr, "driver: nothing arrived for %s with the window full; stopping at %d of %d\n", b.drain, i, count)
				break
			}
		}
		buf = append(buf[:0], prefix...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, suffix...)
		p.sent[i].Store(b.now())
		b.send.send(buf)
		sent++
		if b.send.pending() >= 64<<10 {
			if err := b.send.flush(); err != nil {
				fmt.Fprintf(os.Stderr, "driver: send: %v\n", err)
				break
			}
		}
	}
	if err := b.send.flush(); err != nil {
		fmt.Fprintf(os.Stderr, "driver: send: %v\n", err)
	}
	// Drain: wait for the rest, or until nothing has arrived for b.drain.
	tick := time.NewTicker(20 * time.Millisecond)
	for int(p.got.Load()) < sent && !b.stalled(p) {
		select {
		case <-p.done:
		case <-tick.C:
		}
	}
	tick.Stop()
	b.phase.Store(nil)

	lat := make([]int64, 0, sent)
	var last int64
	var dump *bufio.Writer
	if b.times != "" && num > 0 {
		if f, err := os.Create(b.times); err == nil {
			defer f.Close()
			dump = bufio.NewWriter(f)
			defer dump.Flush()
		}
	}
	for i := range count {
		s, r := p.sent[i].Load(), p.recv[i].Load()
		if s == 0 || r == 0 {
			continue
		}
		lat = append(lat, r-s)
		last = max(last, r)
		if dump != nil {
			fmt.Fprintf(dump, "%d %d\n", s, r-s)
		}
	}
	slices.Sort(lat)
	res := Result{Window: b.window, Sent: sent, Received: len(lat), Lost: sent - len(lat), Duplicated: int(p.dup.Load())}
	if len(lat) > 0 {
		res.Seconds = float64(last-t0) / 1e9
		res.Rate = float64(len(lat)) / res.Seconds
		res.P50 = ms(lat[len(lat)*50/100])
		res.P99 = ms(lat[min(len(lat)*99/100, len(lat)-1)])
		res.Max = ms(lat[len(lat)-1])
	}
	p.seconds = res.Seconds
	b.errMu.Lock()
	res.Errors = b.errs - errs0
	res.FirstError = b.firstErr
	b.errMu.Unlock()
	return res
}

// total sums up phases first to last as they stand now: every message
// sent, every arrival (late ones included), every duplicate. Its rate is
// the messages received over the phases' measured time (the gaps left
// out), its latencies those of all arrivals.
func (b *bench) total(first, last int) Result {
	var res Result
	var lat []int64
	for num := first; num <= last; num++ {
		p := b.phases[num].Load()
		if p == nil {
			continue
		}
		res.Window = b.window
		for i := range p.sent {
			s, r := p.sent[i].Load(), p.recv[i].Load()
			if s == 0 {
				continue
			}
			res.Sent++
			if r != 0 {
				lat = append(lat, r-s)
			}
		}
		res.Duplicated += int(p.dup.Load())
		res.Late += int(p.late.Load())
		res.Seconds += p.seconds
	}
	slices.Sort(lat)
	res.Received, res.Lost = len(lat), res.Sent-len(lat)
	if len(lat) > 0 && res.Seconds > 0 {
		res.Rate = float64(len(lat)) / res.Seconds
		res.P50 = ms(lat[len(lat)*50/100])
		res.P99 = ms(lat[min(len(lat)*99/100, len(lat)-1)])
		res.Max = ms(lat[len(lat)-1])
	}
	return res
}

// tryAcquire takes a slot of the window if one is free.
func (b *bench) tryAcquire(p *phase) bool {
	select {
	case <-p.credits:
		return true
	default:
		return false
	}
}

// acquire takes a slot of the window, waiting for an arrival when it is
// full; it fails when nothing has arrived for b.drain.
func (b *bench) acquire(p *phase) bool {
	if b.tryAcquire(p) {
		return true
	}
	t := time.NewTicker(b.drain / 10)
	defer t.Stop()
	for {
		select {
		case <-p.credits:
			return true
		case <-t.C:
			if b.stalled(p) {
				return false
			}
		}
	}
}

// stalled reports whether nothing has arrived in phase p for b.drain.
func (b *bench) stalled(p *phase) bool {
	return time.Duration(b.now()-p.progress.Load()) > b.drain
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// receive reads B's stream: it is the only reader of b.recv.
func (b *bench) receive() {
	for {
		el, err := b.recv.next()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "driver: receiver:", err)
			}
			return
		}
		t := b.now()
		id := attr(el, "id")
		num, seq, ok := parseID(id)
		if !ok {
			continue // not ours
		}
		p, late := b.phase.Load(), false
		if p == nil || num != p.num {
			// From a phase that has ended (or, with ids reused by another
			// run, from none of ours).
			p, late = nil, true
			if num >= 0 && num < len(b.phases) {
				p = b.phases[num].Load()
			}
		}
		if p == nil || seq >= len(p.recv) || p.sent[seq].Load() == 0 {
			continue
		}
		if !p.recv[seq].CompareAndSwap(0, t) {
			if d := p.dup.Add(1); d <= int64(b.showDups) {
				fmt.Fprintf(os.Stderr, "driver: duplicate %s: sent at %.3fms, first arrival %.3fms, again %.3fms\n",
					id, ms(p.sent[seq].Load()), ms(p.recv[seq].Load()), ms(t))
			}
			continue
		}
		if late {
			p.late.Add(1)
			continue
		}
		p.progress.Store(t)
		select {
		case p.credits <- struct{}{}:
		default:
		}
		if int(p.got.Add(1)) == len(p.recv) {
			close(p.done)
		}
	}
}

// bounces reads A's stream, where errors for undeliverable messages come
// back.
func (b *bench) bounces() {
	for {
		el, err := b.send.next()
		if err != nil {
			return
		}
		if attr(el, "type") != "error" {
			continue
		}
		b.errMu.Lock()
		b.errs++
		if b.firstErr == "" {
			b.firstErr = errorText(el)
		}
		b.errMu.Unlock()
	}
}

// errorText names the condition of an error stanza and its text, roughly:
// the first element in the stanzas namespace and the <text/> content.
func errorText(el []byte) string {
	raw := string(el)
	i := strings.Index(raw, "<error")
	if i < 0 {
		return "error"
	}
	raw = raw[i:]
	cond := "error"
	if j := strings.Index(raw, "urn:ietf:params:xml:ns:xmpp-stanzas"); j > 0 {
		if k := strings.LastIndexByte(raw[:j], '<'); k >= 0 {
			cond = raw[k+1 : j]
			if sp := strings.IndexAny(cond, " \t\r\n/>"); sp >= 0 {
				cond = cond[:sp]
			}
		}
	}
	if j := strings.Index(raw, "<text"); j >= 0 {
		if k := strings.IndexByte(raw[j:], '>'); k >= 0 {
			t := raw[j+k+1:]
			if e := strings.Index(t, "</text>"); e >= 0 {
				cond += ": " + t[:e]
			}
		}
	}
	return cond
}

// parseID parses "m<phase>-<seq>".
func parseID(id string) (num, seq int, ok bool) {
	rest, found := strings.CutPrefix(id, "m")
	if !found {
		return 0, 0, false
	}
	a, c, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	num, err1 := strconv.Atoi(a)
	seq, err2 := strconv.Atoi(c)
	return num, seq, err1 == nil && err2 == nil && seq >= 0
}

// compare prints, for each scenario in both files, the two results and the
// ratios s2sd/Prosody.
func compare(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: driver compare S2SD.jsonl PROSODY.jsonl")
	}
	x, order, err := readResults(args[0])
	if err != nil {
		return err
	}
	y, _, err := readResults(args[1])
	if err != nil {
		return err
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Printf("%-12s | %10s %10s %6s | %8s %8s %6s | %8s %8s %6s | %9s %9s %6s | %s\n",
		"scenario", "s2sd msg/s", "pros msg/s", "ratio", "s2sd p50", "pros p50", "ratio", "s2sd p99", "pros p99", "ratio",
		"s2sd cpu", "pros cpu", "ratio", "lost/dup/err s2sd, prosody")
	for _, s := range order {
		a, ok := y[s]
		r := x[s]
		if !ok {
			fmt.Printf("%-12s | %10.0f %10s\n", s, r.Rate, "-")
			continue
		}
		fmt.Printf("%-12s | %10.0f %10.0f %6s | %8.2f %8.2f %6s | %8.2f %8.2f %6s | %9.1f %9.1f %6s | %d/%d/%d, %d/%d/%d\n",
			s, r.Rate, a.Rate, ratio(r.Rate, a.Rate), r.P50, a.P50, ratio(r.P50, a.P50), r.P99, a.P99, ratio(r.P99, a.P99),
			r.CPUA+r.CPUB, a.CPUA+a.CPUB, ratio(r.CPUA+r.CPUB, a.CPUA+a.CPUB),
			r.Lost, r.Duplicated, r.Errors, a.Lost, a.Duplicated, a.Errors)
	}
	fmt.Println("p50, p99: latency in ms; cpu: µs of CPU per message, servers A and B together")
	fmt.Println("ratio = s2sd / Prosody: above 1 is better for msg/s, below 1 for latency and CPU")
	return nil
}

// readResults reads a file of JSON result lines; order lists the scenarios
// as they first appear.
func readResults(path string) (m map[string]Result, order []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	m = map[string]Result{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Result
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Scenario == "" {
			continue
		}
		if _, ok := m[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		m[r.Scenario] = r
	}
	return m, order, sc.Err()
}

// summary prints the human line of each result in a file.
func summary(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: driver summary RESULTS.jsonl")
	}
	m, order, err := readResults(args[0])
	if err != nil {
		return err
	}
	for _, s := range order {
		r := m[s]
		fmt.Println(r.String())
	}
	return nil
}

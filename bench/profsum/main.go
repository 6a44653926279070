// Command profsum says where a daemon's CPU went, from a CPU profile: it
// reads the samples' stacks (go tool pprof -traces) and puts each sample
// in the first of these categories one of its frames matches, in this
// order:
//
//	GC          the collector's own work: mark workers, assists, sweeping
//	write       write system calls (sockets)
//	read        read system calls
//	scheduler   goroutine scheduling, wake-ups (futex), the network poller
//	locks       sync.Mutex and RWMutex, channels, runtime locks outside the scheduler
//	alloc       allocating (mallocgc and its callers' slice growth, strings)
//	TLS         crypto/tls and AES-GCM, above the write and read calls
//	metrics     Prometheus counters
//	parse       internal/xmlstream's Reader: finding and checking stanzas
//	route       route: Stanza, addresses, the Router; node's handlers
//	serialize   internal/xmlstream's Writer, Element.Reframe and AppendTo
//	streams     the rest of s2s and component: queues, acknowledgements, clocks
//	other       anything else
//
// So a category counts what is spent in its code and below it, minus what
// an earlier category took: "parse" is the reader's own CPU, without the
// allocations it makes (alloc) or the reads (read). Usage:
//
//	profsum [-bin BINARY] PROFILE...
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

type category struct {
	name string
	re   *regexp.Regexp
}

var categories = []category{
	{"GC (mark workers, assists, sweep)", regexp.MustCompile(`^runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge|gcMarkDone|gcMarkTermination|gcStart|markroot|gcDrain|sweepone|scavenge)`)},
	{"syscalls: write", regexp.MustCompile(`^internal/poll\.\(\*FD\)\.(Write|Writev)|^syscall\.(write|writev)|^internal/poll\.ignoringEINTRIO.*[Ww]rite`)},
	{"syscalls: read", regexp.MustCompile(`^internal/poll\.\(\*FD\)\.Read|^syscall\.read`)},
	{"scheduler, wake-ups, netpoll", regexp.MustCompile(`^runtime\.(schedule|findRunnable|park_m|goschedImpl|gosched_m|netpoll|ready|wakep|startm|stopm|notewakeup|notesleep|futex|goready|mcall|exitsyscall|entersyscall|morestack|newstack|retake|sysmon|usleep|goexit0)`)},
	{"locks (sync.Mutex, channels)", regexp.MustCompile(`^sync\.\(\*(Mutex|RWMutex)\)|^runtime\.(lock2|unlock2|chansend|chanrecv|selectgo|semacquire|semrelease)`)},
	{"allocation (mallocgc)", regexp.MustCompile(`^runtime\.(mallocgc|growslice|newobject|makeslice|rawstring|slicebytetostring|concatstring)`)},
	{"TLS (crypto/tls, AES-GCM)", regexp.MustCompile(`^crypto/`)},
	{"metrics (prometheus)", regexp.MustCompile(`prometheus`)},
	{"parse (xmlstream.Reader)", regexp.MustCompile(`xmlstream\.\((\*Reader|\*scanner)\)|xmlstream\.(mayStop|localName)`)},
	{"route (Stanza, JIDs, Router)", regexp.MustCompile(`/route\.|/node\.`)},
	{"serialize (Writer, Reframe)", regexp.MustCompile(`xmlstream\.\(\*Writer\)|xmlstream\.\(\*Element\)\.(Reframe|AppendTo|plan|build)`)},
	{"streams (s2s, component: queues, acks, clocks)", regexp.MustCompile(`/(s2s|component)\.`)},
}

func main() {
	bin := flag.String("bin", "", "the profiled `binary` (optional: profiles from net/http/pprof carry their symbols)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: profsum [-bin BINARY] PROFILE...")
		os.Exit(2)
	}
	for _, p := range flag.Args() {
		if err := summarize(*bin, p); err != nil {
			fmt.Fprintf(os.Stderr, "profsum: %s: %v\n", p, err)
			os.Exit(1)
		}
	}
}

func summarize(bin, path string) error {
	args := []string{"tool", "pprof", "-traces"}
	if bin != "" {
		args = append(args, bin)
	}
	out, err := exec.Command("go", append(args, path)...).Output()
	if err != nil {
		return err
	}
	totals := make([]time.Duration, len(categories)+1)
	var all time.Duration
	for _, s := range parseTraces(out) {
		all += s.value
		totals[classify(s.frames)] += s.value
	}
	if all == 0 {
		return fmt.Errorf("no samples")
	}
	fmt.Printf("%s: %v of samples\n", path, all)
	for i, t := range totals {
		name := "other"
		if i < len(categories) {
			name = categories[i].name
		}
		fmt.Printf("  %5.1f%%  %s\n", 100*float64(t)/float64(all), name)
	}
	return nil
}

type sample struct {
	value  time.Duration
	frames []string // leaf first
}

// parseTraces reads go tool pprof -traces output: blocks separated by
// "-----------+----" lines, each a value and the first frame on one line,
// then one frame per line.
func parseTraces(b []byte) []sample {
	var out []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			cur = nil
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if cur == nil {
			d, err := time.ParseDuration(f[0])
			if err != nil || len(f) < 2 {
				continue // the header
			}
			out = append(out, sample{value: d})
			cur = &out[len(out)-1]
			f = f[1:]
		}
		cur.frames = append(cur.frames, f[0])
	}
	return out
}

func classify(frames []string) int {
	for i, c := range categories {
		for _, f := range frames {
			if c.re.MatchString(f) {
				return i
			}
		}
	}
	return len(categories)
}

// Package gcfloor keeps the Go garbage collector from running more often
// than a heap of a given size would need: a floor under the heap goal.
//
// The collector starts a cycle when the heap has grown by GOGC percent of
// what the last cycle found live, and never below 4 MiB. A relay's live
// heap is small (its queues hold stanzas for milliseconds): at 100,000
// stanzas a second, 1 to 2 MiB live means a cycle every few milliseconds,
// and each cycle's fixed costs (stopping the world twice, scanning stacks
// and globals, waking the mark workers) then weigh more than the marking
// itself. A floor lets the heap grow to a fixed size before a cycle while
// the live heap is small, and changes nothing once the live heap is large
// enough that GOGC alone puts the goal above the floor.
//
// After each cycle, the floor sets GOGC so that the next goal is at least
// the floor, and never below the configured percent:
//
//	goal = max(live + (live + stacks + globals) * GOGC / 100, 4 MiB * GOGC / 100)
//
// The adjustment follows each cycle, on the runtime's cleanup goroutine:
// the goal a cycle sets is computed with the GOGC in force, so after a
// jump of the live heap it can reach live * (1 + GOGC/100) until the
// floor lowers GOGC, moments later. GOGC stays at most floor/4 MiB * 100,
// so that is at most the jump times floor/4 MiB.
//
// A memory limit (GOMEMLIMIT, debug.SetMemoryLimit) still bounds the heap
// as before: the runtime collects sooner when the limit needs it, whatever
// GOGC says.
//
// The runtime has no minimum heap of its own: golang/go#9067 gave it the
// 4 MiB that scales with GOGC, #23044 (a minimum heap setting) is on hold,
// and #44309 became GOMEMLIMIT, a ceiling. Servers use a ballast, a large
// allocation that raises the goal for good. The floor does it with GOGC,
// so that it holds no memory of its own, and only while the live heap is
// small: a floor that stayed in force as the live heap grew would make
// each cycle both longer and more frequent (#23044 discusses it).
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the GOGC the floor sets: with a live heap under
// floor/50, cycles are already rare.
const maxPercent = 5000

// minHeap is the runtime's minimum heap goal at GOGC=100; it scales with
// GOGC.
const minHeap = 4 << 20

// Floor adjusts GOGC after every garbage collection; see the package
// documentation. Its methods may be called from any goroutine.
type Floor struct {
	floor uint64
	base  int // the GOGC below which the floor never goes

	mu      sync.Mutex
	stopped bool
	set     int // the GOGC last set
	prev    int // the GOGC before Start
	samples []metrics.Sample
}

// Start sets a floor of floor bytes under the heap goal. percent is the
// GOGC to keep when the live heap is large (100 is the runtime's
// default). Stop undoes it.
func Start(floor uint64, percent int) *Floor {
	if percent <= 0 {
		percent = 100
	}
	f := &Floor{
		floor: floor,
		base:  percent,
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"},
			{Name: "/gc/scan/globals:bytes"},
		},
	}
	f.set = percent
	f.prev = debug.SetGCPercent(percent)
	f.mu.Lock()
	f.adjust()
	f.mu.Unlock()
	f.arm()
	return f
}

// Percent returns the GOGC the floor last set.
func (f *Floor) Percent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set
}

// Stop ends the adjustments and restores the GOGC in force before Start.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	debug.SetGCPercent(f.prev)
}

// sentinel is what each cycle collects: a pointer field keeps it out of
// the tiny allocator, whose blocks are freed together.
type sentinel struct {
	_ *byte
	_ [8]byte
}

// arm registers a cleanup that runs after the next cycle finds a new
// sentinel unreachable; it adjusts GOGC and arms again.
func (f *Floor) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(f *Floor) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.stopped {
			return
		}
		f.adjust()
		f.arm()
	}, f)
}

// adjust sets GOGC from what the last cycle found live; f.mu is held.
func (f *Floor) adjust() {
	metrics.Read(f.samples)
	live := sample(f.samples[0])
	scan := live + sample(f.samples[1]) + sample(f.samples[2])
	p := f.base
	if live < f.floor && scan > 0 {
		// The runtime's 4 MiB minimum goal grows with GOGC too.
		p = max(p, min(maxPercent, int((f.floor-live)*100/scan), int(f.floor*100/minHeap)))
	}
	// Small changes are not worth a call: the goal moves by less than
	// the live heap does between two cycles.
	if d := p - f.set; d*20 > f.set || -d*20 > f.set || (p == f.base) != (f.set == f.base) {
		debug.SetGCPercent(p)
		f.set = p
	}
}

func sample(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}

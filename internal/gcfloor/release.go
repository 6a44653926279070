package gcfloor

import (
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Release gives the heap's free pages back to the operating system once
// the process has gone quiet.
//
// The runtime keeps the pages between the live heap and the heap goal
// (GOGC percent more than the live heap, or the floor) so that the next
// cycle's allocations need not ask the system for them again; its
// scavenger returns only what lies beyond the goal. A relay that has gone
// quiet after a burst, or that holds thousands of idle streams, keeps
// that headroom resident for nothing: as much again as its live heap.
// Once a second, Release looks at how much was allocated since the last
// look; when that is little (quietBytes) and what it may give back is
// worth it, it collects and returns the free pages (debug.FreeOSMemory).
// What it may give back is the free pages plus the objects beyond what
// the last cycle found live (dead ones, not collected yet, or live ones
// allocated since: the release tells which); it is worth it from
// minRelease and an eighth of the live heap. Pages come back, one fault
// each, when the heap grows again.
//
// A release costs one collection of the live heap: it happens at most
// once every minInterval, and after one, only once what may be given back
// has grown again by what is worth a release (the runtime keeps some free
// pages whatever is asked of it).
//
// Java's collectors do the same (JEP 346, "Promptly Return Unused
// Committed Memory from G1"; ZGC's ZUncommit).
type Release struct {
	stop chan struct{}
	done chan struct{}

	// The loop's.
	s           []metrics.Sample
	last        uint64 // allocated bytes at the last step
	lastRelease time.Time
	// What the last release left: pages the runtime keeps all the same
	// (its per-processor caches), which the next must not count.
	residual uint64
}

// What Release waits for; variables for tests.
var (
	releaseTick = time.Second      // how often it looks
	quietBytes  = uint64(1 << 20)  // allocated in a tick, at most, to be quiet
	minRelease  = uint64(4 << 20)  // bytes to give back, at least, worth a release
	minInterval = 10 * time.Second // between two releases
)

// releases counts releases, for tests.
var releases atomic.Int64

// StartRelease starts returning free pages when the process is quiet;
// Stop ends it.
func StartRelease() *Release {
	r := newRelease()
	go r.loop()
	return r
}

func newRelease() *Release {
	r := &Release{
		stop: make(chan struct{}),
		done: make(chan struct{}),
		s: []metrics.Sample{
			{Name: "/gc/heap/allocs:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/gc/heap/live:bytes"},
		},
	}
	metrics.Read(r.s)
	r.last = sample(r.s[0])
	return r
}

// Stop ends the releases and waits for one under way.
func (r *Release) Stop() {
	close(r.stop)
	<-r.done
}

func (r *Release) loop() {
	defer close(r.done)
	t := time.NewTicker(releaseTick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			r.step(now)
		case <-r.stop:
			return
		}
	}
}

// step looks at what was allocated since the last step, and releases when
// the process is quiet and enough may be given back. It reports whether it
// released.
func (r *Release) step(now time.Time) bool {
	metrics.Read(r.s)
	allocs := sample(r.s[0])
	quiet := allocs-r.last <= quietBytes
	r.last = allocs
	if !quiet || r.reclaimable() < r.residual+max(minRelease, sample(r.s[3])/8) || now.Sub(r.lastRelease) < minInterval {
		return false
	}
	debug.FreeOSMemory()
	releases.Add(1)
	r.lastRelease = now
	// What the collection allocated is not the process's.
	metrics.Read(r.s)
	r.last = sample(r.s[0])
	r.residual = r.reclaimable()
	return true
}

// reclaimable is what a release may give back, from the last samples: the
// free pages, and the objects beyond what the last cycle found live.
func (r *Release) reclaimable() uint64 {
	free, objects, live := sample(r.s[1]), sample(r.s[2]), sample(r.s[3])
	return free + objects - min(live, objects)
}

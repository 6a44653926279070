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
// once every minInterval, and after one, only once the heap has grown
// again by what is worth a release while the process stayed quiet.
// Java's collectors do the same (JEP 346, "Promptly Return Unused
// Committed Memory from G1"; ZGC's ZUncommit).
type Release struct {
	stop chan struct{}
	done chan struct{}
}

// What Release waits for; variables for tests.
var (
	releaseTick = time.Second      // how often it looks
	quietBytes  = uint64(1 << 20)  // allocated in a tick, at most, to be quiet
	minRelease  = uint64(4 << 20)  // free bytes, at least, worth a release
	minInterval = 10 * time.Second // between two releases
)

// releases counts releases, for tests.
var releases atomic.Int64

// StartRelease starts returning free pages when the process is quiet;
// Stop ends it.
func StartRelease() *Release {
	r := &Release{stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// Stop ends the releases and waits for one under way.
func (r *Release) Stop() {
	close(r.stop)
	<-r.done
}

func (r *Release) loop() {
	defer close(r.done)
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	last := sample(s[0])
	var lastRelease time.Time
	t := time.NewTicker(releaseTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
		metrics.Read(s)
		allocs, free, objects, live := sample(s[0]), sample(s[1]), sample(s[2]), sample(s[3])
		quiet := allocs-last <= quietBytes
		last = allocs
		if !quiet || free+objects-min(live, objects) < max(minRelease, live/8) || time.Since(lastRelease) < minInterval {
			continue
		}
		debug.FreeOSMemory()
		releases.Add(1)
		lastRelease = time.Now()
		// What the collection allocated is not the process's.
		metrics.Read(s)
		last = sample(s[0])
	}
}

package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// heapSample returns the heap's objects (live or dead, not collected yet)
// and the live heap the last cycle found.
func heapSample() (objects, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	return sample(s[0]), sample(s[1])
}

// garbage leaves about 16 MiB of dead objects that no cycle has collected
// yet, above 32 MiB live: below the next goal, so the runtime alone keeps
// them until it collects again, which needs more allocations.
func garbage(t *testing.T) {
	t.Helper()
	for try := 0; ; try++ {
		runtime.GC()
		for range 256 {
			sink = make([]byte, 64<<10)
		}
		// A cycle may have started on the way (a slow machine marks
		// slowly): then try again.
		time.Sleep(10 * time.Millisecond)
		if objects, live := heapSample(); objects >= live+8<<20 {
			return
		}
		if try == 5 {
			t.Fatal("every burst of garbage was collected at once: the test needs another size")
		}
	}
}

// TestReleaseStep: a step releases only when the process allocated little
// since the last one and enough may be given back; the release collects
// the garbage the runtime was keeping; the next quiet step, with nothing
// grown back, does not release again.
func TestReleaseStep(t *testing.T) {
	live := make([][]byte, 0, 512)
	for range 512 {
		live = append(live, make([]byte, 64<<10))
	}
	r := newRelease()
	now := time.Now()
	garbage(t) // 16 MiB since newRelease: busy
	if r.step(now) {
		t.Fatal("released after 16 MiB were allocated since the last look")
	}
	now = now.Add(time.Second)
	if !r.step(now) {
		objects, l := heapSample()
		t.Fatalf("no release when quiet with %d KiB of objects, %d KiB live", objects>>10, l>>10)
	}
	if objects, l := heapSample(); objects > l+4<<20 {
		t.Fatalf("after the release: %d KiB of objects, %d KiB live", objects>>10, l>>10)
	}
	now = now.Add(2 * minInterval)
	if r.step(now) {
		t.Fatal("released again with nothing grown back")
	}
	// Garbage again, then quiet: released again, though sooner than
	// minInterval after the last look, not after the last release.
	garbage(t)
	r.step(now.Add(time.Second))
	if r.step(now.Add(2*time.Second)) != true {
		t.Fatal("no second release once quiet with garbage again")
	}
	if r.step(now.Add(3*time.Second)) || r.step(now.Add(4*time.Second)) {
		t.Fatal("released twice in minInterval")
	}
	runtime.KeepAlive(live)
	// The next test starts from a small heap goal.
	live = nil
	runtime.GC()
}

// TestRelease: started, Release collects a burst's garbage once the
// process is quiet.
func TestRelease(t *testing.T) {
	defer func(tick time.Duration) { releaseTick = tick }(releaseTick)
	releaseTick = 20 * time.Millisecond
	live := make([][]byte, 0, 512)
	for range 512 {
		live = append(live, make([]byte, 64<<10))
	}
	n := releases.Load()
	garbage(t)
	r := StartRelease()
	defer r.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		objects, l := heapSample()
		if releases.Load() > n && objects < l+4<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s of quiet: %d KiB of objects, %d KiB live; %d releases", objects>>10, l>>10, releases.Load()-n)
		}
		time.Sleep(releaseTick)
	}
	runtime.KeepAlive(live)
	live = nil
	runtime.GC()
}

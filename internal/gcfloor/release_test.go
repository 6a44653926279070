package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// freeBytes returns the heap's free pages not yet returned to the system.
func freeBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return sample(s[0])
}

// TestRelease: the free pages below the heap goal, which the runtime
// keeps, go back to the system once the process is quiet, and not while
// it allocates.
func TestRelease(t *testing.T) {
	defer func(tick, iv time.Duration) { releaseTick, minInterval = tick, iv }(releaseTick, minInterval)
	releaseTick, minInterval = 20*time.Millisecond, 100*time.Millisecond

	// 32 MiB live puts the goal near 64 MiB; 32 MiB of garbage, once
	// collected, leaves free pages below it.
	live := make([][]byte, 0, 512)
	for range 512 {
		live = append(live, make([]byte, 64<<10))
	}
	garbage := func() {
		for range 512 {
			sink = make([]byte, 64<<10)
		}
		runtime.GC()
	}
	garbage()
	if f := freeBytes(); f < 8<<20 {
		t.Fatalf("only %d KiB free after the garbage: the test needs more", f>>10)
	}
	// The runtime alone keeps them.
	time.Sleep(10 * releaseTick)
	if f := freeBytes(); f < 8<<20 {
		t.Fatalf("the runtime returned the free pages by itself (%d KiB left): the test proves nothing", f>>10)
	}

	r := StartRelease()
	defer r.Stop()
	// Busy: more than quietBytes every tick.
	n := releases.Load()
	for end := time.Now().Add(20 * releaseTick); time.Now().Before(end); {
		garbage()
	}
	if got := releases.Load() - n; got != 0 {
		t.Fatalf("%d releases while the process allocated", got)
	}
	// Quiet: released within a few ticks.
	deadline := time.Now().Add(5 * time.Second)
	for releases.Load() == n || freeBytes() > minRelease {
		if time.Now().After(deadline) {
			t.Fatalf("still %d KiB free, %d releases, after 5s of quiet", freeBytes()>>10, releases.Load()-n)
		}
		time.Sleep(releaseTick)
	}
	// And once: nothing grew back.
	time.Sleep(2 * minInterval)
	if got := releases.Load() - n; got != 1 {
		t.Fatalf("%d releases while quiet, want 1", got)
	}
	runtime.KeepAlive(live)
	// The next test starts from a small heap goal.
	live = nil
	runtime.GC()
}

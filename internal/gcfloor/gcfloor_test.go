package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var sink []byte

// churn allocates n bytes of short-lived garbage, 1 KiB at a time, and
// returns how many collections ran meanwhile.
func churn(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	for i := 0; i < n>>10; i++ {
		sink = make([]byte, 1<<10)
	}
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// waitPercent collects until the floor, which adjusts after each cycle
// on a goroutine of the runtime's, has set a GOGC that ok accepts.
func waitPercent(t *testing.T, f *Floor, what string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(f.Percent()) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d %s", f.Percent(), what)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// A small live heap under load collects far less often with a floor: the
// goal is the floor, not twice the live heap.
func TestFewerCycles(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	// From a small live heap, whatever the tests before left.
	for deadline := time.Now().Add(5 * time.Second); ; {
		runtime.GC()
		if _, live := heapSample(); live < 4<<20 {
			break
		}
		if time.Now().After(deadline) {
			_, live := heapSample()
			t.Fatalf("the live heap stays at %d KiB", live>>10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	without := churn(512 << 20)

	f := Start(64<<20, 100)
	defer f.Stop()
	waitPercent(t, f, "with a live heap far below the floor, want more than 100", func(p int) bool { return p > 100 })
	with := churn(512 << 20)
	t.Logf("collections for 512 MiB of garbage: %d without a floor, %d with a 64 MiB floor (GOGC %d)", without, with, f.Percent())
	if with*3 > without {
		t.Errorf("%d collections with the floor, %d without: want at most a third", with, without)
	}
	// The floor is a floor, not a ceiling: once a cycle has found the
	// live heap small again, the goal is the floor. (Right after a cycle
	// that marked slowly on a busy machine, the goal can be higher for
	// a moment, until the floor adjusts: see the package documentation.
	// The count of cycles above does not tell one from the other.)
	runtime.GC()
	waitPercent(t, f, "after a collection of a small live heap, want 1600", func(p int) bool { return p == 1600 })
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if goal := ms.NextGC >> 20; goal < 60 || goal > 68 {
		t.Errorf("heap goal %d MiB with a 64 MiB floor and a small live heap", goal)
	}
}

// Once the live heap is above the floor, GOGC is the configured percent
// again; and Stop restores what was set before Start.
func TestLargeLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(80))
	f := Start(16<<20, 100)
	waitPercent(t, f, "with a small live heap, want more than 100", func(p int) bool { return p > 100 })
	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitPercent(t, f, "with 48 MiB live and a 16 MiB floor, want 100", func(p int) bool { return p == 100 })
	runtime.KeepAlive(live)
	f.Stop()
	if p := debug.SetGCPercent(80); p != 80 {
		t.Errorf("GOGC %d after Stop, want the 80 set before Start", p)
	}
}

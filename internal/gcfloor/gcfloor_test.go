package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
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

// A small live heap under load collects far less often with a floor: the
// goal is the floor, not twice the live heap.
func TestFewerCycles(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	without := churn(256 << 20)

	f := Start(64<<20, 100)
	defer f.Stop()
	runtime.GC() // the floor adjusts after a cycle
	with := churn(256 << 20)
	t.Logf("collections for 256 MiB of garbage: %d without a floor, %d with a 64 MiB floor (GOGC %d)", without, with, f.Percent())
	if f.Percent() <= 100 {
		t.Errorf("GOGC %d with a live heap far below the floor, want more than 100", f.Percent())
	}
	if with*4 > without {
		t.Errorf("%d collections with the floor, %d without: want at most a quarter", with, without)
	}
	// The floor is a floor, not a ceiling: the heap stops near it.
	if with < 3 {
		t.Errorf("%d collections for 256 MiB with a 64 MiB floor: the heap grew past the floor", with)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.NextGC < 48<<20 || ms.NextGC > 72<<20 {
		t.Errorf("heap goal %d MiB with a 64 MiB floor", ms.NextGC>>20)
	}
}

// Once the live heap is above the floor, GOGC is the configured percent
// again; and Stop restores what was set before Start.
func TestLargeLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(80))
	f := Start(16<<20, 100)
	runtime.GC()
	if f.Percent() <= 100 {
		t.Fatalf("GOGC %d with a small live heap, want more than 100", f.Percent())
	}
	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	runtime.GC() // the cleanup of the first cycle runs after it
	if p := f.Percent(); p != 100 {
		t.Errorf("GOGC %d with 48 MiB live and a 16 MiB floor, want 100", p)
	}
	runtime.KeepAlive(live)
	f.Stop()
	if p := debug.SetGCPercent(80); p != 80 {
		t.Errorf("GOGC %d after Stop, want the 80 set before Start", p)
	}
}

package fifo

import "testing"

// TestPush: a queue consumed from its front (an s2s stream's in-flight
// window, the queue store's pending puts); Push keeps its order, moves it back to the start of its array
// instead of making a new one, and leaves no consumed entry behind for
// the collector to keep.
type entry struct{ id uint64 }

func TestPush(t *testing.T) {
	var q, arr []entry
	next, first := uint64(1), uint64(1) // the next entry pushed, the oldest not consumed
	push := func(n int) {
		for range n {
			q = Push(q, &arr, entry{id: next})
			next++
		}
	}
	consume := func(n int) {
		for i, e := range q[:n] {
			if want := first + uint64(i); e.id != want {
				t.Fatalf("entry %d is %d", want, e.id)
			}
		}
		clear(q[:n]) // as the callers do
		q = q[n:]
		first += uint64(n)
		if len(q) == 0 {
			q = nil
		}
	}
	// A window of 512 acknowledged 64 at a time, as on a busy stream.
	push(512)
	for range 100 {
		consume(64)
		push(64)
	}
	size := len(arr)
	allocs := testing.AllocsPerRun(100, func() {
		consume(64)
		push(64)
	})
	if allocs != 0 || len(arr) != size {
		t.Errorf("steady window: %v allocations per round, array %d then %d entries", allocs, size, len(arr))
	}
	// Everything outside the queue is cleared.
	for i, e := range arr {
		if e.id != 0 && e.id < first {
			t.Fatalf("array slot %d still holds consumed entry %d", i, e.id)
		}
	}
	// Emptied, then used again: the same array, in order.
	consume(len(q))
	push(10)
	consume(10)
	if len(arr) != size {
		t.Errorf("array %d entries after emptying, want %d", len(arr), size)
	}
}

// Package fifo keeps a queue that is consumed from its front in one array
// that it reuses: a busy queue allocates only while it grows.
package fifo

import "slices"

// Push appends v to q, a queue consumed from its front (the caller clears
// and slices off what it consumed) that lives in the array *arr, kept whole
// (len(*arr) == cap(*arr)). When q reaches the end of the array and at
// least half of the array before it was consumed, q moves back to the
// start of the array instead of into a new one. An empty or nil q starts
// again at the start of the array.
func Push[T any](q []T, arr *[]T, v T) []T {
	a := *arr
	switch {
	case len(a) == 0:
	case len(q) == 0:
		q = a[:0]
	case len(q) == cap(q) && 2*len(q) <= len(a) && &q[:cap(q)][cap(q)-1] == &a[len(a)-1]:
		n := copy(a, q)
		clear(a[n:]) // what moved, and what was consumed
		q = a[:n]
	}
	if len(q) == cap(q) {
		// Twice what is queued, so that the queue moves back to the
		// start once half of it was consumed, rather than grow again.
		q = slices.Grow(q, len(q)+1)
		*arr = q[:cap(q)]
	}
	return append(q, v)
}

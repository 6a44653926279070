// Package leaktest finds the goroutines a test left behind: take Last
// before starting what the test checks, and after stopping it, Since lists
// the goroutines started in between that are still running.
package leaktest

import (
	"fmt"
	"runtime"
	"strings"
)

// Last returns the highest id of a running goroutine: ids only grow, so
// goroutines started later have higher ones.
func Last() int {
	n := 0
	for _, g := range stacks() {
		n = max(n, id(g))
	}
	return n
}

// Since returns the stacks, separated by blank lines, of the goroutines
// newer than first that keep accepts (all when keep is nil), leaving out
// those running test code (a file ending in _test.go).
func Since(first int, keep func(stack string) bool) string {
	var out []string
	for _, g := range stacks() {
		if id(g) <= first || strings.Contains(g, "_test.go") {
			continue
		}
		if keep == nil || keep(g) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func stacks() []string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Split(string(buf), "\n\n")
}

// id reads the id in a stack's "goroutine N [state]:" line.
func id(stack string) int {
	var n int
	fmt.Sscanf(stack, "goroutine %d ", &n)
	return n
}

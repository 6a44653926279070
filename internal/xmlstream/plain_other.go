//go:build !amd64 || purego

package xmlstream

// plainRun is the assembly version's contract in Go, for the other
// architectures: the caller's eight-byte loop does the work.
func plainRun(b []byte, x byte) (n int, high bool) { return 0, false }

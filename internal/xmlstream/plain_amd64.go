//go:build amd64 && !purego

package xmlstream

import "golang.org/x/sys/cpu"

// useAVX2 picks the kernel: 32 bytes a step with AVX2, else 16 with
// SSE2, which every amd64 processor has.
var useAVX2 = cpu.X86.HasAVX2

// plainRun returns the length n of the run at the start of b that text
// scanning passes over at once, and whether that run holds non-ASCII
// bytes. The run ends before the first control character other than
// tab, LF and CR, before '<', '&' or x, or where fewer than a step's
// bytes are left: the caller scans on from b[n]. Non-ASCII bytes do not
// end it; the caller checks them as UTF-8.
func plainRun(b []byte, x byte) (n int, high bool) {
	if useAVX2 {
		return plainRunAVX2(b, x)
	}
	return plainRunSSE2(b, x)
}

//go:noescape
func plainRunSSE2(b []byte, x byte) (n int, high bool)

//go:noescape
func plainRunAVX2(b []byte, x byte) (n int, high bool)

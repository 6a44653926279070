//go:build amd64 && !purego

package xmlstream

import "golang.org/x/sys/cpu"

// plainBlock is how many bytes plainRun examines at a time: 32 with
// AVX2, else 16 (SSE2, which every amd64 processor has).
var plainBlock = 16

var useAVX2 = cpu.X86.HasAVX2

func init() {
	if useAVX2 {
		plainBlock = 32
	}
}

// plainRun returns the length n of the run at the start of b that text
// scanning passes over at once, and whether that run holds non-ASCII
// bytes. The run ends before the first control character other than
// tab, LF and CR, before '<', '&' or x, or where fewer than plainBlock
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

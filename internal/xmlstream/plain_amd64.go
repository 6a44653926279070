//go:build amd64 && !purego

package xmlstream

// plainBlock is how many bytes plainRun examines at a time.
const plainBlock = 16

// plainRun returns the length n of the run at the start of b that text
// scanning passes over at once, and whether that run holds non-ASCII
// bytes. The run ends before the first control character other than
// tab, LF and CR, before '<', '&' or x, or where fewer than plainBlock
// bytes are left: the caller scans on from b[n]. Non-ASCII bytes do not
// end it; the caller checks them as UTF-8.
//
//go:noescape
func plainRun(b []byte, x byte) (n int, high bool)

package s2s

import (
	"runtime"
	"strings"

	"github.com/s2sd/s2sd/internal/xmlstream"
)

// ReadNext reads the next element the peer sent on c (tests only).
func ReadNext(c *Conn) (*xmlstream.Element, error) { return c.r.Next() }

// Goroutines returns how many goroutines have fn in their stack (tests
// only).
func Goroutines(fn string) int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// VerifyDANE is verifyDANE (tests only).
var VerifyDANE = verifyDANE

// AckTicks returns how many times acknowledgement ticks ran (tests only).
func AckTicks() int64 { return ackTicks.Load() }

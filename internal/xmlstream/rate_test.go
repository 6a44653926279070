package xmlstream

import (
	"testing"
	"time"
)

// TestLimiterPaces checks the total time of a paced burst, a property of
// the limiter's arithmetic (it can only be slower under load, never faster).
func TestLimiterPaces(t *testing.T) {
	l := NewLimiter(1000, 10)
	start := time.Now()
	for range 110 {
		l.Wait()
	}
	// 10 free, 100 at 1 ms each.
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("110 stanzas at 1000/s with burst 10 took %v, want at least 90ms", el)
	}
	var none *Limiter
	none.Wait()
	if NewLimiter(0, 5) != nil {
		t.Fatal("rate 0 should mean no limiter")
	}
}

// TestMayStop: the eight-byte check never misses a byte the byte loop would
// stop at.
func TestMayStop(t *testing.T) {
	for _, q := range []byte{0, '\'', '"'} {
		tbl := stopTable(q)
		for c := 0; c < 256; c++ {
			for pos := 0; pos < 8; pos++ {
				var b [8]byte
				for i := range b {
					b[i] = 'a'
				}
				b[pos] = byte(c)
				x := uint64(0)
				for i := 7; i >= 0; i-- {
					x = x<<8 | uint64(b[i])
				}
				if tbl[c] && !mayStop(x, q) {
					t.Fatalf("q=%q: byte %#x at %d missed", q, c, pos)
				}
			}
		}
	}
}

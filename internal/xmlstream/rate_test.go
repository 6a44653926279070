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
		l.Wait(nil)
	}
	// 10 free, 100 at 1 ms each.
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("110 stanzas at 1000/s with burst 10 took %v, want at least 90ms", el)
	}
	var none *Limiter
	none.Wait(nil)
	if NewLimiter(0, 5) != nil {
		t.Fatal("rate 0 should mean no limiter")
	}
}

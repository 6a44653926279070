package xmlstream

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/s2sd/s2sd/stream"
)

// TestExactLimits: MaxStanza and MaxHeader hold however the bytes arrive,
// also when a whole element comes in one read.
func TestExactLimits(t *testing.T) {
	const max = 1024
	elem := func(n int) string {
		s := "<message><body></body></message>"
		return "<message><body>" + strings.Repeat("x", n-len(s)) + "</body></message>"
	}
	for _, tc := range []struct {
		name    string
		size    int
		oneByte bool
		ok      bool
	}{
		{"at limit", max, false, true},
		{"over limit", max + 1, false, false},
		{"twice the limit", 2 * max, false, false},
		{"at limit, byte reads", max, true, true},
		{"over limit, byte reads", max + 1, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = strings.NewReader(hdr + elem(tc.size))
			if tc.oneByte {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, Limits{MaxStanza: max})
			if _, err := r.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			el, err := r.Next()
			if tc.ok {
				if err != nil || len(el.Raw) != tc.size {
					t.Fatalf("Next: %v", err)
				}
				return
			}
			if !errors.Is(err, stream.ErrPolicyViolation) {
				t.Fatalf("Next: %v, want policy-violation", err)
			}
		})
	}
	r := NewReader(strings.NewReader(hdr), Limits{MaxHeader: 32})
	if _, err := r.ReadHeader(); !errors.Is(err, stream.ErrPolicyViolation) {
		t.Fatalf("header over MaxHeader: %v", err)
	}
}

// TestOffsetRange: however large the configured limits, a reader's buffer
// stays within the int32 offsets of a span.
func TestOffsetRange(t *testing.T) {
	lim := Limits{MaxStanza: 1 << 40, MaxHeader: math.MaxInt32}
	if n := lim.MaxBuffered(); n > math.MaxInt32 {
		t.Fatalf("MaxBuffered = %d, beyond a span", n)
	}
}

// TestElementSize: an Element, allocated for every stanza, stays in the
// 256-byte size class.
func TestElementSize(t *testing.T) {
	if n := unsafe.Sizeof(Element{}); n > 256 {
		t.Fatalf("Element is %d bytes", n)
	}
}

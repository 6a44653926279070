//go:build amd64 && !purego

package xmlstream

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// plainRunRef is plainRun's contract, a byte at a time.
func plainRunRef(b []byte, x byte) (n int, high bool) {
	full := len(b) - len(b)%plainBlock()
	for n < full {
		c := b[n]
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == '<' || c == '&' || c == x {
			break
		}
		high = high || c >= 0x80
		n++
	}
	return n, high
}

func checkPlainRun(t *testing.T, b []byte, x byte) {
	t.Helper()
	n, high := plainRun(b, x)
	wn, whigh := plainRunRef(b, x)
	if n != wn || high != whigh {
		t.Fatalf("plainRun(%q, %q) = %d, %v; want %d, %v", b, x, n, high, wn, whigh)
	}
}

// TestPlainRun checks the assembly against plainRunRef with every byte
// value at every position of a block, at every alignment, and with runs
// of random bytes.
func TestPlainRun(t *testing.T) {
	eachKernel(func(name string, avx2 bool) {
		t.Run(name, func(t *testing.T) {
			defer setKernel(avx2)()
			testPlainRun(t)
		})
	})
}

// eachKernel calls f for each kernel this processor runs.
func eachKernel(f func(name string, avx2 bool)) {
	f("SSE2", false)
	if cpu.X86.HasAVX2 {
		f("AVX2", true)
	}
}

// plainBlock is how many bytes the kernel in use examines at a time.
func plainBlock() int {
	if useAVX2 {
		return 32
	}
	return 16
}

// setKernel makes plainRun use the AVX2 kernel or the SSE2 one, and
// returns what puts the processor's choice back.
func setKernel(avx2 bool) func() {
	use := useAVX2
	useAVX2 = avx2
	return func() { useAVX2 = use }
}

func testPlainRun(t *testing.T) {
	base := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz ABCDE"), 4)
	for _, x := range []byte{'>', '\'', '"'} {
		for off := range plainBlock() {
			for pos := range 2 * plainBlock() {
				for c := range 256 {
					b := append([]byte(nil), base[off:]...)
					b[pos] = byte(c)
					checkPlainRun(t, b, x)
					checkPlainRun(t, b[:pos+1], x)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			switch rng.IntN(4) {
			case 0:
				b[i] = byte(rng.IntN(256))
			default:
				b[i] = byte(' ' + rng.IntN(95))
			}
		}
		checkPlainRun(t, b, "'\">"[rng.IntN(3)])
	}
}

func FuzzPlainRun(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef<"), byte('>'))
	f.Add([]byte("caf\xc3\xa9 au lait, s'il vous pla\xc3\xaet \x01"), byte('\''))
	f.Fuzz(func(t *testing.T, b []byte, x byte) {
		eachKernel(func(_ string, avx2 bool) {
			defer setKernel(avx2)()
			checkPlainRun(t, b, x)
		})
	})
}

func BenchmarkPlainRun(b *testing.B) {
	eachKernel(func(name string, avx2 bool) {
		b.Run(name, func(b *testing.B) {
			defer setKernel(avx2)()
			benchPlainRun(b)
		})
	})
}

func benchPlainRun(b *testing.B) {
	buf := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ. "), 64)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		plainRun(buf, '>')
	}
}

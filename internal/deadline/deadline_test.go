package deadline

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestConn: a write the peer does not take fails after the timeout; one it
// takes succeeds however long the connection was quiet before; after Fix,
// writes keep Fix's deadline.
func TestConn(t *testing.T) {
	const timeout = 100 * time.Millisecond
	a, b := net.Pipe() // no buffer: a write waits for the reader
	defer b.Close()
	c := New(a, timeout)

	start := time.Now()
	_, err := c.Write([]byte("nobody reads"))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write with no reader: %v", err)
	}
	if d := time.Since(start); d < timeout/2 || d > 10*timeout {
		t.Fatalf("failed after %v, timeout %v", d, timeout)
	}

	// Quiet for longer than the timeout, then a write that is read.
	time.Sleep(3 * timeout)
	go io.Copy(io.Discard, b)
	for range 3 {
		if _, err := c.Write([]byte("read")); err != nil {
			t.Fatalf("Write after a quiet spell: %v", err)
		}
		time.Sleep(timeout)
	}

	// Fix in the past: writes fail at once, though the peer reads.
	c.Fix(time.Unix(1, 0))
	if _, err := c.Write([]byte("too late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write after Fix: %v", err)
	}
	if c.Timeout() != timeout {
		t.Fatalf("Timeout() = %v", c.Timeout())
	}
}

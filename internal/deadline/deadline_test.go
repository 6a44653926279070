package deadline

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/loopback"
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

// TestPark: a parked connection's function runs, and its read tells why,
// when the peer writes, when a read deadline is set or passes, and when
// the connection is closed; on a connection without a socket, Park
// reports false.
func TestPark(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no epoll on " + runtime.GOOS)
	}
	// park parks c and returns what its first read gets once woken.
	park := func(t *testing.T, c *Conn) <-chan error {
		t.Helper()
		res := make(chan error, 1)
		if !c.Park(func() {
			var b [8]byte
			_, err := c.Read(b[:])
			res <- err
		}) {
			t.Fatal("Park failed on a TCP connection")
		}
		if !c.Parked() {
			t.Fatal("not Parked after Park")
		}
		return res
	}
	wait := func(t *testing.T, res <-chan error) error {
		t.Helper()
		select {
		case err := <-res:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("the park did not end")
			return nil
		}
	}
	t.Run("bytes", func(t *testing.T) {
		a, b := loopback.Pair(t)
		c := New(b, time.Second)
		res := park(t, c)
		a.Write([]byte("hello"))
		if err := wait(t, res); err != nil {
			t.Fatalf("read: %v", err)
		}
		if c.Parked() {
			t.Fatal("Parked after the park ended")
		}
	})
	t.Run("deadline set", func(t *testing.T) {
		_, b := loopback.Pair(t)
		c := New(b, time.Second)
		res := park(t, c)
		c.SetReadDeadline(time.Unix(1, 0))
		if err := wait(t, res); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
	})
	t.Run("deadline passes", func(t *testing.T) {
		_, b := loopback.Pair(t)
		c := New(b, time.Second)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		res := park(t, c)
		if err := wait(t, res); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		_, b := loopback.Pair(t)
		c := New(b, time.Second)
		res := park(t, c)
		c.Close()
		if err := wait(t, res); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read: %v", err)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if New(a, time.Second).Park(func() { t.Error("ran") }) {
			t.Fatal("Park succeeded without a socket")
		}
	})
}

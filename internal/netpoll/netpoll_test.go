package netpoll_test

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/loopback"
	"github.com/s2sd/s2sd/internal/netpoll"
)

func rawConn(t *testing.T, c *net.TCPConn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func linuxOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no epoll on " + runtime.GOOS)
	}
}

// TestReadable: a Waiter runs its function once its socket is readable,
// not before, and once only.
func TestReadable(t *testing.T) {
	linuxOnly(t)
	a, b := loopback.Pair(t)
	ran := make(chan struct{}, 2)
	w := netpoll.New(func() { ran <- struct{}{} })
	if !w.Arm(rawConn(t, b), time.Time{}) {
		t.Fatal("Arm failed on a TCP socket")
	}
	if n := netpoll.Armed(); n != 1 {
		t.Fatalf("Armed() = %d, want 1", n)
	}
	select {
	case <-ran:
		t.Fatal("ran before anything was written")
	case <-time.After(100 * time.Millisecond):
	}
	a.Write([]byte("x"))
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("did not run once the socket was readable")
	}
	a.Write([]byte("y"))
	w.Fire()
	select {
	case <-ran:
		t.Fatal("ran twice")
	case <-time.After(100 * time.Millisecond):
	}
	if n := netpoll.Armed(); n != 0 {
		t.Fatalf("Armed() = %d after the Waiter ran, want 0", n)
	}
	// The socket can be armed on again, and is readable at once.
	mustRun(t, arm(t, b, time.Time{}), "a socket with bytes waiting")
}

// arm arms a Waiter on c, until dl if it is not zero, and returns a
// channel closed when its function runs.
func arm(t *testing.T, c *net.TCPConn, dl time.Time) <-chan struct{} {
	t.Helper()
	ran := make(chan struct{})
	if !netpoll.New(func() { close(ran) }).Arm(rawConn(t, c), dl) {
		t.Fatal("Arm failed")
	}
	return ran
}

// mustRun fails the test unless ran is closed within 5 s: what should
// have woken the Waiter did not.
func mustRun(t *testing.T, ran <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not wake the Waiter", what)
	}
}

// TestEndOfStream: the peer closing its end wakes the Waiter.
func TestEndOfStream(t *testing.T) {
	linuxOnly(t)
	a, b := loopback.Pair(t)
	ran := arm(t, b, time.Time{})
	a.Close()
	mustRun(t, ran, "the peer's close")
}

// TestDeadline: a Waiter armed with a deadline runs at the deadline when
// nothing comes; Fire before it runs the function once, and the deadline
// then does nothing.
func TestDeadline(t *testing.T) {
	linuxOnly(t)
	_, b := loopback.Pair(t)
	start := time.Now()
	mustRun(t, arm(t, b, start.Add(100*time.Millisecond)), "the deadline")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("ran after %v, before the deadline", d)
	}

	var runs atomic.Int32
	w := netpoll.New(func() { runs.Add(1) })
	w.Arm(rawConn(t, b), time.Now().Add(50*time.Millisecond))
	w.Fire()
	time.Sleep(150 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times, want 1", n)
	}
}

// TestClosedSocket: a socket closed already cannot be armed on, and the
// function never runs, Fire included.
func TestClosedSocket(t *testing.T) {
	linuxOnly(t)
	_, b := loopback.Pair(t)
	rc := rawConn(t, b)
	b.Close()
	var runs atomic.Int32
	w := netpoll.New(func() { runs.Add(1) })
	if w.Arm(rc, time.Time{}) {
		t.Fatal("Arm succeeded on a closed socket")
	}
	w.Fire()
	time.Sleep(50 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times after a failed Arm", n)
	}
}

// TestRace: Waiters fired by their socket and by Fire at once, on many
// sockets, each run their function exactly once, and none stays armed.
func TestRace(t *testing.T) {
	linuxOnly(t)
	const conns, rounds = 16, 50
	var wg sync.WaitGroup
	for range conns {
		a, b := loopback.Pair(t)
		rc := rawConn(t, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for r := range rounds {
				var runs atomic.Int32
				done := make(chan struct{})
				w := netpoll.New(func() {
					if runs.Add(1) == 1 {
						close(done)
					}
				})
				if !w.Arm(rc, time.Time{}) {
					t.Error("Arm failed")
					return
				}
				go a.Write([]byte{byte(r)})
				if r%2 == 0 {
					go w.Fire()
				}
				<-done
				// Take the byte, so that the socket is quiet again.
				b.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := b.Read(buf[:1]); err != nil {
					t.Error(err)
					return
				}
				w.Fire()
				time.Sleep(time.Millisecond)
				if n := runs.Load(); n != 1 {
					t.Errorf("ran %d times", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := netpoll.Armed(); n != 0 {
		t.Fatalf("Armed() = %d after every Waiter ran", n)
	}
}

// BenchmarkWake measures a park and its end: arm a Waiter, the peer
// writes a byte, the function runs and takes it.
func BenchmarkWake(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("no epoll on " + runtime.GOOS)
	}
	x, y := loopback.Pair(b)
	rc, _ := y.SyscallConn()
	ran := make(chan struct{})
	buf := make([]byte, 1)
	for b.Loop() {
		if !netpoll.New(func() { ran <- struct{}{} }).Arm(rc, time.Time{}) {
			b.Fatal("Arm failed")
		}
		x.Write(buf)
		<-ran
		y.Read(buf)
	}
}

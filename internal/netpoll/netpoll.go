// Package netpoll runs a function once a socket is readable, without a
// goroutine waiting for it.
//
// A stream that idles for hours is, in s2sd, a parked stream: its reading
// goroutine ended when the stream went quiet, and the stream waits for its
// socket to be readable again. Waiting with a goroutine (a read, or the
// runtime's poller through syscall.RawConn) costs that goroutine's stack,
// 2 KiB at the least, for every idle stream: a tenth of what an idle TLS
// stream costs. A Waiter costs a few dozen bytes: one goroutine per process
// waits on an epoll instance of its own for every parked socket, and starts
// the waiter's function on a fresh goroutine when its socket becomes
// readable (bytes, the end of the stream, an error).
//
// The runtime's poller keeps the socket too: the two epoll instances watch
// it independently, and the socket's reads and deadlines stay the
// runtime's. What only the runtime sees (a read deadline set, the
// connection closed) must be told to the Waiter with Fire: the owner of
// the connection does that (deadline.Conn).
//
// Where there is no epoll (other systems), Arm reports false and the
// caller waits with a goroutine as before.
package netpoll

import (
	"sync"
	"syscall"
	"time"
)

// A Waiter runs its function, once, on a fresh goroutine when the socket
// it is armed on is readable, its deadline passes or Fire is called,
// whichever comes first.
type Waiter struct {
	f func()

	mu    sync.Mutex
	fired bool
	rc    syscall.RawConn // armed on, until fired
	t     *time.Timer     // the deadline's, until fired
	token uint64          // the poller's name for the Waiter
}

// New returns a Waiter that will run f.
func New(f func()) *Waiter { return &Waiter{f: f} }

// Arm starts watching the socket of rc, until dl if it is not zero. It
// reports false when the socket cannot be watched (no epoll here, or the
// socket is closed): f never runs then, Fire included, and the caller
// waits otherwise. A Waiter fired before Arm stays fired, and Arm reports
// true.
func (w *Waiter) Arm(rc syscall.RawConn, dl time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return true
	}
	if w.rc != nil {
		panic("netpoll: Waiter armed twice")
	}
	if !add(w, rc) {
		w.fired = true // and f never runs
		return false
	}
	w.rc = rc
	if !dl.IsZero() {
		w.t = time.AfterFunc(time.Until(dl), w.Fire)
	}
	return true
}

// Fire runs f on a fresh goroutine unless it ran already, and stops
// watching the socket.
func (w *Waiter) Fire() {
	w.mu.Lock()
	if w.fired {
		w.mu.Unlock()
		return
	}
	w.fired = true
	if w.rc != nil {
		remove(w, w.rc)
		w.rc = nil
	}
	if w.t != nil {
		w.t.Stop()
		w.t = nil
	}
	w.mu.Unlock()
	go w.f()
}

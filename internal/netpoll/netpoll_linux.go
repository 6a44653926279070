package netpoll

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller is the process's epoll instance for Waiters, and the goroutine
// that waits on it (started with the first Waiter). Each armed Waiter is
// registered one-shot under a token of its own, never reused, so that an
// event fetched just before its Waiter fired for another reason wakes no
// other Waiter.
//
// The goroutine waits in the runtime's poller, not in epoll_wait: the
// instance is itself watched by the runtime (epoll instances nest), and
// is read with a zero timeout once the runtime says it is readable. A
// goroutine blocked in a system call would keep its P until the runtime's
// monitor took it back, up to milliseconds later, with the goroutines it
// just started waiting behind it.
var poller struct {
	once sync.Once
	fd   int      // -1 when epoll is unavailable
	file *os.File // fd, for the runtime's poller; kept for the process's life

	mu      sync.Mutex
	next    uint64
	waiters map[uint64]*Waiter
}

func start() {
	poller.fd = -1
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	// Non-blocking, so that os.NewFile gives the runtime's poller the fd.
	if unix.SetNonblock(fd, true) != nil {
		unix.Close(fd)
		return
	}
	f := os.NewFile(uintptr(fd), "netpoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	poller.fd, poller.file = fd, f
	poller.waiters = map[uint64]*Waiter{}
	go loop(rc)
}

// add registers w on the socket of rc; w.mu is held.
func add(w *Waiter, rc syscall.RawConn) bool {
	poller.once.Do(start)
	if poller.fd < 0 {
		return false
	}
	poller.mu.Lock()
	poller.next++
	w.token = poller.next
	poller.waiters[w.token] = w
	poller.mu.Unlock()
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(w.token)),
		Pad:    int32(uint32(w.token >> 32)),
	}
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(poller.fd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		forget(w.token)
		return false
	}
	return true
}

// remove deregisters w from the socket of rc; w.mu is held. A socket
// closed already left the epoll instance when it closed (Control fails,
// and nothing is left to remove).
func remove(w *Waiter, rc syscall.RawConn) {
	forget(w.token)
	rc.Control(func(fd uintptr) {
		unix.EpollCtl(poller.fd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func forget(token uint64) {
	poller.mu.Lock()
	delete(poller.waiters, token)
	poller.mu.Unlock()
}

// loop fires the Waiters whose sockets are readable, for the life of the
// process.
func loop(rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 128)
	for {
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.EpollWait(int(fd), events, 0)
			if err != nil || n <= 0 {
				return false // wait until the runtime's poller says so
			}
			fire(events[:n])
			return true
		})
		if err != nil {
			// The runtime does not poll the instance: wait in epoll_wait.
			for {
				n, err := unix.EpollWait(poller.fd, events, -1)
				if err == nil {
					fire(events[:n])
				} // else EINTR; nothing else fails on a valid instance
			}
		}
	}
}

// fire fires the Waiters of events.
func fire(events []unix.EpollEvent) {
	for _, ev := range events {
		token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		poller.mu.Lock()
		w := poller.waiters[token]
		poller.mu.Unlock()
		if w != nil {
			w.Fire()
		}
	}
}

// Armed returns how many Waiters are armed and not yet fired.
func Armed() int {
	poller.mu.Lock()
	defer poller.mu.Unlock()
	return len(poller.waiters)
}

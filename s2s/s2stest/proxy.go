package s2stest

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a target and injects faults: it cuts
// live connections, refuses new ones, delays or corrupts bytes. Use its
// address in DNS instead of the target's to put it between two servers.
type Proxy struct {
	Addr   netip.AddrPort
	target string
	l      net.Listener

	mu      sync.Mutex
	conns   map[net.Conn]bool
	refuse  bool
	delay   time.Duration
	corrupt int // flip a byte after this many forwarded bytes (0: never)
	hung    map[net.Conn]bool
	seen    int
}

// NewProxy starts a proxy to target ("ip:port") until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: netip.MustParseAddrPort(l.Addr().String()), target: target, l: l, conns: map[net.Conn]bool{}, hung: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut() })
	return p
}

// SetTarget changes where new connections go.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Cut resets every live connection (a peer that vanishes).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Refuse makes the proxy close new connections at once (on) or forward
// them again (off).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Delay holds every forwarded chunk for d.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Hang stops forwarding on the live connections for good, without closing
// them: half-open connections, or a peer that hangs. New connections are
// forwarded as usual.
func (p *Proxy) Hang() {
	p.mu.Lock()
	for c := range p.conns {
		p.hung[c] = true
	}
	p.mu.Unlock()
}

// CorruptAfter flips one byte once n more bytes have been forwarded.
func (p *Proxy) CorruptAfter(n int) {
	p.mu.Lock()
	p.corrupt, p.seen = n, 0
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse, target := p.refuse, p.target
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		go p.forward(c, target)
	}
}

func (p *Proxy) forward(c net.Conn, target string) {
	u, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.copy(u, c); done <- struct{}{} }()
	go func() { p.copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.hung[src] || p.hung[dst] {
				p.mu.Unlock()
				select {} // never forward again; Cut or the test's end closes it
			}
			d := p.delay
			if p.corrupt > 0 {
				if p.seen+n >= p.corrupt {
					buf[p.corrupt-p.seen-1] ^= 0x55
					p.corrupt = 0
				} else {
					p.seen += n
				}
			}
			p.mu.Unlock()
			if d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

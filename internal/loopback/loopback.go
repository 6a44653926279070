// Package loopback gives tests the two ends of a TCP connection on the
// loopback interface: real sockets, for code that watches or writes to
// them without blocking (net.Pipe has no socket).
package loopback

import (
	"net"
	"testing"
)

// Pair returns both ends of a TCP connection on 127.0.0.1, closed when
// the test ends.
func Pair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		c.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

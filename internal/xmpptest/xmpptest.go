// Package xmpptest holds helpers that tests of several packages share.
package xmpptest

import (
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/route"
)

// Next returns the next stanza c receives, failing the test if none comes
// within timeout or the stream ends.
func Next(t testing.TB, c *component.Conn, timeout time.Duration) *route.Stanza {
	t.Helper()
	type res struct {
		s   *route.Stanza
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.Next()
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("component read: %v", r.err)
		}
		return r.s
	case <-time.After(timeout):
		t.Fatalf("component: no stanza within %v", timeout)
		return nil
	}
}

package leaktest

import (
	"strings"
	"testing"
	"time"
)

func parked(stop chan struct{}) { <-stop }

func TestSince(t *testing.T) {
	first := Last()
	stop := make(chan struct{})
	go parked(stop)
	time.Sleep(10 * time.Millisecond)
	// The goroutine runs code of this test file: left out.
	if s := Since(first, nil); s != "" {
		t.Errorf("test goroutines listed:\n%s", s)
	}
	close(stop)
	timer := time.AfterFunc(time.Hour, func() {})
	defer timer.Stop()
	if s := Since(first, func(g string) bool { return strings.Contains(g, "leaktest") }); strings.Contains(s, "parked") {
		t.Errorf("listed %s", s)
	}
}

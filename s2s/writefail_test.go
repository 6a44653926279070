package s2s

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/stream"
)

// TestWriteFailureEndsStream: when the stream's writes make no progress
// for the write timeout, the stream expires as if its clock had fired:
// connection-timeout, and a read under way wakes.
func TestWriteFailureEndsStream(t *testing.T) {
	a, b := net.Pipe() // no buffer: nobody reads b
	defer b.Close()
	raw := newTimedConn(a, 100*time.Millisecond)
	clk := newClock(raw, time.Minute, time.Minute)
	defer clk.stop()
	clk.ready()
	c := newConn(raw, raw, clk, xmlstream.Limits{}, slog.New(slog.DiscardHandler))
	c.startWriter(1 << 20)
	read := make(chan error, 1)
	go func() {
		_, err := raw.Read(make([]byte, 1))
		read <- err
	}()
	if err := c.SendRaw([]byte("<message/>")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the read under way ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream's read was not woken 5s after a write timeout of 100ms")
	}
	if e := clk.expired(); e == nil || e.Condition != stream.ConnectionTimeout {
		t.Fatalf("the stream expired with %v, want connection-timeout", e)
	}
}

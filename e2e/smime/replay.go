package smime

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Timestamp limits of RFC 3923 §6.9.
const (
	// MaxClockSkew is how far a timestamp may be from the receiver's
	// clock, in the past or the future.
	MaxClockSkew = 5 * time.Minute

	// ReplayWindow is how long a timestamp is remembered: a new one must be
	// greater than every one received in this window.
	ReplayWindow = 10 * time.Minute

	// DefaultReplayCacheSize bounds the number of senders remembered when
	// Agent.ReplayCacheSize is zero.
	DefaultReplayCacheSize = 10000
)

// Causes of an e2e.ErrBadTimestamp, named after the markings RFC 3923 §6.9
// suggests ("old timestamp", "future timestamp", "decreasing timestamp").
var (
	ErrNoTimestamp         = errors.New("smime: no timestamp")
	ErrNotUTC              = errors.New("smime: timestamp is not UTC")
	ErrOldTimestamp        = errors.New("smime: old timestamp")
	ErrFutureTimestamp     = errors.New("smime: future timestamp")
	ErrDecreasingTimestamp = errors.New("smime: decreasing timestamp (replayed)")
)

// checkWindow tests the first rule of §6.9: within five minutes of now.
func checkWindow(ts, now time.Time) error {
	switch {
	case ts.Before(now.Add(-MaxClockSkew)):
		return fmt.Errorf("%w: %s is more than %v before %s", ErrOldTimestamp, ts.Format(time.RFC3339Nano), MaxClockSkew, now.UTC().Format(time.RFC3339))
	case ts.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("%w: %s is more than %v after %s", ErrFutureTimestamp, ts.Format(time.RFC3339Nano), MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// replayCache remembers, per sender, the greatest timestamp accepted in
// the last ReplayWindow (RFC 3923 §6.9). One entry per sender suffices:
// accepted timestamps increase, so the last one accepted is the greatest,
// and once it is older than the window any timestamp that passes
// checkWindow is greater anyway. When the cache is full, expired entries
// go first, then the entry seen longest ago.
type replayCache struct {
	mu sync.Mutex
	m  map[string]replayEntry
}

type replayEntry struct {
	ts   time.Time // greatest timestamp accepted
	seen time.Time // receiver's clock when it was accepted
}

// accept checks that ts is greater than the last timestamp accepted from
// sender within the window and, if so, records it. Check and record are
// one step, so that two copies of a stanza opened at once cannot both pass.
func (c *replayCache) accept(sender string, ts, now time.Time, max int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]replayEntry)
	}
	if e, ok := c.m[sender]; ok && now.Sub(e.seen) <= ReplayWindow && !ts.After(e.ts) {
		return fmt.Errorf("%w: %s is not after %s", ErrDecreasingTimestamp, ts.Format(time.RFC3339Nano), e.ts.Format(time.RFC3339Nano))
	}
	if _, ok := c.m[sender]; !ok && len(c.m) >= max {
		c.evict(now, max)
	}
	c.m[sender] = replayEntry{ts: ts, seen: now}
	return nil
}

func (c *replayCache) evict(now time.Time, max int) {
	for k, e := range c.m {
		if now.Sub(e.seen) > ReplayWindow {
			delete(c.m, k)
		}
	}
	for len(c.m) >= max {
		var oldest string
		var t time.Time
		first := true
		for k, e := range c.m {
			if first || e.seen.Before(t) {
				oldest, t, first = k, e.seen, false
			}
		}
		delete(c.m, oldest)
	}
}

// len returns the number of senders remembered.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

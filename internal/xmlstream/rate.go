package xmlstream

import "time"

// Limiter paces a reader to a stanza rate: Wait sleeps when the stream
// sends faster than Rate stanzas a second beyond a burst, so reading stops
// and TCP pushes back on the peer instead of memory growing. A nil
// *Limiter, or one with Rate 0, never waits.
type Limiter struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of rate stanzas a second with the given
// burst (at least 1); rate 0 returns nil.
func NewLimiter(rate float64, burst int) *Limiter {
	if rate <= 0 {
		return nil
	}
	b := float64(max(burst, 1))
	return &Limiter{rate: rate, burst: b, tokens: b, last: time.Now()}
}

// Wait takes one token, sleeping until one is available. Before it
// sleeps, it wakes the writers holding elements read by r (Reader.Wake),
// when r is not nil: r's goroutine is the one that sleeps.
func (l *Limiter) Wait(r *Reader) {
	if l == nil {
		return
	}
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	if l.tokens < 0 {
		d := time.Duration(-l.tokens / l.rate * float64(time.Second))
		if r != nil {
			r.Wake()
		}
		time.Sleep(d)
	}
}

package s2s

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// Bouncer returns undeliverable stanzas to their senders; route.Router is
// one.
type Bouncer interface {
	Bounce(ctx context.Context, s *route.Stanza, e *stanza.Error)
}

// Pool sends stanzas to remote domains over one outbound stream per
// (local domain, remote domain) pair. Stanzas wait in a bounded queue while
// the stream comes up; failed attempts are retried with exponential backoff
// and jitter; when retries are spent, every queued stanza is bounced with
// remote-server-not-found or remote-server-timeout. Pool implements
// route.Handler.
type Pool struct {
	Dialer *Dialer
	// Bouncer receives what cannot be delivered.
	Bouncer Bouncer
	// QueueLimit bounds the stanzas waiting per pair (default 10000); past
	// it, stanzas bounce at once with resource-constraint.
	QueueLimit int
	// RetryFor is how long a pair keeps trying before its queue bounces
	// (default 2 minutes).
	RetryFor time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts (defaults
	// 1s and 30s).
	BackoffMin, BackoffMax time.Duration
	// IdleTimeout closes a stream that carried nothing for that long
	// (default 10 minutes).
	IdleTimeout time.Duration
	// KeepAlive is the interval of whitespace keepalives (default 60s).
	KeepAlive time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnStream, when set, is told when an outbound stream comes up and goes
	// down (metrics).
	OnStream func(c *Conn, up bool)
	// OnQueue, when set, is told of queue length changes (delta).
	OnQueue func(delta int)

	mu     sync.Mutex
	links  map[pair]*link
	closed bool
	wg     sync.WaitGroup
}

type pair struct{ local, remote string }

type link struct {
	p       *Pool
	pair    pair
	mu      sync.Mutex
	queue   []*route.Stanza
	conn    *Conn
	dialing bool
	last    time.Time
}

var _ route.Handler = (*Pool)(nil)

func (p *Pool) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// ErrPoolClosed is returned by Deliver after Shutdown.
var ErrPoolClosed = errors.New("s2s: pool closed")

// Deliver queues s for its remote domain.
func (p *Pool) Deliver(ctx context.Context, s *route.Stanza) error {
	pr := pair{local: s.From.Domainpart(), remote: s.To.Domainpart()}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return stanza.New(stanza.ServiceUnavailable, "server shutting down")
	}
	if p.links == nil {
		p.links = map[pair]*link{}
	}
	l := p.links[pr]
	if l == nil {
		l = &link{p: p, pair: pr}
		p.links[pr] = l
	}
	p.mu.Unlock()
	return l.deliver(s)
}

func (l *link) deliver(s *route.Stanza) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		if err := l.conn.Send(s); err == nil {
			l.last = time.Now()
			return nil
		}
		// The stream is going away: queue and redial.
		l.conn = nil
	}
	if len(l.queue) >= durInt(l.p.QueueLimit, 10000) {
		return stanza.New(stanza.ResourceConstraint, "too many stanzas queued for "+l.pair.remote)
	}
	l.queue = append(l.queue, s)
	if l.p.OnQueue != nil {
		l.p.OnQueue(1)
	}
	if !l.dialing {
		l.dialing = true
		l.p.wg.Add(1)
		go l.run()
	}
	return nil
}

// run brings the stream up, drains the queue, and bounces it when retries
// are spent.
func (l *link) run() {
	p := l.p
	defer p.wg.Done()
	log := p.logger().With("local", l.pair.local, "remote", l.pair.remote, "dir", "out")
	start := time.Now()
	backoff := durOr(p.BackoffMin, time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), durOr(p.RetryFor, 2*time.Minute)+time.Second)
		c, err := p.Dialer.DialContext(ctx, l.pair.local, l.pair.remote)
		cancel()
		if err == nil {
			l.up(c)
			return
		}
		var de *DialError
		cond := stanza.RemoteServerTimeout
		perm := false
		if errors.As(err, &de) {
			cond, perm = de.Condition, de.Permanent
		}
		if perm || time.Since(start)+backoff > durOr(p.RetryFor, 2*time.Minute) || p.isClosed() {
			log.Warn("remote domain unreachable, bouncing queued stanzas", "err", err, "condition", cond)
			l.fail(stanza.New(cond, "cannot reach "+l.pair.remote))
			return
		}
		log.Info("connection failed, retrying", "err", err, "in", backoff)
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		time.Sleep(wait)
		backoff = min(2*backoff, durOr(p.BackoffMax, 30*time.Second))
	}
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// up drains the queue onto a new stream and watches it.
func (l *link) up(c *Conn) {
	p := l.p
	l.mu.Lock()
	q := l.queue
	l.queue = nil
	for i, s := range q {
		if err := c.Send(s); err != nil {
			// Cannot happen on a fresh writer unless the queue exceeds its
			// bound: keep the rest queued and redial later.
			l.queue = append(l.queue, q[i:]...)
			q = q[:i]
			break
		}
	}
	if p.OnQueue != nil {
		p.OnQueue(-len(q))
	}
	l.conn = c
	l.dialing = false
	l.last = time.Now()
	l.mu.Unlock()
	if p.OnStream != nil {
		p.OnStream(c, true)
	}
	p.wg.Add(1)
	go l.watch(c)
}

// watch reads what the peer sends on an outbound stream (keepalives, stream
// errors, the end of the stream), sends keepalives, and closes idle streams.
func (l *link) watch(c *Conn) {
	p := l.p
	defer p.wg.Done()
	readErr := make(chan error, 1)
	go func() {
		for {
			el, err := c.r.Next()
			if err != nil {
				readErr <- err
				return
			}
			if el.Space == stream.NS && el.Local == "error" {
				se, _ := stream.Parse(el.Raw)
				if se != nil {
					readErr <- se
					return
				}
			}
		}
	}()
	ka := time.NewTicker(durOr(p.KeepAlive, time.Minute))
	defer ka.Stop()
	idle := durOr(p.IdleTimeout, 10*time.Minute)
	for {
		select {
		case err := <-readErr:
			if !errorIsEOF(err) {
				c.log.Info("outbound stream ended", "err", err)
			}
			l.down(c)
			c.close()
			return
		case <-c.Done():
			l.down(c)
			return
		case <-ka.C:
			l.mu.Lock()
			quiet := time.Since(l.last)
			l.mu.Unlock()
			if quiet > idle {
				c.log.Info("closing idle stream")
				l.down(c)
				c.close()
				return
			}
			c.w.Write([]byte{' '})
		}
	}
}

func (l *link) down(c *Conn) {
	l.mu.Lock()
	if l.conn == c {
		l.conn = nil
	}
	redial := len(l.queue) > 0 && !l.dialing
	if redial {
		l.dialing = true
		l.p.wg.Add(1)
		go l.run()
	}
	l.mu.Unlock()
	if l.p.OnStream != nil {
		l.p.OnStream(c, false)
	}
}

// fail bounces the whole queue.
func (l *link) fail(e *stanza.Error) {
	l.mu.Lock()
	q := l.queue
	l.queue = nil
	l.dialing = false
	l.mu.Unlock()
	if l.p.OnQueue != nil {
		l.p.OnQueue(-len(q))
	}
	for _, s := range q {
		if l.p.Bouncer != nil {
			ec := *e
			l.p.Bouncer.Bounce(context.Background(), s, &ec)
		}
	}
}

// Streams returns the outbound streams that are up.
func (p *Pool) Streams() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*Conn
	for _, l := range p.links {
		l.mu.Lock()
		if l.conn != nil {
			out = append(out, l.conn)
		}
		l.mu.Unlock()
	}
	return out
}

// Queued returns the number of stanzas waiting for a stream.
func (p *Pool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.links {
		l.mu.Lock()
		n += len(l.queue)
		l.mu.Unlock()
	}
	return n
}

// Shutdown refuses new stanzas, gives queued ones until ctx ends to go out,
// then bounces what is left and closes every stream with system-shutdown.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for _, l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for p.Queued() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	for _, l := range links {
		l.fail(stanza.New(stanza.RemoteServerTimeout, "server shutting down"))
		l.mu.Lock()
		c := l.conn
		l.mu.Unlock()
		if c != nil {
			c.CloseWithError(stream.New(stream.SystemShutdown, ""))
		}
	}
	return nil
}

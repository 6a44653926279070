package s2s

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2sd/s2sd/internal/fifo"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// Bouncer returns undeliverable stanzas to their senders; route.Router is
// one.
type Bouncer interface {
	Bounce(ctx context.Context, s *route.Stanza, e *stanza.Error)
}

// Pool sends stanzas to remote domains over one outbound stream per remote
// domain: the stream is opened for the local domain of the first stanza, and
// further local domains are added to it with dialback (XEP-0220 §2.4,
// multiplexing) where the peer offers dialback. Stanzas wait in a bounded queue while
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
	// Store, when set, keeps queued stanzas across restarts (see Restore);
	// nil keeps them in memory only.
	Store Store
	// AckEvery is how many stanzas go out between XEP-0198 requests for
	// acknowledgement (default 64); an idle stream asks every 50ms while
	// stanzas are unacknowledged. One request is out at a time: stanzas
	// sent while its answer is awaited are asked for when it comes (or
	// after a second without one), so that a busy stream asks once per
	// round trip rather than once per AckEvery stanzas.
	AckEvery int
	// AckTimeout closes a stream whose peer has not acknowledged anything
	// for that long while stanzas wait for it (default 30s): a half-open
	// connection or a stuck peer; what it did not acknowledge is sent
	// again on a new stream.
	AckTimeout time.Duration
	// MaxUnacked bounds the stanzas sent and not yet acknowledged on a
	// stream with XEP-0198 (default 512): more wait in the queue. It also
	// bounds the duplicates a broken stream can cause, since what was not
	// acknowledged is sent again.
	MaxUnacked int

	// liveMu guards the fields Update may change; a leaf lock, taken
	// under l.mu.
	liveMu sync.RWMutex

	mu     sync.Mutex
	links  map[string]*link // by remote domain
	closed atomic.Bool
	wg     sync.WaitGroup
	parked atomic.Int64 // see Parked
	// ctx is the base of every dial and backoff wait: Shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc
}

type link struct {
	p        *Pool
	remote   string
	authing  map[string]bool // local domains whose dialback is under way on conn
	refused  map[string]bool // local domains the peer refused on conn
	mu       sync.Mutex
	queue    []entry
	inflight []entry   // sent on conn, not yet acknowledged (XEP-0198)
	flights  []entry   // the array inflight lives in, whole (see fifo.Push)
	acked    uint32    // h of the last acknowledgement on conn
	unasked  int       // sent since the last <r/>
	awaiting bool      // an <r/> is not answered yet
	progress time.Time // last acknowledgement, or when inflight became non-empty
	asked    time.Time // last <r/>
	conn     *Conn
	dialing  bool
	gone     bool // removed from the pool: deliver to a new link

	// For operators (Links, Retry): the last failed attempt, when the
	// next one is due, and a wake-up for the backoff wait.
	lastErr   error
	nextRetry time.Time
	wake      chan struct{}
}

// entry is a stanza waiting for, or travelling on, a stream: its bytes
// alone, from which a bounce or Evict builds the stanza again (stanza). A
// queued stanza then holds no Element or route.Stanza, and a lent one
// leaves both to its stream for the next.
type entry struct {
	id    uint64 // in the Store; 0 without one
	local string
	raw   []byte // reframed for jabber:server
	at    time.Time
}

// stanza builds e's stanza again from its bytes, which parsed when it
// was queued.
func (e entry) stanza() (*route.Stanza, error) { return route.New(e.raw, nsServer) }

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
	if p.isClosed() {
		return stanza.New(stanza.ServiceUnavailable, "server shutting down")
	}
	// Arrived when its stream read it: no clock reading per stanza.
	at := s.At
	if at.IsZero() {
		at = time.Now()
	}
	// Queued until the remote server acknowledges it: its bytes alone.
	e := entry{local: s.FromDomain(), raw: s.KeepBytes(outCtx), at: at}
	return p.deliver(s.ToDomain(), e, s.Source, true)
}

// deliver queues e on remote's link, made anew if the one found was
// removed meanwhile. src is the stream e was read from, when deliver
// runs on its reading goroutine (route.Stanza.Source), or nil.
func (p *Pool) deliver(remote string, e entry, src xmlstream.Source, persist bool) error {
	for {
		if err := p.link(remote).deliver(e, src, persist); err != errGone {
			return err
		}
	}
}

var errGone = errors.New("s2s: link removed")

func (p *Pool) link(remote string) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.links == nil {
		p.links = map[string]*link{}
		p.ctx, p.cancel = context.WithCancel(context.Background())
	}
	l := p.links[remote]
	if l == nil {
		l = &link{p: p, remote: remote, wake: make(chan struct{}, 1)}
		p.links[remote] = l
	}
	return l
}

// Update changes a Pool that may be in use: f may set Dialer,
// QueueLimit, RetryFor, IdleTimeout, KeepAlive and AckTimeout. RetryFor,
// QueueLimit and Dialer apply to the next attempt or stanza, IdleTimeout
// and KeepAlive to streams that come up afterwards, AckTimeout at once.
// Other fields must not change once the Pool is in use.
func (p *Pool) Update(f func(p *Pool)) {
	p.liveMu.Lock()
	defer p.liveMu.Unlock()
	f(p)
}

// poolLive are the fields Update may change.
type poolLive struct {
	dialer                        *Dialer
	queueLimit                    int
	retryFor, idle, keep, ackWait time.Duration
}

func (p *Pool) live() poolLive {
	p.liveMu.RLock()
	defer p.liveMu.RUnlock()
	return poolLive{
		dialer:     p.Dialer,
		queueLimit: durInt(p.QueueLimit, 10000),
		retryFor:   durOr(p.RetryFor, 2*time.Minute),
		idle:       p.IdleTimeout,
		keep:       durOr(p.KeepAlive, time.Minute),
		ackWait:    durOr(p.AckTimeout, 30*time.Second),
	}
}

// Restore queues again what the Store kept from an earlier run, and starts
// delivering it. It returns the number of stanzas restored.
func (p *Pool) Restore() (int, error) {
	if p.Store == nil {
		return 0, nil
	}
	return p.RestoreFrom(p.Store.Load)
}

// RestoreFrom is Restore from load, which gives stanzas the Store holds
// under ids of its own: for a Store shared by several processes, where a
// process takes another's stanzas while it runs (package cluster's
// replicated queue).
func (p *Pool) RestoreFrom(load func(func(id uint64, local, remote string, raw []byte, at time.Time)) error) (int, error) {
	type restored struct {
		remote string
		e      entry
	}
	var entries []restored
	err := load(func(id uint64, local, remote string, raw []byte, at time.Time) {
		e := entry{id: id, local: local, raw: raw, at: at}
		s, err := e.stanza()
		if err != nil {
			p.logger().Warn("queue store: dropping an entry that does not parse", "err", err)
			p.Store.Delete(id)
			return
		}
		entries = append(entries, restored{s.To.Domainpart(), e})
	})
	// What load gave before an error is queued all the same: the Store
	// counts it as taken.
	for _, r := range entries {
		p.deliver(r.remote, r.e, nil, false)
	}
	if len(entries) > 0 {
		p.logger().Info("restored queued stanzas", "count", len(entries))
	}
	return len(entries), err
}

func (l *link) deliver(e entry, src xmlstream.Source, persist bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return errGone
	}
	if l.conn == nil && len(l.queue) >= l.p.live().queueLimit {
		return stanza.New(stanza.ResourceConstraint, "too many stanzas queued for "+l.remote)
	}
	if persist && l.p.Store != nil {
		e.id = l.p.Store.Put(e.local, l.remote, e.raw, e.at)
	}
	if l.conn != nil && l.refused[e.local] {
		l.bounce([]entry{e}, stanza.New(stanza.RemoteServerTimeout, l.remote+" refused "+e.local+" on the stream"))
		return nil
	}
	if l.conn != nil && len(l.queue) == 0 && l.window() && l.conn.Authenticated(l.remote, e.local) {
		// Sent as it arrives (Pool.Deliver): its arrival, moments ago,
		// is when it was sent, without a clock reading per stanza.
		now := int64(e.at.Sub(epoch))
		if !persist {
			now = mono() // restored: it arrived in an earlier run
		}
		err := l.send(e, src, now)
		if err == nil {
			return nil
		}
		if !errors.Is(err, xmlstream.ErrPendingFull) {
			// The stream is going away: queue and redial.
			c := l.conn
			l.lost(c)
			go c.Close()
		}
	}
	l.queue = append(l.queue, e)
	if l.p.OnQueue != nil {
		l.p.OnQueue(1)
	}
	if l.conn != nil {
		l.multiplex(e.local)
		// Waiting for room on the stream: the tick drains.
		l.conn.clk.armAck()
	}
	if l.conn == nil && !l.dialing {
		l.dialing = true
		l.p.wg.Add(1)
		go l.run()
	}
	return nil
}

// window reports whether the stream may take another stanza now; l.mu is
// held.
func (l *link) window() bool {
	return !l.conn.StreamManagement() || len(l.inflight) < durInt(l.p.MaxUnacked, 512)
}

// drain sends queued stanzas while the window allows; l.mu is held.
func (l *link) drain() {
	if l.conn == nil || len(l.queue) == 0 {
		return
	}
	// Entries of a local domain not yet authenticated on the stream wait
	// for its dialback (kept); the others go in order while the window
	// allows. What the window stops stays where it is in the queue, in
	// order, after the kept ones: the queue is not copied at every call.
	// (multiplex may replace l.queue meanwhile; as before, the queue
	// becomes what this call kept of q.)
	q := l.queue
	var kept []entry
	var now int64 // read once, for the first stanza sent
	sent, stop, broken := 0, false, false
	i := 0
	for ; i < len(q); i++ {
		e := q[i]
		if !l.window() {
			stop = true
			break
		}
		if !l.conn.Authenticated(l.remote, e.local) {
			l.multiplex(e.local)
			if l.refused[e.local] {
				// refuse bounced what was queued for e.local, e
				// included: it must not stay queued as well.
				continue
			}
			kept = append(kept, e)
			continue
		}
		if now == 0 {
			now = mono()
		}
		if err := l.send(e, nil, now); err != nil {
			// Full: the peer reads slowly; the tick drains later.
			// Anything else: the stream is going away.
			broken = !errors.Is(err, xmlstream.ErrPendingFull)
			stop = true
			break
		}
		sent++
	}
	rest := q[i:]
	if len(l.refused) > 0 {
		// What the window stopped may hold entries refuse bounced.
		rest = slices.DeleteFunc(slices.Clone(rest), func(e entry) bool { return l.refused[e.local] })
	}
	if len(kept) == 0 {
		clear(q[:i]) // sent: let the collector have them
		l.queue = rest
	} else {
		l.queue = append(kept, rest...)
	}
	if len(l.queue) == 0 {
		l.queue = nil
	}
	if stop && !broken {
		l.conn.clk.armAck()
	}
	if broken {
		c := l.conn
		l.lost(c)
		go c.Close()
	}
	if sent > 0 && l.p.OnQueue != nil {
		l.p.OnQueue(-sent)
	}
	if l.conn != nil && l.unasked > 0 && !l.awaiting && l.conn.StreamManagement() && len(l.queue) > 0 {
		l.askAck()
	}
}

// send writes e on the current stream; l.mu is held. With XEP-0198 the
// entry waits in inflight for its acknowledgement; without, it is done.
// src is where e was read from, when it is sent on src's reading goroutine.
// now is the time (mono).
func (l *link) send(e entry, src xmlstream.Source, now int64) error {
	c := l.conn
	if err := c.w.WriteFrom(src, e.raw); err != nil {
		return err
	}
	c.clk.stanzaSent(now)
	c.stanzas.Add(1)
	if c.StreamManagement() {
		if len(l.inflight) == 0 {
			l.progress = time.Now()
			c.clk.armAck()
		}
		l.inflight = fifo.Push(l.inflight, &l.flights, e)
		l.unasked++
		if l.askDue() {
			l.askAckFrom(src)
		}
	} else if e.id != 0 {
		l.p.Store.Delete(e.id)
	}
	return nil
}

// askDue reports whether AckEvery stanzas went out since the last
// request and none is awaited; l.mu is held.
func (l *link) askDue() bool {
	return !l.awaiting && l.unasked >= durInt(l.p.AckEvery, 64)
}

func (l *link) askAck() { l.askAckFrom(nil) }

// askAckFrom asks for an acknowledgement after a stanza read from src
// (link.send): the request goes out with that stanza's batch, when src's
// reading goroutine is about to wait (xmlstream.Writer.AppendFrom), not
// in a write of its own in the middle of it.
func (l *link) askAckFrom(src xmlstream.Source) {
	l.unasked = 0
	l.asked = time.Now()
	l.awaiting = true
	if l.conn != nil && l.conn.w != nil {
		l.conn.w.WriteFrom(src, ackRequest)
	}
}

var ackRequest = []byte("<r xmlns='" + nsSM + "'/>")

// ack handles <a h='N'/>: the first N-acked inflight entries are done.
func (l *link) ack(c *Conn, h uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != c {
		return
	}
	n := int(h - l.acked)
	if n < 0 || n > len(l.inflight) {
		c.log.Warn("acknowledgement for stanzas never sent", "h", h, "acked", l.acked, "inflight", len(l.inflight))
		n = len(l.inflight)
	}
	if l.p.Store != nil {
		ids := make([]uint64, 0, n)
		for _, e := range l.inflight[:n] {
			if e.id != 0 {
				ids = append(ids, e.id)
			}
		}
		l.p.Store.Delete(ids...)
	}
	// Consume the acknowledged entries in place: clear them, so that
	// the collector may free their stanzas, and move the start.
	// fifo.Push moves what is still in flight back to the start of the
	// array when the end is reached; copying the window at every
	// acknowledgement was 4% of a sending daemon's CPU, and a new array
	// each time the end was reached a fifth of its allocated bytes.
	clear(l.inflight[:n])
	l.inflight = l.inflight[n:]
	if len(l.inflight) == 0 {
		l.inflight = nil
	}
	l.acked = h
	l.progress = time.Now()
	l.awaiting = false
	l.drain()
	if l.conn == c && len(l.inflight) > 0 && l.askDue() {
		// Sent while the answer was awaited.
		l.askAck()
	}
}

// run brings the stream up, drains the queue, and bounces it when retries
// are spent.
func (l *link) run() {
	p := l.p
	defer p.wg.Done()
	log := p.logger().With("remote", l.remote, "dir", "out")
	// RetryFor is a stanza's lifetime: it counts from when the oldest
	// queued stanza arrived, across restarts (the store keeps that time).
	start := time.Now()
	l.mu.Lock()
	for _, e := range l.queue {
		if e.at.Before(start) {
			start = e.at
		}
	}
	l.mu.Unlock()
	backoff := durOr(p.BackoffMin, time.Second)
	for {
		// The stream is opened for the local domain at the head of the
		// queue; the others join it through dialback.
		l.mu.Lock()
		local := ""
		if len(l.queue) > 0 {
			local = l.queue[0].local
		}
		l.mu.Unlock()
		if local == "" {
			l.mu.Lock()
			l.dialing = false
			l.mu.Unlock()
			p.forget(l)
			return
		}
		live := p.live()
		ctx, cancel := context.WithTimeout(p.ctx, live.retryFor+time.Second)
		c, err := live.dialer.DialContext(ctx, local, l.remote)
		cancel()
		l.mu.Lock()
		l.lastErr, l.nextRetry = err, time.Time{}
		l.mu.Unlock()
		if err == nil {
			l.mu.Lock()
			empty := len(l.queue) == 0
			if empty {
				l.dialing = false
			}
			l.mu.Unlock()
			if empty {
				// Evicted while dialing: the stream is not wanted.
				c.Close()
				p.forget(l)
				return
			}
			l.up(c)
			return
		}
		var de *DialError
		cond := stanza.RemoteServerTimeout
		perm := false
		if errors.As(err, &de) {
			cond, perm = de.Condition, de.Permanent
		}
		if p.isClosed() && p.Store != nil {
			// Kept in the store for the next start.
			l.mu.Lock()
			l.dialing = false
			l.mu.Unlock()
			p.forget(l)
			return
		}
		if perm || time.Since(start)+backoff > live.retryFor || p.isClosed() {
			log.Warn("remote domain unreachable, bouncing queued stanzas", "err", err, "condition", cond)
			l.fail(stanza.New(cond, "cannot reach "+l.remote))
			return
		}
		log.Info("connection failed, retrying", "err", err, "in", backoff)
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		select {
		case <-l.wake: // stale: asked for when no wait was under way
		default:
		}
		l.mu.Lock()
		l.nextRetry = time.Now().Add(wait)
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.wake:
			t.Stop()
			log.Info("retrying now, as asked")
		case <-p.ctx.Done():
			t.Stop()
		}
		l.mu.Lock()
		l.nextRetry = time.Time{}
		l.mu.Unlock()
		backoff = min(2*backoff, durOr(p.BackoffMax, 30*time.Second))
	}
}

func (p *Pool) isClosed() bool { return p.closed.Load() }

// forget removes l from the pool if it has nothing to do: no stream, no
// dial, nothing queued. A domain seen once does not cost memory forever.
func (p *Pool) forget(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil && !l.dialing && len(l.queue) == 0 && len(l.inflight) == 0 && p.links[l.remote] == l {
		delete(p.links, l.remote)
		l.gone = true
	}
}

// up drains the queue onto a new stream and watches it. The stream's
// clock keeps its timers: idle, keepalives, and the acknowledgement tick
// while stanzas wait for one.
func (l *link) up(c *Conn) {
	p := l.p
	live := p.live()
	c.clk.configure(live.idle, live.keep, func() {
		// Whitespace keeps NATs open; a failed write means the stream is
		// gone.
		if err := c.w.Write([]byte{' '}); err != nil && !errors.Is(err, xmlstream.ErrPendingFull) {
			c.abort()
		}
	}, func() bool { return l.tick(c) })
	// Counted up before it carries a stanza: what it delivers is never
	// seen before the stream is.
	if p.OnStream != nil {
		p.OnStream(c, true)
	}
	l.mu.Lock()
	l.conn, l.acked, l.unasked, l.awaiting, l.inflight, l.flights = c, 0, 0, false, nil, nil
	l.authing, l.refused = map[string]bool{}, map[string]bool{}
	l.drain()
	if l.unasked > 0 && !l.awaiting && c.StreamManagement() {
		l.askAck()
	}
	l.dialing = false
	l.mu.Unlock()
	p.wg.Add(1)
	go l.watch(c)
}

// watch reads what the peer sends on an outbound stream (acknowledgements,
// dialback answers, stream errors, the end of the stream) until the stream
// ends, expires (idle) or is aborted. A stream quiet for parkAfter parks
// (park.go): the goroutine ends, and reading goes on, on a fresh one,
// once the socket is readable.
func (l *link) watch(c *Conn) {
	p := parking{can: xmlstream.CanWait(c.raw)}
	l.watchFrom(c, &p)
}

func (l *link) watchFrom(c *Conn, p *parking) {
	err := l.read(c, p)
	if err == errPark {
		park(c, &l.p.parked, func() { l.watchFrom(c, p) })
		return
	}
	defer l.p.wg.Done()
	switch e := c.clk.expired(); {
	case e != nil && e.Text == idleText:
		c.log.Info("closing idle stream")
	case e != nil:
		c.log.Info("outbound stream ended", "err", e)
	case errorIsEOF(err):
	default:
		c.log.Info("outbound stream ended", "err", err)
	}
	l.down(c)
	c.close()
}

// read handles what the peer sends until the stream fails or ends, or,
// when the socket can be waited on, returns errPark after parkAfter of
// quiet with nothing buffered.
func (l *link) read(c *Conn, p *parking) error {
	for {
		if err := p.arm(c); err != nil {
			return err
		}
		el, err := c.r.Next()
		if err != nil {
			var ne net.Error
			if !p.can || !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if err := p.timedOut(c); err != nil {
				return err
			}
			continue // in the middle of an element
		}
		switch {
		case el.Space == stream.NS && el.Local == "error":
			se, _ := stream.Parse(el.Raw)
			if se != nil {
				return se
			}
		case el.Space == nsSM && el.Local == "a":
			h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
			if err != nil {
				return stream.New(stream.BadFormat, "bad acknowledgement")
			}
			l.ack(c, uint32(h))
		case el.Space == nsDialback && el.Local == "result":
			d, err := parseDB(el)
			if err != nil {
				return err
			}
			l.multiplexed(c, d)
		case el.Space == nsSM && el.Local == "r":
			// Nothing is received on an outbound stream.
			c.SendRaw([]byte("<a xmlns='" + nsSM + "' h='0'/>"))
		}
	}
}

// tick runs every ackTick while stanzas wait for an acknowledgement or for
// room on the stream: it closes a stream whose peer stopped acknowledging
// (AckTimeout), asks for an acknowledgement of what was sent since the last
// request, and drains the queue. It reports whether to tick again.
func (l *link) tick(c *Conn) bool {
	l.mu.Lock()
	if l.conn != c {
		l.mu.Unlock()
		return false
	}
	if len(l.inflight) > 0 && time.Since(l.progress) > l.p.live().ackWait {
		c.log.Warn("no acknowledgement from the peer; closing the stream to send again on a new one", "unacknowledged", len(l.inflight))
		l.lost(c)
		l.mu.Unlock()
		c.abort()
		l.down(c) // redials for what was put back in the queue
		return false
	}
	// One request at a time: asked again while one is awaited only
	// after a second.
	if len(l.inflight) > 0 && (l.unasked > 0 && !l.awaiting || time.Since(l.asked) > time.Second) {
		l.askAck()
	}
	if len(l.queue) > 0 {
		l.drain()
	}
	again := l.conn == c && (len(l.inflight) > 0 || len(l.queue) > 0)
	l.mu.Unlock()
	return again
}

// multiplex asks the peer, with dialback, to accept local on the current
// stream as well (XEP-0220 §2.4); l.mu is held. A peer that offers no
// dialback cannot take another domain: that domain's stanzas bounce.
func (l *link) multiplex(local string) {
	c := l.conn
	if c == nil || l.authing[local] || l.refused[local] || c.Authenticated(l.remote, local) {
		return
	}
	if !c.canDialback {
		l.refuse(local, "offers no dialback to add "+local+" to the stream")
		return
	}
	l.authing[local] = true
	key := DialbackKey(l.p.live().dialer.Secret, l.remote, local, c.id)
	c.log.Info("adding a local domain to the stream with dialback", "local", local)
	if err := c.SendRaw(appendDB(nil, "result", dbElement{From: local, To: l.remote, Key: key})); err != nil {
		l.authing[local] = false
	}
}

// multiplexed handles the peer's answer to multiplex.
func (l *link) multiplexed(c *Conn, d dbElement) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != c || d.From != l.remote || !l.authing[d.To] {
		return
	}
	delete(l.authing, d.To)
	if d.Type == "valid" {
		c.authenticate(l.remote, d.To, "dialback")
		c.log.Info("local domain added to the stream", "local", d.To)
		l.drain()
		return
	}
	l.refuse(d.To, "refused "+d.To+" on the stream ("+d.Type+" "+d.ErrCond+")")
}

// refuse bounces what is queued for local, and what comes for it while
// the stream lasts; l.mu is held.
func (l *link) refuse(local, why string) {
	l.refused[local] = true
	l.conn.log.Warn("remote refused a local domain on the stream", "local", local, "why", why)
	var keep, out []entry
	for _, e := range l.queue {
		if e.local == local {
			out = append(out, e)
		} else {
			keep = append(keep, e)
		}
	}
	l.queue = keep
	if l.p.OnQueue != nil {
		l.p.OnQueue(-len(out))
	}
	go l.bounce(out, stanza.New(stanza.RemoteServerTimeout, l.remote+" "+why))
}

// bounce returns entries to their senders.
func (l *link) bounce(q []entry, e *stanza.Error) {
	for _, x := range q {
		if x.id != 0 {
			l.p.Store.Delete(x.id)
		}
		if l.p.Bouncer == nil {
			continue
		}
		s, err := x.stanza()
		if err != nil {
			l.p.logger().Error("a queued stanza does not parse; not bounced", "remote", l.remote, "err", err)
			continue
		}
		ec := *e
		l.p.Bouncer.Bounce(context.Background(), s, &ec)
	}
}

// lost forgets stream c; what it did not acknowledge goes back to the
// front of the queue, to be sent again on the next stream (at-least-once:
// the peer may have handled some of it). l.mu is held.
func (l *link) lost(c *Conn) {
	if l.conn != c {
		return
	}
	l.conn = nil
	if len(l.inflight) > 0 {
		c.log.Info("stream lost with unacknowledged stanzas; they will be sent again", "count", len(l.inflight))
		l.queue = append(append([]entry(nil), l.inflight...), l.queue...)
		if l.p.OnQueue != nil {
			l.p.OnQueue(len(l.inflight))
		}
		l.inflight, l.flights = nil, nil
	}
}

// down forgets stream c, which ended; what waits for a stream gets a new
// one. Calls after the first for c do nothing.
func (l *link) down(c *Conn) {
	first := false
	c.downOnce.Do(func() { first = true })
	if !first {
		return
	}
	l.mu.Lock()
	l.lost(c)
	redial := len(l.queue) > 0 && !l.dialing && !l.p.isClosed()
	if redial {
		l.dialing = true
		l.p.wg.Add(1)
		go l.run()
	}
	l.mu.Unlock()
	if l.p.OnStream != nil {
		l.p.OnStream(c, false)
	}
	if !redial {
		l.p.forget(l)
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
	l.bounce(q, e)
	l.p.forget(l)
}

// Domains returns the remote domains with a queue or a stream.
func (p *Pool) Domains() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.links))
	for d := range p.links {
		out = append(out, d)
	}
	return out
}

// Evict ends the stream to remote, if any, and takes out of the pool
// (and its store) every stanza queued for remote or sent on that stream
// without acknowledgement, in order: a cluster hands them to the node that
// now owns remote. With a Store that is a Releaser, the stanzas it keeps
// stay there for the next owner to load and are not returned.
func (p *Pool) Evict(remote string) []*route.Stanza {
	p.mu.Lock()
	l := p.links[remote]
	p.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	c := l.conn
	if c != nil {
		l.lost(c)
	}
	q := l.queue
	l.queue = nil
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if p.OnQueue != nil {
		p.OnQueue(-len(q))
	}
	// A Store that can keep them for the next owner does; the others
	// leave with the caller.
	keep := map[uint64]bool{}
	if r, ok := p.Store.(Releaser); ok {
		ids := make([]uint64, 0, len(q))
		for _, e := range q {
			if e.id != 0 {
				ids = append(ids, e.id)
				keep[e.id] = true
			}
		}
		for _, id := range r.Release(ids...) {
			delete(keep, id)
		}
	}
	out := make([]*route.Stanza, 0, len(q))
	for _, e := range q {
		if keep[e.id] {
			continue
		}
		if e.id != 0 {
			p.Store.Delete(e.id)
		}
		s, err := e.stanza()
		if err != nil {
			p.logger().Error("a queued stanza does not parse; dropped", "remote", remote, "err", err)
			continue
		}
		out = append(out, s)
	}
	p.forget(l)
	return out
}

// LinkInfo describes the pool's state for one remote domain (Links).
type LinkInfo struct {
	Remote string
	// Stream is the outbound stream, nil while none is up.
	Stream *Conn
	// Queued stanzas wait for a stream; Unacked were sent on Stream and
	// not yet acknowledged (XEP-0198).
	Queued, Unacked int
	// Oldest is when the oldest of them arrived; zero when there are none.
	Oldest time.Time
	// Dialing is true while a stream is being brought up or a failed
	// attempt waits for its retry, due at NextRetry (zero when not
	// waiting).
	Dialing   bool
	NextRetry time.Time
	// LastError is why the last attempt to bring a stream up failed; nil
	// after a success.
	LastError error
}

// Links returns the state of every remote domain with a queue, a stream
// or an attempt under way.
func (p *Pool) Links() []LinkInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]LinkInfo, 0, len(p.links))
	for _, l := range p.links {
		l.mu.Lock()
		li := LinkInfo{Remote: l.remote, Stream: l.conn, Queued: len(l.queue), Unacked: len(l.inflight), Dialing: l.dialing, NextRetry: l.nextRetry, LastError: l.lastErr}
		for _, q := range [][]entry{l.inflight, l.queue} {
			for _, e := range q {
				if li.Oldest.IsZero() || e.at.Before(li.Oldest) {
					li.Oldest = e.at
				}
			}
		}
		l.mu.Unlock()
		out = append(out, li)
	}
	return out
}

// Retry cuts short the backoff wait of remote's link, if it waits: the
// next attempt starts now. It reports whether a wait was cut.
func (p *Pool) Retry(remote string) bool {
	p.mu.Lock()
	l := p.links[remote]
	p.mu.Unlock()
	if l == nil {
		return false
	}
	l.mu.Lock()
	waiting := !l.nextRetry.IsZero()
	l.mu.Unlock()
	if !waiting {
		return false
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// Bounce returns the stanzas queued for remote to their senders with e,
// and removes them from the Store. Stanzas sent on a stream and not yet
// acknowledged stay: the peer may have them. A backoff wait under way
// ends, and with it the attempts, since nothing waits any more. It
// returns the number of stanzas bounced.
func (p *Pool) Bounce(remote string, e *stanza.Error) int {
	p.mu.Lock()
	l := p.links[remote]
	p.mu.Unlock()
	if l == nil {
		return 0
	}
	l.mu.Lock()
	q := l.queue
	l.queue = nil
	waiting := !l.nextRetry.IsZero()
	l.mu.Unlock()
	if p.OnQueue != nil && len(q) > 0 {
		p.OnQueue(-len(q))
	}
	l.bounce(q, e)
	if waiting {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	p.forget(l)
	return len(q)
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

// Parked returns how many outbound streams are parked: quiet, they hold
// no read buffer and, on Linux, no goroutine until the peer writes
// (park.go).
func (p *Pool) Parked() int { return int(p.parked.Load()) }

// Queued returns the number of stanzas waiting for a stream.
func (p *Pool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.links {
		l.mu.Lock()
		n += len(l.queue) + len(l.inflight)
		l.mu.Unlock()
	}
	return n
}

// Shutdown refuses new stanzas, gives queued ones until ctx ends to go out
// (and be acknowledged, with XEP-0198), then stops dials and backoff waits,
// closes every stream with system-shutdown, and waits for the pool's
// goroutines. What is left is bounced, or, with a Store, kept for the next
// start.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.closed.Store(true)
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
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for _, l := range p.links {
		links = append(links, l)
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	for _, l := range links {
		l.mu.Lock()
		c := l.conn
		l.mu.Unlock()
		if c != nil {
			c.CloseWithError(stream.New(stream.SystemShutdown, ""))
		}
	}
	// Streams close within closeTimeout and dials end with p.ctx.
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(closeTimeout + time.Second):
		err = errors.New("s2s: pool goroutines still running after shutdown")
	}
	if p.Store == nil {
		for _, l := range links {
			l.fail(stanza.New(stanza.RemoteServerTimeout, "server shutting down"))
		}
	}
	return err
}

// Durable returns once every stanza the pool has accepted so far is in
// its Store's file, where the Store can tell (boltstore.Store); at once without
// a Store. A cluster node acknowledges stanzas another node hands it only
// then, so that killing it loses none of them.
func (p *Pool) Durable(ctx context.Context) error {
	if d, ok := p.Store.(interface{ Durable(context.Context) error }); ok {
		return d.Durable(ctx)
	}
	return nil
}

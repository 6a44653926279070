package cluster

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
)

// forwardWindow bounds the stanzas sent to one node and not answered yet.
// A sender whose window is full waits (up to ForwardTimeout) for an
// answer: the stream it reads from slows down instead of this node
// buffering without bound.
const forwardWindow = 256

var (
	errWindowFull = errors.New("cluster: too many stanzas waiting for the owner's answer")
	errNoAnswer   = errors.New("cluster: the owner did not answer")
	errNoNode     = errors.New("cluster: nothing listens for the owner")
)

// pipeline sends stanzas for remote domains to their owners without
// waiting for each answer. NATS keeps the order of one connection's
// messages, and the owner takes them in that order, so a stream's stanzas
// stay in order while one answer is on its way. Answers come to one
// subscription; a stanza the owner refused bounces, and one it did not
// take (no answer, stopping, nothing listening) waits with the others
// that cannot go (retry) for whichever node owns it then: only then may
// it arrive after stanzas sent later.
type pipeline struct {
	// Answers come to answers, inbox._, with the sequence number in a
	// header (hdrSeq), or from a node that does not set it, to
	// inbox.<seq> (base 36: no sequence number is "_").
	inbox, answers string
	sub            *nats.Subscription

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]*sent
	windows map[string]chan struct{} // per node: one token per stanza sent
	// suspect are the nodes whose last answer was missing or said to try
	// again: stanzas for them wait (retry probes them one at a time)
	// until one answers.
	suspect map[string]bool
}

type sent struct {
	s    *route.Stanza
	node string
	at   time.Time
}

// startPipeline subscribes to the answers.
func (c *Cluster) startPipeline() error {
	// An inbox of its own: the client's request inbox (NewRespInbox)
	// shares its prefix with every request this connection makes.
	inbox := c.nc.NewInbox()
	p := &pipeline{inbox: inbox, answers: inbox + "._", pending: map[uint64]*sent{}, windows: map[string]chan struct{}{}, suspect: map[string]bool{}}
	sub, err := c.nc.Subscribe(p.inbox+".*", c.answered)
	if err != nil {
		return err
	}
	p.sub = sub
	c.pipe = p
	c.wg.Add(1)
	go c.every(c.cfg.ForwardTimeout/4, c.expire)
	return nil
}

// send hands s to node without waiting for its answer. An error means
// it was not sent.
func (c *Cluster) send(node string, s *route.Stanza) error {
	p := c.pipe
	p.mu.Lock()
	w := p.windows[node]
	if w == nil {
		w = make(chan struct{}, forwardWindow)
		p.windows[node] = w
	}
	p.mu.Unlock()
	select {
	case w <- struct{}{}:
	default:
		// About to wait on the reading goroutine: what it handled
		// before goes out meanwhile.
		xmlstream.Wake(s.Source)
		t := time.NewTimer(c.cfg.ForwardTimeout)
		select {
		case w <- struct{}{}:
			t.Stop()
		case <-t.C:
			return errWindowFull
		}
	}
	m := forwardMsg(node, kindRemote, s)
	p.mu.Lock()
	p.seq++
	seq := p.seq
	leaveStream(s)
	p.pending[seq] = &sent{s: s, node: node, at: time.Now()}
	p.mu.Unlock()
	seq36 := strconv.FormatUint(seq, 36)
	m.Reply = p.inbox + "." + seq36
	m.Header.Set(hdrAnswerTo, p.answers)
	m.Header.Set(hdrSeq, seq36)
	if err := c.nc.PublishMsg(m); err != nil {
		c.settle(seq)
		return err
	}
	return nil
}

// settle forgets the stanza sent as seq and frees its place in the
// window; it returns it, or nil when it was settled already.
func (c *Cluster) settle(seq uint64) *sent {
	p := c.pipe
	p.mu.Lock()
	e := p.pending[seq]
	delete(p.pending, seq)
	var w chan struct{}
	if e != nil {
		w = p.windows[e.node]
	}
	p.mu.Unlock()
	if w != nil {
		<-w
	}
	return e
}

// answered takes an owner's answer to a stanza sent: on the answer
// subject, numbered in hdrSeq, or on the stanza's reply subject.
func (c *Cluster) answered(m *nats.Msg) {
	n := m.Header.Get(hdrSeq)
	if m.Subject != c.pipe.answers {
		n = m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	}
	seq, err := strconv.ParseUint(n, 36, 64)
	if err != nil {
		return
	}
	e := c.settle(seq)
	if e == nil {
		return // too late: waiting already (expire)
	}
	err = answerError(m)
	if m.Header.Get("Status") == "503" {
		err = errNoNode
	}
	switch {
	case err == nil:
		c.trust(e.node)
	case isStanzaError(err):
		c.bounce(e.s, err)
	default:
		if errors.Is(err, errStopping) {
			c.leaving(e.node)
		}
		c.failed(e, err)
	}
}

// failed keeps a stanza its owner did not take waiting for an owner
// (retry), and stanzas for that node wait too until it answers again.
func (c *Cluster) failed(e *sent, err error) {
	p := c.pipe
	p.mu.Lock()
	first := !p.suspect[e.node]
	p.suspect[e.node] = true
	p.mu.Unlock()
	if first && !errors.Is(err, errStopping) {
		c.log.Info("cluster: forward failed; stanzas for the node wait until it answers again", "to", e.node, "remote", e.s.To.Domainpart(), "err", err)
	}
	if werr := c.wait(e.s); werr != nil {
		c.bounce(e.s, werr)
	}
}

// isSuspect reports whether stanzas for node wait (failed).
func (c *Cluster) isSuspect(node string) bool {
	p := c.pipe
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.suspect[node]
}

// trust ends what failed started: node answered.
func (c *Cluster) trust(node string) {
	p := c.pipe
	if p == nil {
		return
	}
	p.mu.Lock()
	delete(p.suspect, node)
	p.mu.Unlock()
}

// expire keeps waiting the stanzas whose answer did not come within
// ForwardTimeout.
func (c *Cluster) expire() {
	c.expireOlder(c.cfg.ForwardTimeout, func(e *sent) { c.failed(e, errNoAnswer) })
}

// expireOlder settles the stanzas sent more than age ago and not
// answered, and gives each to then.
func (c *Cluster) expireOlder(age time.Duration, then func(*sent)) {
	p := c.pipe
	var late []uint64
	p.mu.Lock()
	for seq, e := range p.pending {
		if time.Since(e.at) > age {
			late = append(late, seq)
		}
	}
	p.mu.Unlock()
	for _, seq := range late {
		if e := c.settle(seq); e != nil {
			then(e)
		}
	}
}

// unanswered waits up to d for the answers to the stanzas sent, then
// keeps waiting those still without one (a node that stops: retry gives
// them a last try).
func (c *Cluster) unanswered(d time.Duration) {
	p := c.pipe
	if p == nil {
		return
	}
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		n := len(p.pending)
		p.mu.Unlock()
		if n == 0 || time.Now().After(end) {
			break
		}
	}
	// Waiting even past maxWaiting: retry bounces what cannot go.
	c.expireOlder(0, func(e *sent) {
		c.mu.Lock()
		c.waiting = append(c.waiting, waiting{s: e.s, since: time.Now()})
		c.waitCount[e.s.To.Domainpart()]++
		c.mu.Unlock()
	})
}

package cluster

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// A forwarded stanza is a NATS request to the node's subject: the stanza
// in the jabber:server namespace, its kind (remote or component) and its
// origin in headers. The answer is empty when the node took it (queued it
// for a remote domain, wrote it to a component), or names a stanza error,
// or says the component is not attached there.
const (
	hdrKind   = "S2S-Kind"
	hdrOrigin = "S2S-Origin"
	hdrError  = "S2S-Error"

	// A pipelined stanza (pipeline.go) also carries the subject its
	// sender takes answers on and the stanza's sequence number: the owner
	// answers there, with the number. A reply subject per stanza is a
	// subject used once, which misses nats-server's subject caches on
	// every node it crosses: it cost the sender a fifth of its CPU. The
	// per-stanza reply subject is still set, for a node that does not
	// know these headers (during a rolling upgrade) and for NATS's
	// no-responders status.
	hdrAnswerTo = "S2S-Answer-To"
	hdrSeq      = "S2S-Seq"

	kindRemote    = "remote"
	kindComponent = "component"
	kindKick      = "kick" // close a component's stream here (S2S-Domain)
	hdrDomain     = "S2S-Domain"

	answerNotConnected = "not-connected"
	// answerStopping: the node is leaving the cluster and takes no more
	// stanzas for remote domains; the sender asks the next owner.
	answerStopping = "stopping"
)

// errStopping is a forward answered with answerStopping.
var errStopping = errors.New("cluster: the node is stopping")

var serverCtx = xmlstream.StreamContext{NS: xmlstream.NSServer}

// WrapRemote returns the handler the router gives stanzas for remote
// domains: the node's pool when this node owns the domain's partition,
// the owner otherwise.
func (c *Cluster) WrapRemote(p Pool) route.Handler {
	c.mu.Lock()
	c.pool = p
	c.mu.Unlock()
	return route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
		return c.deliverRemote(ctx, s, true)
	})
}

// deliverRemote sends s to its remote domain's owner. When no owner can
// be reached it waits (retried every tick) rather than open a second
// stream for the pair. With pipelined, a stanza for another node is sent
// without waiting for that node's answer (send), so that one stream's
// stanzas follow each other without a round trip each; otherwise it
// returns once the owner has taken s (a handover).
func (c *Cluster) deliverRemote(ctx context.Context, s *route.Stanza, pipelined bool) error {
	if s.Origin == route.FromRemote {
		// RFC 6120 §13.7.1.1, here as on the node it would go to.
		return stanza.New(stanza.ServiceUnavailable, "this server does not relay between remote domains")
	}
	// Once taken, the stanza is delivered even if the stream it came on
	// ends meanwhile (a component whose node is stopping).
	ctx = context.WithoutCancel(ctx)
	for try := 0; try < 3; try++ {
		owner, local := c.owner(s.To.Domainpart())
		if local {
			return c.pool.Deliver(ctx, s)
		}
		if owner == "" {
			if c.isStopping() {
				// Every other node is leaving too (the whole cluster
				// stops): this node's pool keeps the stanza in its
				// queue for its next start, or bounces it.
				return c.pool.Deliver(ctx, s)
			}
			break
		}
		var err error
		if pipelined {
			if c.isSuspect(owner) || c.waitingFor(s.To.Domainpart()) {
				// Behind the domain's stanzas that wait, in order.
				return c.wait(s)
			}
			err = c.send(owner, s)
		} else {
			err = c.forward(ctx, owner, kindRemote, s)
		}
		if err == nil || isStanzaError(err) {
			return err
		}
		if errors.Is(err, errStopping) {
			// It left the members already; this view had not seen it.
			c.leaving(owner)
			continue
		}
		c.log.Info("cluster: forward failed", "to", owner, "remote", s.To.Domainpart(), "err", err)
		time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
	}
	return c.wait(s)
}

func (c *Cluster) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// leaving takes node out of this node's view of the live members until
// the next tick reads them again: node said it is stopping.
func (c *Cluster) leaving(node string) {
	c.mu.Lock()
	c.live = slices.DeleteFunc(slices.Clone(c.live), func(m string) bool { return m == node })
	c.mu.Unlock()
}

// owner returns the node that owns remote's partition, and whether it is
// this one. It is the lease holder when that node is alive, otherwise the
// preferred owner, which takes the lease within a tick.
func (c *Cluster) owner(remote string) (string, bool) {
	return c.ownerOf(partition(remote, c.cfg.Partitions))
}

func (c *Cluster) ownerOf(p int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[p]; ok {
		return c.cfg.Name, true
	}
	if o := c.owners[p]; o != "" && o != c.cfg.Name && slices.Contains(c.live, o) {
		return o, false
	}
	if pref := preferred(p, c.live); pref != c.cfg.Name {
		return pref, false
	}
	return "", false
}

// wait keeps s until an owner can take it.
func (c *Cluster) wait(s *route.Stanza) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitingLocked() >= maxWaiting {
		return stanza.New(stanza.ResourceConstraint, "no cluster node can take stanzas for "+s.To.Domainpart()+" now")
	}
	s.Own()
	c.waiting = append(c.waiting, waiting{s: s, since: time.Now()})
	c.waitCount[s.To.Domainpart()]++
	return nil
}

// waitingFor reports whether stanzas for domain wait for an owner: the
// next ones wait behind them.
func (c *Cluster) waitingFor(domain string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitCount[domain] > 0
}

// retryLoop runs retry when the tick asks, off the tick's goroutine: a
// slow owner must not delay the leases.
func (c *Cluster) retryLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.retryKick:
			c.retry(false)
		}
	}
}

// retryWaiting asks retryLoop for a round.
func (c *Cluster) retryWaiting() { poke(c.retryKick) }

var errBlocked = errors.New("cluster: the owner did not take the stanza before this one")

// retry gives waiting stanzas to their owners, in the order they came;
// those that waited longer than a minute bounce with
// remote-server-timeout. A node that failed is asked one stanza at a
// time until it answers; once a node fails in a round, its other stanzas
// keep waiting for the next. With last (the node stops) those that cannot
// go bounce rather than vanish with the node.
func (c *Cluster) retry(last bool) {
	c.retryMu.Lock()
	defer c.retryMu.Unlock()
	c.mu.Lock()
	q := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	blocked := map[string]bool{}
	var keep []waiting
	for _, w := range q {
		owner, local := c.owner(w.s.To.Domainpart())
		var err error
		switch {
		case local:
			err = c.pool.Deliver(context.Background(), w.s)
		case owner == "":
			err = errors.New("no owner")
		case blocked[owner]:
			err = errBlocked
		case last || c.isSuspect(owner) || c.pipe == nil:
			err = c.forward(context.Background(), owner, kindRemote, w.s)
			if errors.Is(err, errStopping) {
				c.leaving(owner)
			} else if err == nil || isStanzaError(err) {
				c.trust(owner)
			}
		default:
			err = c.send(owner, w.s)
		}
		if err == nil {
			continue
		}
		if owner != "" && !isStanzaError(err) {
			blocked[owner] = true
		}
		if isStanzaError(err) || last || time.Since(w.since) > time.Minute {
			c.bounce(w.s, err)
			continue
		}
		keep = append(keep, w)
	}
	c.mu.Lock()
	c.waiting = append(keep, c.waiting...)
	clear(c.waitCount)
	for _, w := range c.waiting {
		c.waitCount[w.s.To.Domainpart()]++
	}
	c.mu.Unlock()
}

// bounce returns s to its sender with err, a stanza error, or
// remote-server-timeout.
func (c *Cluster) bounce(s *route.Stanza, err error) {
	var se *stanza.Error
	if !errors.As(err, &se) {
		se = stanza.New(stanza.RemoteServerTimeout, "no cluster node could take the stanza")
	}
	c.mu.Lock()
	b := c.bouncer
	c.mu.Unlock()
	if b != nil {
		b.Bounce(context.Background(), s, se)
	}
}

// WrapComponent returns the handler for a component domain: the node's
// own (h) when the component is attached here, the node holding it
// otherwise; attached nowhere, the stanza waits ComponentGrace for it.
func (c *Cluster) WrapComponent(domain string, h route.Handler) route.Handler {
	c.mu.Lock()
	c.localComp[domain] = h
	c.mu.Unlock()
	return route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
		until := time.Now().Add(c.cfg.ComponentGrace)
		if c.queueComponent(domain, s, until, false) {
			return nil // behind the domain's stanzas that wait, in order
		}
		err := h.Deliver(ctx, s)
		if !errors.Is(err, route.ErrNotConnected) {
			return err
		}
		return c.deliverComponent(ctx, domain, s, until)
	})
}

// compWait is a stanza that waits for its component.
type compWait struct {
	s     *route.Stanza
	until time.Time
}

// queueComponent puts s behind the stanzas that wait for domain's
// component, and starts the goroutine that delivers them when none runs.
// Unless always, it does so only when stanzas wait already. It reports
// whether s was queued: not once Shutdown has begun, when new stanzas
// wait on their caller.
func (c *Cluster) queueComponent(domain string, s *route.Stanza, until time.Time, always bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, waiting := c.compQueue[domain]
	if !waiting && !always || c.compClosed {
		return false
	}
	c.compWaits.Add(1)
	leaveStream(s)
	c.compQueue[domain] = append(q, compWait{s: s, until: until})
	if !waiting {
		go c.drainComponent(domain)
	}
	return true
}

// leaveStream readies s to be kept past its delivery: the stream it was
// read from moves on, so nothing may write through it (Source), and s
// must not borrow its buffer (Own).
func leaveStream(s *route.Stanza) {
	s.Source = nil
	s.Own()
}

// drainComponent delivers the stanzas that wait for domain's component,
// one after the other, each when the component is attached somewhere or
// bounced when its wait ends; it returns when none is left.
func (c *Cluster) drainComponent(domain string) {
	for {
		c.mu.Lock()
		q := c.compQueue[domain]
		if len(q) == 0 {
			delete(c.compQueue, domain)
			c.mu.Unlock()
			return
		}
		w := q[0]
		c.mu.Unlock()
		// Without a Source, it waits here until delivered or given up.
		if err := c.deliverComponent(context.Background(), domain, w.s, w.until); err != nil {
			c.bounceComponent(w.s, err)
		}
		// Taken off only now: until w is delivered, the next stanzas
		// for domain queue behind it.
		c.mu.Lock()
		c.compQueue[domain][0] = compWait{}
		c.compQueue[domain] = c.compQueue[domain][1:]
		c.mu.Unlock()
		c.compWaits.Done()
	}
}

func (c *Cluster) deliverComponent(ctx context.Context, domain string, s *route.Stanza, until time.Time) error {
	ctx = context.WithoutCancel(ctx)
	for {
		c.mu.Lock()
		at := c.compAt[domain]
		alive := slices.Contains(c.live, at)
		h := c.localComp[domain]
		c.mu.Unlock()
		var err error
		switch {
		case at == c.cfg.Name:
			err = h.Deliver(ctx, s)
		case at != "" && alive:
			err = c.forward(ctx, at, kindComponent, s)
		default:
			err = route.ErrNotConnected
		}
		if err == nil || isStanzaError(err) {
			return err
		}
		if time.Now().After(until) || c.gaveUp() {
			return route.ErrNotConnected
		}
		// Attached nowhere, or moving: wait for it a little, off the
		// reading goroutine when there is one to free, in the domain's
		// queue. The stream acknowledges the stanza then: Shutdown waits
		// for it.
		if s.Source != nil && c.queueComponent(domain, s, until, true) {
			return nil
		}
		// The view may lag (a watch on a server that left): ask the
		// registry itself.
		xmlstream.Wake(s.Source)
		c.lookupComponent(ctx, domain)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-c.compGiveUp:
		}
	}
}

// gaveUp reports whether Shutdown ran out of time for the stanzas that
// wait for their component.
func (c *Cluster) gaveUp() bool {
	select {
	case <-c.compGiveUp:
		return true
	default:
		return false
	}
}

// lookupComponent reads where domain is attached from the registry.
func (c *Cluster) lookupComponent(ctx context.Context, domain string) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ForwardTimeout)
	defer cancel()
	e, err := c.comps.Get(ctx, compKey(domain))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.localComps[domain] {
		return
	}
	if err != nil {
		delete(c.compAt, domain)
	} else {
		c.compAt[domain] = string(e.Value())
	}
}

func (c *Cluster) bounceComponent(s *route.Stanza, err error) {
	c.mu.Lock()
	b := c.bouncer
	c.mu.Unlock()
	if b == nil {
		return
	}
	var se *stanza.Error
	if !errors.As(err, &se) {
		se = stanza.New(stanza.ServiceUnavailable, "the component is not connected")
	}
	b.Bounce(context.Background(), s, se)
}

func isStanzaError(err error) bool {
	var se *stanza.Error
	return errors.As(err, &se)
}

// forward sends s to node and waits for its answer.
func (c *Cluster) forward(ctx context.Context, node, kind string, s *route.Stanza) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ForwardTimeout)
	defer cancel()
	r, err := c.nc.RequestMsgWithContext(ctx, forwardMsg(node, kind, s))
	if err != nil {
		return err
	}
	return answerError(r)
}

// forwardMsg is the request that forwards s to node.
func forwardMsg(node, kind string, s *route.Stanza) *nats.Msg {
	m := nats.NewMsg(subject(node))
	m.Header.Set(hdrKind, kind)
	m.Header.Set(hdrOrigin, strconv.Itoa(int(s.Origin)))
	m.Data = s.Reframe(serverCtx)
	return m
}

// answerError is what a node's answer to a forwarded stanza says of it:
// nil when the node took it.
func answerError(r *nats.Msg) error {
	switch a := r.Header.Get(hdrError); {
	case a == "":
		return nil
	case a == answerNotConnected:
		return route.ErrNotConnected
	case a == answerStopping:
		return errStopping
	default:
		cond, text, _ := strings.Cut(a, " ")
		return stanza.New(stanza.Condition(cond), text)
	}
}

// receive takes a stanza another node forwarded: it is delivered here,
// never forwarded again.
func (c *Cluster) receive(m *nats.Msg) {
	to, seq := m.Header.Get(hdrAnswerTo), m.Header.Get(hdrSeq)
	if to == "" || seq == "" {
		to, seq = m.Reply, ""
	}
	answer := func(e string) {
		r := nats.NewMsg(to)
		if seq != "" {
			r.Header.Set(hdrSeq, seq)
		}
		if e != "" {
			r.Header.Set(hdrError, e)
		}
		c.nc.PublishMsg(r)
	}
	if m.Header.Get(hdrKind) == kindKick {
		c.mu.Lock()
		f := c.closeComp
		c.mu.Unlock()
		if f != nil {
			f(m.Header.Get(hdrDomain))
		}
		answer("")
		return
	}
	s, err := route.New(m.Data, xmlstream.NSServer)
	if err != nil {
		answer(string(stanza.BadRequest) + " not a stanza")
		return
	}
	o, _ := strconv.Atoi(m.Header.Get(hdrOrigin))
	s.Origin = route.Origin(o)
	ctx := context.Background()
	switch m.Header.Get(hdrKind) {
	case kindRemote:
		if s.Origin == route.FromRemote {
			// RFC 6120 §13.7.1.1, on every node: never relay between two
			// remote domains.
			answer(string(stanza.ServiceUnavailable) + " this server does not relay between remote domains")
			return
		}
		c.mu.Lock()
		p, stopping := c.pool, c.stopping
		c.mu.Unlock()
		if stopping {
			// Its partitions are moving to the other nodes: queued here,
			// the stanza would leave with this node's pool or bounce.
			answer(answerStopping)
			return
		}
		// Answered once queued and in the queue file: the forwarding
		// node forgets the stanza when it has the answer. Queued here, in
		// the order the stanzas came; the answers wait for the queue
		// file off this goroutine, so that many share one write.
		if err = p.Deliver(ctx, s); err == nil {
			c.afterDurable(p, answer)
			return
		}
	case kindComponent:
		c.mu.Lock()
		h := c.localComp[s.To.Domainpart()]
		c.mu.Unlock()
		if h == nil {
			err = stanza.New(stanza.ServiceUnavailable, "")
		} else {
			err = h.Deliver(ctx, s)
		}
	default:
		err = stanza.New(stanza.BadRequest, "unknown kind")
	}
	answerErr(answer, err)
}

// afterDurable calls answer once what p has taken so far is in its queue
// file, with what the error that kept it from there says, if any
// (answerErr). One goroutine at a time waits for the queue file, for every
// stanza taken before it began; the stanzas taken meanwhile wait for the
// next write, as they would anyway.
func (c *Cluster) afterDurable(p Pool, answer func(string)) {
	c.durMu.Lock()
	c.durWait = append(c.durWait, answer)
	busy := c.durBusy
	c.durBusy = true
	c.durMu.Unlock()
	if busy {
		return
	}
	go func() {
		for {
			c.durMu.Lock()
			as := c.durWait
			c.durWait = nil
			if len(as) == 0 {
				c.durBusy = false
				c.durMu.Unlock()
				return
			}
			c.durMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ForwardTimeout)
			err := p.Durable(ctx)
			cancel()
			for _, a := range as {
				answerErr(a, err)
			}
		}
	}()
}

// answerErr answers a forwarded stanza with what err says of it.
func answerErr(answer func(string), err error) {
	var se *stanza.Error
	switch {
	case err == nil:
		answer("")
	case errors.Is(err, route.ErrNotConnected):
		answer(answerNotConnected)
	case errors.As(err, &se):
		answer(string(se.Condition) + " " + se.Text)
	default:
		answer(string(stanza.InternalServerError) + " ")
	}
}

// redeliver gives s to its owner, waiting for the owner's answer, and
// bounces it when that fails for good: stanzas a node hands over.
func (c *Cluster) redeliver(s *route.Stanza) {
	if err := c.deliverRemote(context.Background(), s, false); err != nil {
		c.bounce(s, err)
	}
}

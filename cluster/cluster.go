package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// Buckets and keys.
const (
	bucketMembers    = "s2sd-members"
	bucketLeases     = "s2sd-leases"
	bucketComponents = "s2sd-components"
	bucketConfig     = "s2sd-config"
	keySecret        = "dialback-secret"
)

// Pool is what the cluster needs of the node's s2s pool: deliver, and
// give up a remote domain's queue when its partition moves.
type Pool interface {
	route.Handler
	// Domains returns the remote domains the pool has a queue or a
	// stream for.
	Domains() []string
	// Evict ends the stream to remote and takes its stanzas out of the
	// pool (and its store), in order.
	Evict(remote string) []*route.Stanza
	// Durable returns once what the pool accepted is in its queue file.
	Durable(ctx context.Context) error
	// RestoreFrom queues the stanzas load gives (the replicated queue's
	// of a partition this node takes).
	RestoreFrom(load func(func(id uint64, local, remote string, raw []byte, at time.Time)) error) (int, error)
}

// Bouncer returns stanzas to their senders (the node's route.Router).
type Bouncer interface {
	Bounce(ctx context.Context, s *route.Stanza, e *stanza.Error)
}

// Cluster is a node's membership of a cluster.
type Cluster struct {
	cfg Config
	log *slog.Logger
	ns  *server.Server // embedded; nil with an external cluster
	nc  *nats.Conn
	js  jetstream.JetStream

	members, leases, comps, conf jetstream.KeyValue
	queue                        *Queue // durability "replicated"

	mu         sync.Mutex
	live       []string          // live members, sorted
	stable     bool              // live is what the tick before saw too
	owners     []string          // partition -> lease holder, from the bucket
	held       map[int]*lease    // partitions this node holds
	unloaded   map[int]bool      // held partitions whose queued stanzas are still to load
	compAt     map[string]string // component domain -> node
	localComps map[string]bool   // components attached here
	pool       Pool
	localComp  map[string]route.Handler // this node's handler per component domain
	bouncer    Bouncer
	closeComp  func(domain string) // closes a local component's stream (replace)
	waiting    []waiting           // remote stanzas with no reachable owner
	waitCount  map[string]int      // waiting stanzas per remote domain
	retryMu    sync.Mutex          // one retry round at a time
	retryKick  chan struct{}
	stopping   bool
	// compWaits counts the stanzas that wait, off their stream, for their
	// component to attach somewhere; Shutdown waits for them (they were
	// acknowledged to their sender), and closing compGiveUp makes them
	// bounce now. compClosed: Shutdown began, new ones wait on the caller.
	compWaits  sync.WaitGroup
	compGiveUp chan struct{}
	giveUpOnce sync.Once
	compClosed bool
	// compQueue holds, per component domain, the stanzas that wait for
	// it, in the order they came: one goroutine per domain delivers them
	// (drainComponent), and a stanza for a domain with stanzas waiting
	// goes behind them, so that none overtakes another.
	compQueue map[string][]compWait
	// refollow* restart the bucket watches (follow).
	refollowLeases, refollowComps chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sub    *nats.Subscription
	pipe   *pipeline // stanzas sent to their owners, not answered yet

	// Answers to forwarded stanzas waiting for the queue file
	// (afterDurable), and whether a goroutine waits for it.
	durMu   sync.Mutex
	durWait []func(string)
	durBusy bool
}

type lease struct {
	rev     uint64
	renewed time.Time
}

type waiting struct {
	s     *route.Stanza
	since time.Time
}

// waitingLocked counts the stanzas waiting for an owner: from waitCount,
// not len(c.waiting), as a retry round holds its stanzas outside
// c.waiting while it runs and waitCount still counts them; c.mu is held.
func (c *Cluster) waitingLocked() int {
	n := 0
	for _, k := range c.waitCount {
		n += k
	}
	return n
}

// maxWaiting bounds the stanzas waiting for a reachable owner; past it
// they bounce with resource-constraint. A variable for tests.
var maxWaiting = 10000

// Start joins the cluster: it starts the embedded NATS server (unless
// Config.URL names an external one), connects, and opens the buckets.
// Wrap the node's handlers, then call Run.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg.defaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:            cfg,
		log:            cfg.Logger.With("node", cfg.Name),
		owners:         make([]string, cfg.Partitions),
		held:           map[int]*lease{},
		unloaded:       map[int]bool{},
		compAt:         map[string]string{},
		localComps:     map[string]bool{},
		localComp:      map[string]route.Handler{},
		refollowLeases: make(chan struct{}, 1),
		waitCount:      map[string]int{},
		retryKick:      make(chan struct{}, 1),
		compGiveUp:     make(chan struct{}),
		compQueue:      map[string][]compWait{},
		refollowComps:  make(chan struct{}, 1),
	}
	if cfg.URL == "" {
		ns, err := startServer(&c.cfg)
		if err != nil {
			return nil, err
		}
		c.ns = ns
	}
	nc, err := connect(&c.cfg, c.ns)
	if err != nil {
		c.stopServer()
		return nil, err
	}
	c.nc = nc
	// An answer to an asynchronous publish (the replicated queue's) may
	// never come, when the stream's leader dies with it: without a
	// timeout it would be waited for forever.
	if c.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.ForwardTimeout)); err != nil {
		c.close()
		return nil, err
	}
	if err := c.buckets(ctx); err != nil {
		c.close()
		return nil, err
	}
	if cfg.Durability == Replicated {
		if cfg.URL != "" {
			c.log.Warn("cluster: durability replicated on an external NATS cluster: its servers must write with sync_interval: always, or a write a majority acknowledged can be lost when servers fail together")
		}
		if err := c.openQueue(ctx); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// buckets opens (or creates) the key-value buckets. JetStream elects its
// meta leader once enough routes are up: until then, creating fails, and
// is tried again until ctx ends.
func (c *Cluster) buckets(ctx context.Context) error {
	specs := []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&c.members, jetstream.KeyValueConfig{Bucket: bucketMembers, TTL: c.cfg.LeaseTTL}},
		{&c.leases, jetstream.KeyValueConfig{Bucket: bucketLeases, TTL: c.cfg.LeaseTTL}},
		{&c.comps, jetstream.KeyValueConfig{Bucket: bucketComponents, TTL: c.cfg.LeaseTTL}},
		{&c.conf, jetstream.KeyValueConfig{Bucket: bucketConfig}},
	}
	for _, s := range specs {
		s.cfg.Storage = jetstream.FileStorage
		s.cfg.Replicas = c.cfg.Replicas
		for {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			kv, err := c.js.CreateOrUpdateKeyValue(actx, s.cfg)
			cancel()
			if err == nil {
				*s.kv = kv
				break
			}
			c.log.Debug("cluster: bucket not ready", "bucket", s.cfg.Bucket, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("cluster: bucket %s: %w", s.cfg.Bucket, err)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// secretTry bounds each request Secret makes. A variable for tests.
var secretTry = 2 * time.Second

// Secret returns the cluster's dialback secret: the one a node stored
// first, or candidate if there was none.
func (c *Cluster) Secret(ctx context.Context, candidate []byte) ([]byte, error) {
	for {
		// Each try has its own time: a request whose answer is lost (a
		// route that drops while this node catches up after a restart)
		// must not use up the caller's whole budget.
		actx, cancel := context.WithTimeout(ctx, secretTry)
		_, err := c.conf.Create(actx, keySecret, candidate)
		cancel()
		if err == nil {
			return candidate, nil
		}
		actx, cancel = context.WithTimeout(ctx, secretTry)
		e, err := c.conf.Get(actx, keySecret)
		cancel()
		if err == nil {
			return e.Value(), nil
		}
		c.log.Debug("cluster: dialback secret not readable yet", "err", err)
		// Neither created nor found: another node's Create is under way,
		// or the bucket has no leader yet.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: dialback secret: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetBouncer sets where stanzas that cannot be delivered go back.
func (c *Cluster) SetBouncer(b Bouncer) {
	c.mu.Lock()
	c.bouncer = b
	c.mu.Unlock()
}

// Name returns the node's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Run starts the node's part: its forwarding subscription, its member
// entry, and the loop that takes, renews and hands over leases. The
// handlers must be wrapped first.
func (c *Cluster) Run() error {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	sub, err := c.nc.Subscribe(subject(c.cfg.Name), c.receive)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	c.sub = sub
	if err := c.startPipeline(); err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	c.wg.Add(3)
	go c.retryLoop()
	go c.follow(c.leases, c.leasesAll, c.leaseEvent, c.refollowLeases)
	go c.follow(c.comps, c.compsAll, c.compEvent, c.refollowComps)
	c.tick()
	c.wg.Add(1)
	go c.every(c.cfg.LeaseTTL/4, c.tick)
	return nil
}

func subject(node string) string { return "s2sd.node." + node }

// follow keeps a view of a bucket: a watch delivers every key's value,
// which replaces the view, then each update. NATS serves a watch from an
// ephemeral consumer on one server; when that server leaves the cluster
// the watch goes silent until the client misses its heartbeats, 10 s or
// more. So the watch starts again whenever membership changes (tick
// signals again), and every refollowEvery in any case.
func (c *Cluster) follow(kv jetstream.KeyValue, replace func(map[string]string), update func(key, val string, put bool), again <-chan struct{}) {
	defer c.wg.Done()
	every := time.NewTicker(refollowEvery(c.cfg.LeaseTTL))
	defer every.Stop()
	for c.ctx.Err() == nil {
		wctx, cancel := context.WithCancel(c.ctx)
		w, err := kv.WatchAll(wctx)
		if err != nil {
			cancel()
			c.log.Warn("cluster: cannot watch a bucket", "bucket", kv.Bucket(), "err", err)
			select {
			case <-c.ctx.Done():
			case <-again:
			case <-every.C:
			}
			continue
		}
		c.read(w, replace, update, again, every.C)
		w.Stop()
		cancel()
	}
}

// read applies a watch's entries until it ends or must start again.
func (c *Cluster) read(w jetstream.KeyWatcher, replace func(map[string]string), update func(key, val string, put bool), again <-chan struct{}, every <-chan time.Time) {
	initial := map[string]string{}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-again:
			return
		case <-every:
			return
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return
			case e == nil: // the end of the current values
				replace(initial)
				initial = nil
			case initial != nil:
				if e.Operation() == jetstream.KeyValuePut {
					initial[e.Key()] = string(e.Value())
				}
			default:
				update(e.Key(), string(e.Value()), e.Operation() == jetstream.KeyValuePut)
			}
		}
	}
}

// refollow restarts the bucket watches.
func (c *Cluster) refollow() {
	poke(c.refollowLeases)
	poke(c.refollowComps)
}

func refollowEvery(ttl time.Duration) time.Duration { return 3 * ttl }

func (c *Cluster) leasesAll(all map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.owners)
	for k, v := range all {
		if p, err := strconv.Atoi(k); err == nil && p >= 0 && p < c.cfg.Partitions {
			c.owners[p] = v
		}
	}
}

func (c *Cluster) leaseEvent(key, val string, put bool) {
	p, err := strconv.Atoi(key)
	if err != nil || p < 0 || p >= c.cfg.Partitions {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !put {
		val = ""
	}
	c.owners[p] = val
}

func (c *Cluster) compsAll(all map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.compAt)
	maps.Copy(c.compAt, all)
	// What is attached here is known here first.
	for d := range c.localComps {
		c.compAt[d] = c.cfg.Name
	}
}

func (c *Cluster) compEvent(key, val string, put bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if put {
		c.compAt[key] = val
	} else {
		delete(c.compAt, key)
	}
}

// every runs f every d until the cluster stops (a c.wg goroutine).
func (c *Cluster) every(d time.Duration, f func()) {
	defer c.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// tick refreshes this node's entries, learns who is alive, renews its
// leases, takes the partitions it should own and gives up the others.
func (c *Cluster) tick() {
	// Each step has its own quarter of LeaseTTL: with many partitions,
	// one budget for all would run out and give leases up.
	ctx := c.ctx
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, c.cfg.LeaseTTL/4) }
	sctx, cancel := step()
	defer cancel()
	// A node that left (Handover) stays out: the others must not send it
	// stanzas while it stops.
	if !c.isStopping() {
		if _, err := c.members.Put(sctx, c.cfg.Name, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			c.log.Warn("cluster: cannot refresh membership", "err", err)
		}
	}
	kctx, kcancel := step()
	defer kcancel()
	if keys, err := c.members.Keys(kctx); err == nil {
		slices.Sort(keys)
		c.mu.Lock()
		c.stable = slices.Equal(keys, c.live)
		changed := !c.stable && len(c.live) > 0
		c.live = keys
		c.mu.Unlock()
		if changed {
			// A member came or went: the watches may be on a server
			// that left.
			c.refollow()
		}
	}
	c.mu.Lock()
	comps := make([]string, 0, len(c.localComps))
	for d := range c.localComps {
		comps = append(comps, d)
	}
	c.mu.Unlock()
	for _, d := range comps {
		pctx, pcancel := step()
		c.comps.Put(pctx, compKey(d), []byte(c.cfg.Name))
		pcancel()
	}
	c.renew(ctx)
	c.balance(ctx)
	if c.queue != nil {
		c.reload(ctx)
	}
	c.adopt()
	c.retryWaiting()
}

// adopt hands to their owners the remote domains this node's pool holds
// without owning them: stanzas restored from the queue file after a
// restart, or forwarded here while a partition moved.
func (c *Cluster) adopt() {
	c.mu.Lock()
	pool, stable := c.pool, c.stable
	c.mu.Unlock()
	if pool == nil || !stable {
		return
	}
	for _, d := range pool.Domains() {
		if owner, local := c.owner(d); local || owner == "" {
			continue
		}
		q := pool.Evict(d)
		if len(q) > 0 {
			c.log.Info("cluster: handing queued stanzas to the owner", "remote", d, "count", len(q))
		}
		for _, s := range q {
			c.redeliver(s)
		}
	}
}

// renew renews the leases held, all at once, each within a quarter of
// LeaseTTL; one that cannot be renewed for two thirds of LeaseTTL (the
// others take it at LeaseTTL) is given up.
func (c *Cluster) renew(ctx context.Context) {
	c.mu.Lock()
	held := make(map[int]lease, len(c.held))
	for p, l := range c.held {
		held[p] = *l
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for p, l := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/4)
			rev, err := c.leases.Update(rctx, strconv.Itoa(p), []byte(c.cfg.Name), l.rev)
			cancel()
			if err == nil {
				c.mu.Lock()
				if h := c.held[p]; h != nil {
					h.rev, h.renewed = rev, time.Now()
				}
				c.mu.Unlock()
				return
			}
			var apiErr *jetstream.APIError
			taken := errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
			if taken || time.Since(l.renewed) > c.cfg.LeaseTTL*2/3 {
				c.log.Warn("cluster: lease lost", "partition", p, "err", err)
				c.drop(p)
			}
		}()
	}
	wg.Wait()
}

// balance takes the partitions this node is the preferred owner of, and
// hands over those that now prefer another live member.
func (c *Cluster) balance(ctx context.Context) {
	c.mu.Lock()
	live := slices.Clone(c.live)
	stopping, stable := c.stopping, c.stable
	c.mu.Unlock()
	if !slices.Contains(live, c.cfg.Name) || stopping {
		return
	}
	for p := range c.cfg.Partitions {
		pref := preferred(p, live)
		c.mu.Lock()
		_, mine := c.held[p]
		c.mu.Unlock()
		switch {
		case pref == c.cfg.Name && !mine:
			cctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/4)
			rev, err := c.leases.Create(cctx, strconv.Itoa(p), []byte(c.cfg.Name))
			cancel()
			if err != nil {
				continue // held by another until it hands over or expires
			}
			c.mu.Lock()
			c.held[p] = &lease{rev: rev, renewed: time.Now()}
			c.owners[p] = c.cfg.Name
			if c.queue != nil {
				c.unloaded[p] = true // reload, after balance
			}
			c.mu.Unlock()
			c.log.Debug("cluster: partition taken", "partition", p, "live", live)
		case pref != c.cfg.Name && mine && stable:
			// Handed over only once the members have held still for a
			// tick: a view that flickers must not move partitions.
			c.release(ctx, p, pref)
		}
	}
}

// release gives partition p to node to: the lease goes first, so that it
// can take it, then the stanzas queued here for p's domains.
func (c *Cluster) release(ctx context.Context, p int, to string) {
	c.mu.Lock()
	l := c.held[p]
	delete(c.held, p)
	c.owners[p] = to
	c.mu.Unlock()
	// The stanzas go before the lease: with the replicated queue, the
	// next owner loads the partition's stanzas when it takes the lease,
	// and this node's must be in the stream by then.
	c.handover(p)
	if l != nil {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/4)
		c.leases.Delete(dctx, strconv.Itoa(p), jetstream.LastRevision(l.rev))
		cancel()
	}
	c.log.Debug("cluster: partition released", "partition", p, "to", to)
}

// load queues in the pool the stanzas of partition p that the replicated
// queue holds: those the node before this one had accepted.
func (c *Cluster) load(ctx context.Context, pool Pool, p int) error {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/2)
	defer cancel()
	n, err := pool.RestoreFrom(func(f func(id uint64, local, remote string, raw []byte, at time.Time)) error {
		_, err := c.queue.LoadPartition(lctx, p, f)
		return err
	})
	if n > 0 {
		c.log.Info("cluster: took over queued stanzas", "partition", p, "count", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// Tried again each tick while the partition is this node's.
		c.log.Warn("cluster: cannot load a partition's queued stanzas; trying again", "partition", p, "err", err)
		c.unloaded[p] = true
	} else {
		delete(c.unloaded, p)
	}
	return err
}

// reload loads the stanzas of the partitions taken and not loaded yet.
// The first failure ends it until the next tick: the stream is likely
// unavailable, and the tick must go on to renew the leases in time.
func (c *Cluster) reload(ctx context.Context) {
	c.mu.Lock()
	pool := c.pool
	var ps []int
	if pool == nil {
		c.mu.Unlock()
		return
	}
	for p := range c.unloaded {
		if _, ok := c.held[p]; ok {
			ps = append(ps, p)
		} else {
			delete(c.unloaded, p)
		}
	}
	c.mu.Unlock()
	for _, p := range ps {
		if c.load(ctx, pool, p) != nil {
			return
		}
	}
}

// drop forgets a lease this node lost.
func (c *Cluster) drop(p int) {
	c.mu.Lock()
	delete(c.held, p)
	if c.owners[p] == c.cfg.Name {
		c.owners[p] = ""
	}
	c.mu.Unlock()
	c.handover(p)
}

// handover ends this node's streams for partition p's domains and sends
// their stanzas to the partition's owner (or keeps them waiting for one).
func (c *Cluster) handover(p int) {
	c.mu.Lock()
	pool := c.pool
	c.mu.Unlock()
	if pool == nil {
		return
	}
	for _, d := range pool.Domains() {
		if partition(d, c.cfg.Partitions) != p {
			continue
		}
		q := pool.Evict(d)
		if len(q) > 0 {
			c.log.Info("cluster: handing over queued stanzas", "remote", d, "count", len(q))
		}
		for _, s := range q {
			c.redeliver(s)
		}
	}
}

// partition returns the partition of a remote domain.
func partition(domain string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(domain))
	return int(mix(h.Sum64()) % uint64(n))
}

// preferred picks the owner of partition p among live members by
// rendezvous hashing: members coming or going move only their share.
func preferred(p int, live []string) string {
	best, bestScore := "", uint64(0)
	for _, m := range live {
		h := fnv.New64a()
		h.Write([]byte(m))
		if s := mix(h.Sum64() ^ uint64(p+1)*0x9e3779b97f4a7c15); best == "" || s > bestScore {
			best, bestScore = m, s
		}
	}
	return best
}

// mix is splitmix64's finalizer: FNV alone spreads similar names badly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// compKey is a component domain as a bucket key (keys are ASCII: domains
// here are A-labels).
func compKey(domain string) string { return domain }

// ComponentUp records that a component is attached to this node. When the
// domain is attached to another live node too, the component conflict
// policy holds cluster-wide: with refuse, ComponentUp reports false and
// the new stream must be closed; with replace, the other node is told to
// close its stream.
func (c *Cluster) ComponentUp(domain string, refuse bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ForwardTimeout)
	defer cancel()
	if e, err := c.comps.Get(ctx, compKey(domain)); err == nil {
		other := string(e.Value())
		c.mu.Lock()
		alive := slices.Contains(c.live, other)
		c.mu.Unlock()
		if other != c.cfg.Name && alive {
			if refuse {
				c.log.Info("cluster: component refused: attached to another node", "domain", domain, "at", other)
				return false
			}
			c.log.Info("cluster: component replaces its stream on another node", "domain", domain, "at", other)
			m := nats.NewMsg(subject(other))
			m.Header.Set(hdrKind, kindKick)
			m.Header.Set(hdrDomain, domain)
			c.nc.RequestMsgWithContext(ctx, m)
		}
	}
	c.mu.Lock()
	c.localComps[domain] = true
	c.compAt[domain] = c.cfg.Name
	c.mu.Unlock()
	if _, err := c.comps.Put(ctx, compKey(domain), []byte(c.cfg.Name)); err != nil {
		c.log.Warn("cluster: cannot register a component", "domain", domain, "err", err)
	}
	return true
}

// SetComponentCloser sets how this node closes the stream of a component
// that connected to another node under the replace policy.
func (c *Cluster) SetComponentCloser(f func(domain string)) {
	c.mu.Lock()
	c.closeComp = f
	c.mu.Unlock()
}

// Healthy reports an error when this node is not a live member of the
// cluster (it cannot reach the key-value buckets, or has left).
func (c *Cluster) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return errors.New("cluster: leaving")
	}
	if !slices.Contains(c.live, c.cfg.Name) {
		return errors.New("cluster: not a live member")
	}
	return nil
}

// ComponentDown records that a component left this node.
func (c *Cluster) ComponentDown(domain string) {
	c.mu.Lock()
	delete(c.localComps, domain)
	if c.compAt[domain] == c.cfg.Name {
		delete(c.compAt, domain)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ForwardTimeout)
	defer cancel()
	if e, err := c.comps.Get(ctx, compKey(domain)); err == nil && string(e.Value()) == c.cfg.Name {
		c.comps.Delete(ctx, compKey(domain), jetstream.LastRevision(e.Revision()))
	}
}

// Status is what a node knows of the cluster.
type Status struct {
	Node    string   `json:"node"`
	Members []string `json:"members"`
	Owned   []int    `json:"partitions_owned"`
	// Moving are the partitions owned here whose preferred owner is
	// another member: they move to it within a lease TTL (after a member
	// joined). Empty when the cluster is balanced.
	Moving     []int             `json:"partitions_moving,omitempty"`
	Partitions int               `json:"partitions"`
	Components map[string]string `json:"components"` // domain -> node
	Waiting    int               `json:"waiting"`
	Durability string            `json:"durability"` // node or replicated
}

// Status returns the node's view of the cluster.
func (c *Cluster) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Node: c.cfg.Name, Members: slices.Clone(c.live), Partitions: c.cfg.Partitions, Components: map[string]string{}, Durability: Node}
	st.Waiting = c.waitingLocked()
	if c.queue != nil {
		st.Durability = Replicated
	}
	for p := range c.held {
		st.Owned = append(st.Owned, p)
		if preferred(p, c.live) != c.cfg.Name {
			st.Moving = append(st.Moving, p)
		}
	}
	slices.Sort(st.Owned)
	slices.Sort(st.Moving)
	for d, n := range c.compAt {
		st.Components[d] = n
	}
	return st
}

// Owns reports whether this node holds the lease of remote's partition.
func (c *Cluster) Owns(remote string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.held[partition(remote, c.cfg.Partitions)]
	return ok
}

// Handover gives up every partition and component registration of this
// node and sends what its pool holds to the new owners: the first step of
// a graceful stop. New stanzas for remote domains go to the others from
// then on.
func (c *Cluster) Handover(ctx context.Context) {
	c.mu.Lock()
	c.stopping = true
	held := make([]int, 0, len(c.held))
	for p := range c.held {
		held = append(held, p)
	}
	comps := make([]string, 0, len(c.localComps))
	for d := range c.localComps {
		comps = append(comps, d)
	}
	c.mu.Unlock()
	// Leave the members first, so that preferred owners exclude us.
	c.members.Delete(ctx, c.cfg.Name)
	if keys, err := c.members.Keys(ctx); err == nil {
		keys = slices.DeleteFunc(keys, func(k string) bool { return k == c.cfg.Name })
		slices.Sort(keys)
		c.mu.Lock()
		c.live = keys
		c.mu.Unlock()
	}
	for _, d := range comps {
		c.ComponentDown(d)
	}
	c.mu.Lock()
	live := slices.Clone(c.live)
	c.mu.Unlock()
	for _, p := range held {
		c.release(ctx, p, preferred(p, live))
	}
}

// Shutdown leaves the cluster: it stops the loops and the subscription,
// then closes the connection and the embedded server. Call Handover
// first for a graceful stop.
func (c *Cluster) Shutdown(ctx context.Context) error {
	if c.cancel != nil {
		// Stanzas waiting for their component get it (it attaches to
		// another node when this one stops), or bounce when ctx ends.
		c.mu.Lock()
		c.compClosed = true
		c.mu.Unlock()
		done := doneChan(&c.compWaits)
		select {
		case <-done:
		case <-ctx.Done():
			c.giveUpOnce.Do(func() { close(c.compGiveUp) })
			<-done
		}
		// Stanzas sent get their answers; those without one, and what
		// waits for an owner, get a last try, then bounce.
		c.unanswered(c.cfg.ForwardTimeout)
		c.retry(true)
		c.cancel()
	}
	if c.sub != nil {
		c.sub.Drain()
	}
	select {
	case <-doneChan(&c.wg):
	case <-ctx.Done():
	}
	c.close()
	return nil
}

// doneChan returns a channel closed when wg is done.
func doneChan(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}

func (c *Cluster) close() {
	if c.nc != nil {
		c.nc.Close()
	}
	c.stopServer()
}

func (c *Cluster) stopServer() {
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
}

// PreferredOwner returns the node that a settled cluster of the given
// members, with the given number of partitions, gives remote's partition:
// for tests and tools that need to know which node dials a domain.
func PreferredOwner(remote string, members []string, partitions int) string {
	m := slices.Clone(members)
	slices.Sort(m)
	return preferred(partition(remote, partitions), m)
}

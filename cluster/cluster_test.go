package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s/s2stest"
	"github.com/s2sd/s2sd/stanza"
)

// fakePool stands for a node's s2s pool: it queues what it is given.
type fakePool struct {
	mu     sync.Mutex
	queue  map[string][]*route.Stanza
	got    int
	refuse string // a stanza id answered with service-unavailable
}

func (p *fakePool) Deliver(ctx context.Context, s *route.Stanza) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse != "" && s.ID == p.refuse {
		return stanza.New(stanza.ServiceUnavailable, "refused")
	}
	if p.queue == nil {
		p.queue = map[string][]*route.Stanza{}
	}
	d := s.To.Domainpart()
	p.queue[d] = append(p.queue[d], s)
	p.got++
	return nil
}

func (p *fakePool) Domains() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for d := range p.queue {
		out = append(out, d)
	}
	return out
}

func (p *fakePool) Evict(remote string) []*route.Stanza {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue[remote]
	delete(p.queue, remote)
	return q
}

func (p *fakePool) Durable(context.Context) error { return nil }

func (p *fakePool) RestoreFrom(func(func(id uint64, local, remote string, raw []byte, at time.Time)) error) (int, error) {
	return 0, nil
}

func (p *fakePool) ids(remote string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.queue[remote] {
		out = append(out, s.ID)
	}
	return out
}

// fakeComp stands for a component handler on a node.
type fakeComp struct {
	mu        sync.Mutex
	connected bool
	got       []string
}

func (f *fakeComp) Deliver(ctx context.Context, s *route.Stanza) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.connected {
		return route.ErrNotConnected
	}
	f.got = append(f.got, s.ID)
	return nil
}

func (f *fakeComp) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

type bounces struct {
	mu  sync.Mutex
	got []string
}

// ownedBy returns a remote domain whose partition n holds.
func ownedBy(n *testNode) string {
	for i := 0; ; i++ {
		if d := fmt.Sprintf("r%d.example", i); n.c.Owns(d) {
			return d
		}
	}
}

// none fails t if anything bounced.
func (b *bounces) none(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) != 0 {
		t.Errorf("bounced: %v", b.got)
	}
}

func (b *bounces) Bounce(ctx context.Context, s *route.Stanza, e *stanza.Error) {
	b.mu.Lock()
	b.got = append(b.got, s.ID+":"+string(e.Condition))
	b.mu.Unlock()
}

type testNode struct {
	c       *Cluster
	pool    *fakePool
	comp    *fakeComp
	remote  route.Handler
	compH   route.Handler
	bounces *bounces
}

// startNodes starts n cluster members in this process, each with an
// embedded NATS server routed to the others.
func startNodes(t *testing.T, n int, ttl time.Duration) []*testNode {
	t.Helper()
	ports := s2stest.FreeAddrs(t, n)
	return startNodesOn(t, ports, ttl, func(i, j int) string { return ports[j] })
}

// startNodesOn starts a member listening on each of ports, whose route to
// member j is route(i, j).
func startNodesOn(t *testing.T, ports []string, ttl time.Duration, route func(i, j int) string) []*testNode {
	t.Helper()
	n := len(ports)
	nodes := make([]*testNode, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	// NATS tells each node the route addresses its peers advertise, and
	// it connects to those it is not connected to yet: advertising the
	// real listeners would let routes bypass a test's proxies. Nothing
	// listens on the address advertised.
	dead := s2stest.FreeAddrs(t, 1)[0]
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var routes []string
			for j := range ports {
				if j != i {
					routes = append(routes, route(i, j))
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := Start(ctx, Config{
				Name: fmt.Sprintf("n%d", i+1), Listen: ports[i], Routes: routes, Advertise: dead,
				StoreDir: t.TempDir(), LeaseTTL: ttl, Partitions: 16, ComponentGrace: time.Second, Logger: testLogger(),
			})
			if err != nil {
				errs[i] = err
				return
			}
			tn := &testNode{c: c, pool: &fakePool{}, comp: &fakeComp{}, bounces: &bounces{}}
			tn.remote = c.WrapRemote(tn.pool)
			tn.compH = c.WrapComponent("bot.example", tn.comp)
			c.SetBouncer(tn.bounces)
			nodes[i] = tn
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range nodes {
		if err := tn.c.Run(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tn.c.Shutdown(context.Background()) })
	}
	return nodes
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !f(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

// settled reports whether the live nodes own every partition once.
func settled(nodes []*testNode, live int) bool {
	seen := map[int]bool{}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		st := n.c.Status()
		if len(st.Members) != live || len(st.Moving) > 0 {
			return false
		}
		for _, p := range st.Owned {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	if len(seen) != 16 {
		return false
	}
	// Every node sends each partition's stanzas to its holder.
	for _, n := range nodes {
		if n == nil {
			continue
		}
		for p := range 16 {
			o, local := n.c.ownerOf(p)
			holder := ""
			for _, m := range nodes {
				if m != nil && slices.Contains(m.c.Status().Owned, p) {
					holder = m.c.Name()
				}
			}
			if local && holder != n.c.Name() || !local && o != holder {
				return false
			}
		}
	}
	return true
}

func msg(t *testing.T, from, to, id string, origin route.Origin) *route.Stanza {
	t.Helper()
	s, err := route.New([]byte(fmt.Sprintf("<message xmlns='jabber:server' from='%s' to='%s' id='%s'/>", from, to, id)), "jabber:server")
	if err != nil {
		t.Fatal(err)
	}
	s.Origin = origin
	return s
}

func TestCluster(t *testing.T) {
	nodes := startNodes(t, 3, 2*time.Second)
	eventually(t, 20*time.Second, "three members sharing the partitions", func() bool { return settled(nodes, 3) })

	t.Run("shared dialback secret", func(t *testing.T) {
		ctx := context.Background()
		var first []byte
		for i, n := range nodes {
			s, err := n.c.Secret(ctx, []byte(fmt.Sprintf("candidate-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = s
			} else if string(s) != string(first) {
				t.Fatalf("node %d has secret %q, node 1 %q", i+1, s, first)
			}
		}
	})

	t.Run("remote stanzas go to the partition's owner", func(t *testing.T) {
		for i := range 20 {
			d := fmt.Sprintf("remote%d.example", i)
			for j, n := range nodes {
				if err := n.remote.Deliver(context.Background(), msg(t, "bot@bot.example", "u@"+d, fmt.Sprintf("%d-%d", i, j), route.FromComponent)); err != nil {
					t.Fatal(err)
				}
			}
			// Sent to the owner without waiting for its answer: they
			// arrive within a moment.
			eventually(t, 5*time.Second, "the stanzas for "+d, func() bool {
				n := 0
				for _, tn := range nodes {
					n += len(tn.pool.ids(d))
				}
				return n == 3
			})
			holders := 0
			for _, n := range nodes {
				if ids := n.pool.ids(d); len(ids) > 0 {
					holders++
					if len(ids) != 3 || !n.c.Owns(d) {
						t.Errorf("%s: node %s has %v (owns: %v)", d, n.c.Name(), ids, n.c.Owns(d))
					}
				}
			}
			if holders != 1 {
				t.Errorf("%s: queued on %d nodes, want 1", d, holders)
			}
		}
	})

	t.Run("no relay between remote domains, on any node", func(t *testing.T) {
		for _, n := range nodes {
			for i := range 20 {
				d := fmt.Sprintf("other%d.example", i)
				if n.c.Owns(d) {
					continue
				}
				err := n.remote.Deliver(context.Background(), msg(t, "x@evil.example", "u@"+d, "relay", route.FromRemote))
				if !isStanzaError(err) {
					t.Fatalf("forwarded remote-to-remote stanza: %v", err)
				}
				return
			}
		}
	})

	t.Run("components anywhere", func(t *testing.T) {
		nodes[2].comp.mu.Lock()
		nodes[2].comp.connected = true
		nodes[2].comp.mu.Unlock()
		nodes[2].c.ComponentUp("bot.example", false)
		eventually(t, 5*time.Second, "component registration", func() bool {
			return nodes[0].c.Status().Components["bot.example"] == "n3"
		})
		for i, n := range nodes {
			if err := n.compH.Deliver(context.Background(), msg(t, "u@remote.example", "bot@bot.example", fmt.Sprint("c", i), route.FromRemote)); err != nil {
				t.Fatal(err)
			}
		}
		if got := nodes[2].comp.ids(); !slices.Equal(got, []string{"c0", "c1", "c2"}) {
			t.Errorf("component got %v", got)
		}
	})

	t.Run("a dead node's partitions move after the lease TTL", func(t *testing.T) {
		rest := []*testNode{nodes[0], nodes[1]}
		// n3 dies without a word: its NATS server goes, its leases stay
		// until they expire. Two of three keep the buckets' quorum.
		nodes[2].c.cancel()
		nodes[2].c.close()
		eventually(t, 15*time.Second, "n1 and n2 owning every partition", func() bool { return settled(rest, 2) })
		// The component it held is attached nowhere: stanzas for it
		// bounce after the grace.
		err := nodes[0].compH.Deliver(context.Background(), msg(t, "u@remote.example", "bot@bot.example", "late", route.FromRemote))
		if err != route.ErrNotConnected {
			t.Errorf("stanza for a component on a dead node: %v, want ErrNotConnected after the grace", err)
		}
	})
	t.Run("handover on a graceful stop", func(t *testing.T) {
		// Stanzas queued on n2 for its own partitions move to the others.
		var mine []string
		for i := range 40 {
			d := fmt.Sprintf("h%d.example", i)
			if nodes[1].c.Owns(d) {
				nodes[1].remote.Deliver(context.Background(), msg(t, "bot@bot.example", "u@"+d, "h", route.FromComponent))
				mine = append(mine, d)
			}
		}
		if len(mine) == 0 {
			t.Fatal("n2 owns none of 40 domains")
		}
		nodes[1].c.Handover(context.Background())
		nodes[1].c.Shutdown(context.Background())
		for _, d := range mine {
			if n := len(nodes[0].pool.ids(d)); n != 1 {
				t.Errorf("%s: %d copies on n1 after handover, want 1", d, n)
			}
		}
		// n1 alone holds no quorum of the buckets: it owns what it held.
	})

}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("CLUSTER_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startSolo starts a node without routes, "solo", with a fakePool: a
// cluster of one, stopped when the test ends. It returns the node, its
// pool and the handler wrapping it.
func startSolo(t *testing.T) (*Cluster, *fakePool, route.Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Name: "solo", Listen: s2stest.FreeAddrs(t, 1)[0], StoreDir: t.TempDir(), LeaseTTL: 2 * time.Second, Partitions: 16, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown(context.Background()) })
	pool := &fakePool{}
	h := c.WrapRemote(pool)
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c, pool, h
}

// TestOneNode: a node without routes is a cluster of one: it owns every
// partition and delivers to its own pool.
func TestOneNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, pool, h := startSolo(t)
	eventually(t, 10*time.Second, "solo owning every partition", func() bool { return len(c.Status().Owned) == 16 })
	if err := h.Deliver(ctx, msg(t, "bot@bot.example", "u@remote.example", "1", route.FromComponent)); err != nil {
		t.Fatal(err)
	}
	if ids := pool.ids("remote.example"); len(ids) != 1 {
		t.Fatalf("pool has %v", ids)
	}
}

// TestClusterSplit: a member cut off from the others (its NATS routes
// refused) gives up its partitions before the others take them, so that
// no partition has an owner on both sides beyond the lease TTL; once the
// routes come back the three share the partitions again.
func TestClusterSplit(t *testing.T) {
	const ttl = 2 * time.Second
	ports := s2stest.FreeAddrs(t, 3)
	proxies := map[[2]int]*s2stest.Proxy{}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				proxies[[2]int{i, j}] = s2stest.NewProxy(t, ports[j])
			}
		}
	}
	nodes := startNodesOn(t, ports, ttl, func(i, j int) string { return proxies[[2]int{i, j}].Addr.String() })
	eventually(t, 30*time.Second, "three members sharing the partitions", func() bool { return settled(nodes, 3) })

	split := func(on bool) {
		for k, p := range proxies {
			if k[0] == 2 || k[1] == 2 {
				p.Refuse(on)
				if on {
					p.Cut()
				}
			}
		}
	}
	split(true)
	// Watch every partition: how long it has an owner on both sides.
	both := map[int]time.Time{}
	var worst time.Duration
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		minority := nodes[2].c.Status().Owned
		majority := append(nodes[0].c.Status().Owned, nodes[1].c.Status().Owned...)
		for p := range 16 {
			if slices.Contains(minority, p) && slices.Contains(majority, p) {
				if both[p].IsZero() {
					both[p] = time.Now()
				}
				worst = max(worst, time.Since(both[p]))
			} else {
				delete(both, p)
			}
		}
	}
	if worst > ttl {
		t.Errorf("a partition had an owner on both sides of the split for %v, more than the lease TTL (%v)", worst, ttl)
	}
	if owned := nodes[2].c.Status().Owned; len(owned) != 0 {
		t.Errorf("the member cut off still owns %v", owned)
	}
	eventually(t, 30*time.Second, "the two members taking every partition", func() bool { return settled(nodes[:2], 2) })
	split(false)
	eventually(t, 30*time.Second, "three members sharing the partitions again", func() bool { return settled(nodes, 3) })
}

// TestForwardToStoppingNode: a node that is leaving refuses the stanzas
// other nodes still forward to it (their view lags), and they go to the
// partition's next owner instead of leaving with the node's pool.
func TestForwardToStoppingNode(t *testing.T) {
	nodes := startNodes(t, 3, 2*time.Second)
	eventually(t, 20*time.Second, "three members sharing the partitions", func() bool { return settled(nodes, 3) })
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	// A domain n2 owns and that goes to n3 when n2 leaves, so that n1
	// forwards it in both views.
	var domain string
	var p int
	for i := 0; domain == ""; i++ {
		d := fmt.Sprintf("r%d.example", i)
		p = partition(d, 16)
		if o, _ := n1.c.ownerOf(p); o == "n2" && preferred(p, []string{"n1", "n3"}) == "n3" {
			domain = d
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n2.c.Handover(ctx)
	// n1 has not seen n2 leave yet.
	n1.c.mu.Lock()
	n1.c.live = []string{"n1", "n2", "n3"}
	n1.c.owners[p] = "n2"
	n1.c.mu.Unlock()
	if err := n1.remote.Deliver(ctx, msg(t, "bot@bot.example", "u@"+domain, "late", route.FromComponent)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the stanza at the next owner", func() bool { return slices.Contains(n3.pool.ids(domain), "late") })
	if ids := n2.pool.ids(domain); len(ids) != 0 {
		t.Errorf("the stopping node queued %v", ids)
	}
	n1.bounces.none(t)
}

// TestPipelineOrder: a node sends one stream's stanzas to the owner
// without waiting for each answer; they arrive in the order sent, and one
// the owner refuses returns to its sender as an error while the others
// go on.
func TestPipelineOrder(t *testing.T) {
	nodes := startNodes(t, 3, 2*time.Second)
	eventually(t, 20*time.Second, "three members sharing the partitions", func() bool { return settled(nodes, 3) })
	from, to := nodes[0], nodes[1]
	domain := ownedBy(to)
	const n = 3 * forwardWindow
	to.pool.mu.Lock()
	to.pool.refuse = "100"
	to.pool.mu.Unlock()
	ctx := context.Background()
	for i := range n {
		if err := from.remote.Deliver(ctx, msg(t, "bot@bot.example", "u@"+domain, strconv.Itoa(i), route.FromComponent)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "every stanza at the owner", func() bool { return len(to.pool.ids(domain)) == n-1 })
	for i, id := range to.pool.ids(domain) {
		want := i
		if i >= 100 {
			want = i + 1
		}
		if id != strconv.Itoa(want) {
			t.Fatalf("stanza %d at the owner is %s, want %d", i, id, want)
		}
	}
	eventually(t, 5*time.Second, "the refused stanza back at its sender", func() bool {
		from.bounces.mu.Lock()
		defer from.bounces.mu.Unlock()
		return slices.Equal(from.bounces.got, []string{"100:service-unavailable"})
	})
}

// drained stands for the stream a stanza was read from.
type drained struct{}

func (drained) Drained() bool { return true }

// TestComponentWaitAcrossStop: a stanza for a component attached nowhere
// is taken (its stream acknowledges it) and waits for the component; the
// node that holds it stops meanwhile, and the component attaches to
// another node: the stanza reaches it there, instead of vanishing with
// the stopped node.
func TestComponentWaitAcrossStop(t *testing.T) {
	nodes := startNodes(t, 2, 2*time.Second)
	n1, n2 := nodes[0], nodes[1]
	eventually(t, 20*time.Second, "two members", func() bool {
		return len(n1.c.Status().Members) == 2 && len(n2.c.Status().Members) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := msg(t, "u@remote.example", "bot@bot.example", "waits", route.FromRemote)
	s.Source = drained{}
	if err := n1.compH.Deliver(ctx, s); err != nil {
		t.Fatalf("stanza for a component attached nowhere: %v, want it taken", err)
	}
	n1.c.Handover(ctx)
	stopped := make(chan struct{})
	go func() {
		n1.c.Shutdown(ctx)
		close(stopped)
	}()
	time.Sleep(200 * time.Millisecond)
	n2.comp.mu.Lock()
	n2.comp.connected = true
	n2.comp.mu.Unlock()
	n2.c.ComponentUp("bot.example", false)
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("the stopping node did not stop")
	}
	if got := n2.comp.ids(); !slices.Equal(got, []string{"waits"}) {
		t.Errorf("component on the other node got %v, want the stanza", got)
	}
	n1.bounces.none(t)
}

// TestComponentWaitKeepsOrder: stanzas from one stream for a component
// attached nowhere wait for it in the order they came, and a stanza that
// comes while they wait goes behind them, even once the component is
// attached: the component gets them all, in order.
func TestComponentWaitKeepsOrder(t *testing.T) {
	nodes := startNodes(t, 1, 2*time.Second)
	n1 := nodes[0]
	n1.c.cfg.ComponentGrace = 10 * time.Second
	var want []string
	send := func(i int) {
		id := fmt.Sprint("o", i)
		want = append(want, id)
		s := msg(t, "u@remote.example", "bot@bot.example", id, route.FromRemote)
		s.Source = drained{}
		if err := n1.compH.Deliver(context.Background(), s); err != nil {
			t.Fatalf("stanza %s for a component attached nowhere: %v, want it taken", id, err)
		}
	}
	for i := range 20 {
		send(i)
	}
	time.Sleep(300 * time.Millisecond) // they wait, retrying
	n1.comp.mu.Lock()
	n1.comp.connected = true
	n1.comp.mu.Unlock()
	n1.c.ComponentUp("bot.example", false)
	// Attached now: these still go behind the ones that wait.
	for i := 20; i < 40; i++ {
		send(i)
	}
	eventually(t, 10*time.Second, "every stanza delivered", func() bool { return len(n1.comp.ids()) == len(want) })
	if got := n1.comp.ids(); !slices.Equal(got, want) {
		t.Fatalf("component got %v, want %v", got, want)
	}
	n1.bounces.none(t)
}

// TestComponentWaitExpires: stanzas that wait in their component's queue
// for a component that never attaches are bounced once their
// ComponentGrace (1 s here) has passed, each once, in order, and none is
// delivered; the queue is then gone, and a later stanza waits anew.
func TestComponentWaitExpires(t *testing.T) {
	nodes := startNodes(t, 1, 2*time.Second)
	n1 := nodes[0]
	send := func(id string) {
		s := msg(t, "u@remote.example", "bot@bot.example", id, route.FromRemote)
		s.Source = drained{}
		if err := n1.compH.Deliver(context.Background(), s); err != nil {
			t.Fatalf("stanza %s for a component attached nowhere: %v, want it taken", id, err)
		}
	}
	var want []string
	for i := range 5 {
		send(fmt.Sprint("e", i))
		want = append(want, fmt.Sprintf("e%d:service-unavailable", i))
	}
	time.Sleep(2500 * time.Millisecond) // past the grace
	bounced := func() []string {
		n1.bounces.mu.Lock()
		defer n1.bounces.mu.Unlock()
		return slices.Clone(n1.bounces.got)
	}
	if got := bounced(); !slices.Equal(got, want) {
		t.Fatalf("bounced %v, want %v", got, want)
	}
	n1.c.mu.Lock()
	_, queued := n1.c.compQueue["bot.example"]
	n1.c.mu.Unlock()
	if queued {
		t.Fatal("the queue outlived its stanzas")
	}
	send("late")
	want = append(want, "late:service-unavailable")
	eventually(t, 5*time.Second, "the later stanza bounced after its own wait", func() bool { return len(bounced()) == len(want) })
	if got := bounced(); !slices.Equal(got, want) {
		t.Fatalf("bounced %v, want %v", got, want)
	}
	if got := n1.comp.ids(); len(got) != 0 {
		t.Fatalf("component attached nowhere got %v", got)
	}
}

// TestComponentWaitGivesUp: a node that stops while a stanza waits for a
// component that attaches nowhere bounces it when its stop's time ends,
// before it leaves the cluster.
func TestComponentWaitGivesUp(t *testing.T) {
	nodes := startNodes(t, 1, 2*time.Second)
	n1 := nodes[0]
	n1.c.cfg.ComponentGrace = time.Minute
	s := msg(t, "u@remote.example", "bot@bot.example", "waits", route.FromRemote)
	s.Source = drained{}
	if err := n1.compH.Deliver(context.Background(), s); err != nil {
		t.Fatalf("stanza for a component attached nowhere: %v, want it taken", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	n1.c.Handover(ctx)
	n1.c.Shutdown(ctx)
	n1.bounces.mu.Lock()
	defer n1.bounces.mu.Unlock()
	if !slices.Equal(n1.bounces.got, []string{"waits:service-unavailable"}) {
		t.Errorf("bounced %v, want the waiting stanza", n1.bounces.got)
	}
}

// TestSilentOwner: the owner of a domain takes the forwarded stanzas off
// the wire but answers nothing for longer than ForwardTimeout. The
// sender keeps them waiting, in order (a later one waits behind them),
// neither bounced nor lost, and gives them to the owner once it answers
// again.
func TestSilentOwner(t *testing.T) {
	nodes := startNodes(t, 2, 2*time.Second)
	eventually(t, 20*time.Second, "two members sharing the partitions", func() bool { return settled(nodes, 2) })
	n1, n2 := nodes[0], nodes[1]
	domain := ownedBy(n2)
	// n2 stops answering: what reaches it is swallowed.
	var swallowed atomic.Int32
	if err := n2.c.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	silent, err := n2.c.nc.Subscribe(subject("n2"), func(*nats.Msg) { swallowed.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	send := func(id string) {
		t.Helper()
		if err := n1.remote.Deliver(context.Background(), msg(t, "bot@bot.example", "u@"+domain, id, route.FromComponent)); err != nil {
			t.Fatal(err)
		}
	}
	send("s1")
	// Past the forward timeout, and the retries' probes after it.
	time.Sleep(2*n1.c.cfg.ForwardTimeout + 500*time.Millisecond)
	send("s2")
	if got := n1.c.Status().Waiting; got != 2 {
		t.Errorf("%d stanzas wait at the sender, want 2", got)
	}
	if swallowed.Load() == 0 {
		t.Error("the owner was never asked")
	}
	if ids := n2.pool.ids(domain); len(ids) != 0 {
		t.Fatalf("the silent owner queued %v", ids)
	}
	// n2 answers again.
	silent.Unsubscribe()
	if n2.c.sub, err = n2.c.nc.Subscribe(subject("n2"), n2.c.receive); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both stanzas at the owner", func() bool { return len(n2.pool.ids(domain)) >= 2 })
	send("s3")
	eventually(t, 10*time.Second, "the next stanza at the owner", func() bool { return len(n2.pool.ids(domain)) >= 3 })
	if ids := n2.pool.ids(domain); !slices.Equal(ids, []string{"s1", "s2", "s3"}) {
		t.Errorf("owner queued %v, want [s1 s2 s3]", ids)
	}
	n1.bounces.none(t)
}

// TestWaitingBound: the bound on stanzas waiting for an owner counts those
// a retry round holds while it runs (outside the waiting list), so that a
// round cannot let twice the bound wait.
func TestWaitingBound(t *testing.T) {
	defer func(n int) { maxWaiting = n }(maxWaiting)
	maxWaiting = 3
	c := &Cluster{waitCount: map[string]int{}}
	for i := range 3 {
		if err := c.wait(msg(t, "bot@bot.example", "u@remote.example", fmt.Sprint("w", i), route.FromComponent)); err != nil {
			t.Fatalf("stanza %d: %v", i, err)
		}
	}
	// A retry round takes the list, as retry does, and is still running.
	c.mu.Lock()
	c.waiting = nil
	c.mu.Unlock()
	err := c.wait(msg(t, "bot@bot.example", "u@remote.example", "w3", route.FromComponent))
	if !errors.Is(err, stanza.New(stanza.ResourceConstraint, "")) {
		t.Fatalf("a fourth stanza while the round holds three: %v, want resource-constraint", err)
	}
	if got := c.Status().Waiting; got != 3 {
		t.Errorf("status says %d waiting, want 3", got)
	}
}

// lossyKV is a bucket whose first answers to Create and Get are lost: the
// request waits until its context ends, as one does whose answer a route
// dropped while the node caught up after a restart.
type lossyKV struct {
	jetstream.KeyValue
	lose   int // the first lose calls of each kind are lost
	value  []byte
	create atomic.Int32
	get    atomic.Int32
}

type entry struct {
	jetstream.KeyValueEntry
	value []byte
}

func (e entry) Value() []byte { return e.value }

func (kv *lossyKV) Create(ctx context.Context, key string, value []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	if int(kv.create.Add(1)) <= kv.lose {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return 0, jetstream.ErrKeyExists
}

func (kv *lossyKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if int(kv.get.Add(1)) <= kv.lose {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return entry{value: kv.value}, nil
}

// TestSecretTry checks that a request for the dialback secret whose answer
// is lost takes its own time, not the caller's whole budget: Secret tries
// again and returns the secret another node stored, well within a budget
// that one lost request would have used up.
func TestSecretTry(t *testing.T) {
	defer func(d time.Duration) { secretTry = d }(secretTry)
	secretTry = 100 * time.Millisecond
	kv := &lossyKV{lose: 1, value: []byte("stored by another node")}
	c := &Cluster{conf: kv, log: slog.New(slog.DiscardHandler)}

	ctx, cancel := context.WithTimeout(context.Background(), 10*secretTry)
	defer cancel()
	got, err := c.Secret(ctx, []byte("candidate"))
	if err != nil {
		t.Fatalf("Secret: %v (Create called %d times, Get %d)", err, kv.create.Load(), kv.get.Load())
	}
	if string(got) != "stored by another node" {
		t.Errorf("Secret = %q, want the stored secret", got)
	}
	if kv.create.Load() < 2 || kv.get.Load() < 2 {
		t.Errorf("Create called %d times, Get %d: want a second try of each after the lost ones", kv.create.Load(), kv.get.Load())
	}

	// With every answer lost, Secret gives up when the caller's budget
	// ends, with its error.
	kv = &lossyKV{lose: 1 << 30}
	c.conf = kv
	ctx, cancel = context.WithTimeout(context.Background(), 5*secretTry)
	defer cancel()
	if _, err := c.Secret(ctx, []byte("candidate")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Secret with no answers: err = %v, want the deadline", err)
	}
}

// TestAnswerSubjects checks how a pipelined stanza's answer comes back.
// Between nodes of this version, the owner answers on the sender's one
// answer subject with the stanza's number in a header, not on a subject
// per stanza, which misses nats-server's caches. A node of an earlier
// version, which answers on the per-stanza reply subject and knows no such
// header, still works both ways, as a rolling upgrade needs: its answers
// settle the stanzas sent to it, and a stanza it forwards is answered on
// its reply subject.
func TestAnswerSubjects(t *testing.T) {
	c, pool, _ := startSolo(t)

	// A node of an earlier version, "old": it answers on the reply
	// subject, with no header.
	var mu sync.Mutex
	var asked []*nats.Msg
	sub, err := c.nc.Subscribe(subject("old"), func(m *nats.Msg) {
		mu.Lock()
		asked = append(asked, m)
		mu.Unlock()
		m.RespondMsg(nats.NewMsg(m.Reply))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c.nc.Flush()
	for i := range 3 {
		if err := c.send("old", msg(t, "bot@bot.example", "u@remote.example", strconv.Itoa(i), route.FromComponent)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the old node's answers settling the stanzas", func() bool {
		c.pipe.mu.Lock()
		defer c.pipe.mu.Unlock()
		return len(c.pipe.pending) == 0
	})
	if c.isSuspect("old") || c.Status().Waiting > 0 {
		t.Errorf("answers on the reply subject were not taken: suspect %v, waiting %d", c.isSuspect("old"), c.Status().Waiting)
	}
	mu.Lock()
	for _, m := range asked {
		if m.Header.Get(hdrAnswerTo) != c.pipe.answers || m.Header.Get(hdrSeq) == "" || !strings.HasPrefix(m.Reply, c.pipe.inbox+".") {
			t.Errorf("request headers %v, reply %q: want the answer subject %q, a number and a reply subject", m.Header, m.Reply, c.pipe.answers)
		}
	}
	mu.Unlock()

	// Stanzas forwarded to this node: by a node of this version (answer
	// subject and number), then by an earlier one (reply subject only).
	nc, err := nats.Connect("", nats.InProcessServer(c.ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 4)
	if _, err := nc.ChanSubscribe("test.>", got); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	m := forwardMsg("solo", kindRemote, msg(t, "bot@bot.example", "u@remote.example", "new", route.FromComponent))
	m.Reply = "test.reply.1"
	m.Header.Set(hdrAnswerTo, "test.answers")
	m.Header.Set(hdrSeq, "zz")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.Subject != "test.answers" || a.Header.Get(hdrSeq) != "zz" || a.Header.Get(hdrError) != "" {
			t.Errorf("answer on %q with headers %v: want test.answers, S2S-Seq zz, no error", a.Subject, a.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to a stanza with an answer subject")
	}
	m = forwardMsg("solo", kindRemote, msg(t, "bot@bot.example", "u@remote.example", "old", route.FromComponent))
	m.Reply = "test.reply.2"
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.Subject != "test.reply.2" || a.Header.Get(hdrError) != "" {
			t.Errorf("answer on %q with headers %v: want the reply subject, no error", a.Subject, a.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer on the reply subject of a stanza from an earlier version")
	}
	select {
	case a := <-got:
		t.Errorf("an answer more, on %q", a.Subject)
	case <-time.After(200 * time.Millisecond):
	}
	if ids := pool.ids("remote.example"); !slices.Equal(ids, []string{"new", "old"}) {
		t.Errorf("the pool has %v, want [new old]", ids)
	}
}

// slowPool is a pool whose queue file confirms what it took only when
// told to (release), and counts how often it was asked.
type slowPool struct {
	fakePool
	asked   atomic.Int32
	release chan error
}

func (p *slowPool) Durable(ctx context.Context) error {
	p.asked.Add(1)
	select {
	case err := <-p.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestAfterDurable checks that the owner answers forwarded stanzas once
// its queue file holds them, and that the stanzas that come while it waits
// for one write share the next: one wait for many stanzas, not one each.
// A write that fails answers each of them with internal-server-error.
func TestAfterDurable(t *testing.T) {
	c := &Cluster{cfg: Config{ForwardTimeout: 10 * time.Second}}
	p := &slowPool{release: make(chan error)}
	const n = 10
	answers := make(chan string, n)
	answer := func(e string) { answers <- e }
	c.afterDurable(p, answer)
	eventually(t, 5*time.Second, "the first wait for the queue file", func() bool { return p.asked.Load() == 1 })
	for range n - 1 {
		c.afterDurable(p, answer)
	}
	p.release <- nil // the first write: the first stanza
	if e := <-answers; e != "" {
		t.Fatalf("answer %q, want the stanza taken", e)
	}
	p.release <- nil // the second: the nine that came meanwhile
	for range n - 1 {
		select {
		case e := <-answers:
			if e != "" {
				t.Fatalf("answer %q, want the stanza taken", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stanzas left unanswered")
		}
	}
	if got := p.asked.Load(); got != 2 {
		t.Errorf("the queue file was waited for %d times for %d stanzas that came in two groups, want 2", got, n)
	}

	c.afterDurable(p, answer)
	p.release <- errors.New("disk full")
	if e := <-answers; !strings.HasPrefix(e, string(stanza.InternalServerError)) {
		t.Errorf("answer after a failed write %q, want internal-server-error", e)
	}
	// The waiting goroutine ends once nothing waits, and the next stanza
	// starts another.
	eventually(t, 5*time.Second, "the wait to end", func() bool {
		c.durMu.Lock()
		defer c.durMu.Unlock()
		return !c.durBusy
	})
	c.afterDurable(p, answer)
	p.release <- nil
	if e := <-answers; e != "" {
		t.Errorf("answer %q, want the stanza taken", e)
	}

	// A queue file that does not confirm within ForwardTimeout: the
	// stanzas waiting get internal-server-error once it has passed, and
	// one that came meanwhile waits for the next write, within its own.
	c.cfg.ForwardTimeout = 100 * time.Millisecond
	start := time.Now()
	c.afterDurable(p, answer)
	eventually(t, 5*time.Second, "the wait for the queue file", func() bool { return p.asked.Load() == 5 })
	c.afterDurable(p, answer)
	if e := <-answers; !strings.HasPrefix(e, string(stanza.InternalServerError)) || time.Since(start) < c.cfg.ForwardTimeout {
		t.Errorf("answer %q after %v, want internal-server-error past %v", e, time.Since(start), c.cfg.ForwardTimeout)
	}
	p.release <- nil
	if e := <-answers; e != "" {
		t.Errorf("answer %q to the stanza that came meanwhile, want the stanza taken", e)
	}
}

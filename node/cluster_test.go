package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// clusterConfig is a node of the cluster serving c.test and its
// component bot.c.test, with NATS routes to the others.
func clusterConfig(t testing.TB, name, dns, listen string, routes []string) *node.Config {
	t.Helper()
	return clusterConfigWith(t, name, dns, listen, routes, "node")
}

// clusterConfigWith is clusterConfig with the durability given.
func clusterConfigWith(t testing.TB, name, dns, listen string, routes []string, durability string) *node.Config {
	t.Helper()
	rs := ""
	for _, r := range routes {
		rs += fmt.Sprintf("%q, ", r)
	}
	cfg, err := node.ParseConfig(fmt.Appendf(nil, `
[server]
domains = ["c.test"]
state_dir = %[1]q

[s2s]
listen = "127.0.0.1:0"
dns = [%[2]q]
retry_for = "30s"

[components]
listen = "127.0.0.1:0"

[[component]]
domain = "bot.c.test"
secret = "shared"

[cluster]
name = %[3]q
listen = %[4]q
routes = [%[5]s]
lease_ttl = "2s"
partitions = 16
durability = %[6]q
`, t.TempDir(), dns, name, listen, rs, durability))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startCluster starts n nodes of one cluster in this process, all serving
// c.test, and publishes them all in dns.
func startCluster(t testing.TB, dns *s2stest.DNS, n int) []*node.Node {
	t.Helper()
	return startClusterWith(t, dns, n, "node")
}

// startClusterWith is startCluster with the durability given.
func startClusterWith(t testing.TB, dns *s2stest.DNS, n int, durability string) []*node.Node {
	t.Helper()
	ports := s2stest.FreeAddrs(t, n)
	nodes := make([]*node.Node, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var routes []string
			for j, p := range ports {
				if j != i {
					routes = append(routes, p)
				}
			}
			name := fmt.Sprintf("n%d", i+1)
			log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", name)
			nd, err := node.New(clusterConfigWith(t, name, dns.Addr(), ports[i], routes, durability), node.Options{Logger: log})
			if err == nil {
				err = nd.Start()
			}
			nodes[i] = nd
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, nd := range nodes {
		t.Cleanup(func() { nd.Close() })
		ap := netip.MustParseAddrPort(nd.S2SAddr().String())
		host := fmt.Sprintf("n%d.c.test", i+1)
		dns.AddA(host, "127.0.0.1")
		dns.AddSRV("_xmpp-server._tcp", "c.test", host, ap.Port(), 0, 10)
		dns.AddSRV("_xmpp-server._tcp", "bot.c.test", host, ap.Port(), 0, 10)
	}
	return nodes
}

// settledNodes reports whether every live node sees the same members and
// the partitions are all owned once, each by its preferred owner.
func settledNodes(nodes []*node.Node, live int) bool {
	owned := 0
	for _, n := range nodes {
		st := n.Cluster().Status()
		if len(st.Members) != live || len(st.Moving) > 0 {
			return false
		}
		owned += len(st.Owned)
	}
	return owned == 16
}

// TestClusterFederation: three nodes serve c.test; a remote server
// federates with the cluster both ways, whichever node it reaches: its
// stanzas reach a component attached to one node, the component's answers
// leave through the one node that owns the remote domain, and that
// node's dialback key is verified by whichever node the remote server
// asks.
func TestClusterFederation(t *testing.T) {
	dns := s2stest.NewDNS(t)
	nodes := startCluster(t, dns, 3)
	for end := time.Now().Add(30 * time.Second); !settledNodes(nodes, 3); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the cluster did not settle in 30s")
		}
	}
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{})
	bot := attach(t, nodes[2], "bot.c.test")
	for end := time.Now().Add(10 * time.Second); nodes[0].Cluster().Status().Components["bot.c.test"] != "n3"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("n1 does not know where bot.c.test is")
		}
	}
	const n = 30
	for i := range n {
		remote.Send(t, fmt.Sprintf("<message from='u@remote.test' to='x@bot.c.test' id='in%d'><body>hi</body></message>", i))
	}
	for i := range n {
		s := next(t, bot)
		if s.ID != fmt.Sprintf("in%d", i) || s.From.String() != "u@remote.test" {
			t.Fatalf("component got %s, want in%d from u@remote.test", s.El.Raw, i)
		}
	}
	for i := range n {
		bot.Send(fmt.Appendf(nil, "<message from='x@bot.c.test' to='u@remote.test' id='out%d'><body>back</body></message>", i))
	}
	seen := map[string]bool{}
	for len(seen) < n {
		s := remote.Expect(t, 15*time.Second)
		if s.Type == "error" {
			t.Fatalf("bounce: %s", s.El.Raw)
		}
		if seen[s.ID] {
			t.Errorf("duplicate %s", s.ID)
		}
		seen[s.ID] = true
	}
	// One outbound stream in the whole cluster, on the owner.
	streams, owner := 0, ""
	for _, nd := range nodes {
		if k := len(nd.Pool().Streams()); k > 0 {
			streams += k
			owner = nd.Cluster().Name()
		}
	}
	if streams != 1 || !clusterOwns(nodes, owner, "remote.test") {
		t.Errorf("%d outbound streams in the cluster (on %s), want 1 on the owner of remote.test", streams, owner)
	}
	// The remote server checked that stream's dialback key with some node
	// of c.test: authenticated means the key verified, wherever it landed.
	// (A stream that only verified a key may still be listed, not
	// authenticated.)
	in := remote.S2S.Streams()
	if !slices.ContainsFunc(in, func(c *s2s.Conn) bool { return c.AuthMethod() == "dialback" }) {
		var methods []string
		for _, c := range in {
			methods = append(methods, fmt.Sprintf("%q", c.AuthMethod()))
		}
		t.Fatalf("remote.test's inbound streams authenticated with %v, want one with dialback", methods)
	}

	// conflict = replace holds across nodes: the component connecting to
	// n2 closes its stream on n3 with conflict.
	moved := attach(t, nodes[1], "bot.c.test")
	if _, err := bot.Next(); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("the component's stream on n3 after it connected to n2: %v, want a conflict stream error", err)
	}
	for end := time.Now().Add(10 * time.Second); nodes[0].Cluster().Status().Components["bot.c.test"] != "n2"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("n1 does not know that bot.c.test moved to n2")
		}
	}
	remote.Send(t, "<message from='u@remote.test' to='x@bot.c.test' id='moved'/>")
	if s := next(t, moved); s.ID != "moved" {
		t.Fatalf("component on n2 got %s", s.El.Raw)
	}

	// A graceful stop of the node holding the component: the stanzas to
	// it bounce only after the grace if it does not come back; here it
	// comes back on n1 and gets them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes[1].Shutdown(ctx)
	bot2 := attach(t, nodes[0], "bot.c.test")
	remote.Send(t, "<message from='u@remote.test' to='x@bot.c.test' id='after'/>")
	if s := next(t, bot2); s.ID != "after" {
		t.Fatalf("component on n1 got %s", s.El.Raw)
	}
	// Every node's view follows, though NATS may have served its watch
	// of the registry from the node that left.
	for end := time.Now().Add(10 * time.Second); nodes[2].Cluster().Status().Components["bot.c.test"] != "n1"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("n3 still sees bot.c.test at %q", nodes[2].Cluster().Status().Components["bot.c.test"])
		}
	}
	// /healthz-level health: a live member is healthy; a stopped one is not.
	if err := nodes[0].Cluster().Healthy(); err != nil {
		t.Errorf("n1: %v", err)
	}
}

func clusterOwns(nodes []*node.Node, name, remote string) bool {
	for _, nd := range nodes {
		if nd.Cluster().Name() == name {
			return nd.Cluster().Owns(remote)
		}
	}
	return false
}

// TestClusterReplicated: with durability "replicated", the stanzas the
// owner of a remote domain had accepted and not yet sent are sent by the
// node that takes its partition over when it dies: here the remote
// server is unreachable until the owner is gone.
func TestClusterReplicated(t *testing.T) {
	dns := s2stest.NewDNS(t)
	nodes := startClusterWith(t, dns, 3, "replicated")
	for end := time.Now().Add(30 * time.Second); !settledNodes(nodes, 3); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the cluster did not settle in 30s")
		}
	}
	if d := nodes[0].Cluster().Status().Durability; d != "replicated" {
		t.Fatalf("status says durability %q", d)
	}
	remote := s2stest.NewServer(t, dns, "remote.test", s2stest.Options{NoRegister: true})
	gate := s2stest.NewProxy(t, remote.Addr.String())
	gate.Refuse(true)
	dns.AddServer("remote.test", netip.MustParseAddrPort(gate.Addr.String()))

	names := []string{"n1", "n2", "n3"}
	owner := slices.Index(names, cluster.PreferredOwner("remote.test", names, 16))
	from := (owner + 1) % 3
	bot := attach(t, nodes[from], "bot.c.test")
	const n = 50
	for i := range n {
		bot.Send(fmt.Appendf(nil, "<message from='x@bot.c.test' to='u@remote.test' id='r%d'><body>kept</body></message>", i))
	}
	// Each stanza is answered by the owner once it is in the stream.
	for end := time.Now().Add(15 * time.Second); nodes[owner].Pool().Queued() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the owner has %d stanzas queued, want %d", nodes[owner].Pool().Queued(), n)
		}
	}
	if err := nodes[from].Pool().Durable(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The owner goes without handing anything over, as if killed; the
	// remote server becomes reachable.
	nodes[owner].Close()
	gate.Refuse(false)
	seen := map[string]int{}
	dups := 0
	for len(seen) < n {
		s := remote.Expect(t, 30*time.Second)
		if s.Type == "error" {
			t.Fatalf("bounce: %s", s.El.Raw)
		}
		if seen[s.ID]++; seen[s.ID] > 1 {
			dups++
		}
	}
	t.Logf("%d stanzas arrived through the new owner, %d repeated", n, dups)
}

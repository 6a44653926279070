package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/internal/leaktest"
	"github.com/s2sd/s2sd/internal/xmpptest"
	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// nodeConfig is the configuration of a test node serving domain, with the
// component bot.DOMAIN (secret "s-DOMAIN"), listening on loopback ports
// and resolving through dns.
func nodeConfig(t *testing.T, domain, dns string) *node.Config {
	t.Helper()
	cfg, err := node.ParseConfig(fmt.Appendf(nil, `
[server]
domains = [%[1]q]
state_dir = %[2]q
log_level = "debug"

[s2s]
listen = "127.0.0.1:0"
dns = [%[3]q]
retry_for = "5s"

[components]
listen = "127.0.0.1:0"

[[component]]
domain = "bot.%[1]s"
secret = "s-%[1]s"

[metrics]
listen = "127.0.0.1:0"
`, domain, t.TempDir(), dns))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startNode starts a node for domain and publishes it and its component
// in dns. The node is closed when the test ends if it is still running.
func startNode(t *testing.T, dns *s2stest.DNS, domain string, opts node.Options) *node.Node {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", domain)
	}
	n, err := node.New(nodeConfig(t, domain, dns.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ap := netip.MustParseAddrPort(n.S2SAddr().String())
	dns.AddServer(domain, ap)
	dns.AddServer("bot."+domain, ap)
	return n
}

func attach(t testing.TB, n *node.Node, domain string) *component.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secret, _ := n.Config().Secret(domain)
	c, err := component.Dial(ctx, n.ComponentAddr().String(), domain, secret)
	if err != nil {
		t.Fatalf("component %s: %v", domain, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expect reads n stanzas from c and checks that they are the messages
// ids, from from, in order.
func expect(t *testing.T, c *component.Conn, from string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		s := next(t, c)
		if s.Kind != "message" || s.ID != id || s.From.String() != from {
			t.Fatalf("got %s: %s; want message %s from %s", s, s.El.Raw, id, from)
		}
	}
}

// TestThreeNodes runs three nodes in one process, each with its own
// domain, component, listeners and metrics, federating through a loopback
// DNS zone; then shuts them down and checks that none of their goroutines
// remain.
func TestThreeNodes(t *testing.T) {
	dns := s2stest.NewDNS(t)
	// Only goroutines started from here on count.
	first := leaktest.Last()
	domains := []string{"a.test", "b.test", "c.test"}
	nodes := make([]*node.Node, len(domains))
	comps := make([]*component.Conn, len(domains))
	for i, d := range domains {
		nodes[i] = startNode(t, dns, d, node.Options{Version: "test"})
	}
	for i, d := range domains {
		comps[i] = attach(t, nodes[i], "bot."+d)
	}

	// a's component writes to b's and c's, which answer.
	const n = 5
	for i := range n {
		for _, to := range []string{"bot.b.test", "bot.c.test"} {
			if err := comps[0].Send(fmt.Appendf(nil, "<message from='x@bot.a.test/r' to='y@%s' id='m%d'><body>%d</body></message>", to, i, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("m%d", i))
	}
	expect(t, comps[1], "x@bot.a.test/r", ids...)
	expect(t, comps[2], "x@bot.a.test/r", ids...)
	comps[1].Send([]byte("<message from='y@bot.b.test' to='x@bot.a.test/r' id='from-b'/>"))
	expect(t, comps[0], "y@bot.b.test", "from-b")
	comps[2].Send([]byte("<message from='y@bot.c.test' to='x@bot.a.test/r' id='from-c'/>"))
	expect(t, comps[0], "y@bot.c.test", "from-c")
	// b and c federate too, and each node answers for its own domain.
	comps[1].Send([]byte("<iq from='y@bot.b.test' to='c.test' type='get' id='items'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"))
	if s := next(t, comps[1]); s.Type != "result" || !strings.Contains(string(s.El.Raw), "jid='bot.c.test'") {
		t.Fatalf("disco#items of c.test: %s", s.El.Raw)
	}

	// Each node counts on its own registry, which its listener serves.
	for i, want := range []float64{2 * n, 1, 1} {
		if got := routed(t, nodes[i], "component", "remote"); got != want {
			t.Errorf("%s routed %v stanzas from its component to remote domains, want %v", domains[i], got, want)
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + nodes[0].MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`s2sd_stanzas_routed_total{from="component",kind="message",to="remote"} %d`, 2*n); !strings.Contains(string(body), want) {
		t.Errorf("a's /metrics lacks %s", want)
	}

	// The nodes stop together, as a cluster's would.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Go(func() {
			if err := nd.Shutdown(ctx); err != nil {
				t.Errorf("%s: Shutdown: %v", domains[i], err)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Errorf("Shutdown took the whole grace: %v", ctx.Err())
	}
	for _, c := range comps {
		c.Close()
	}
	var left string
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if left = leaktest.Since(first, nil); left == "" {
			return
		}
	}
	t.Fatalf("goroutines left after Shutdown:\n%s", left)
}

// routed returns a node's s2sd_stanzas_routed_total for messages from and
// to the given origins, from its registry.
func routed(t *testing.T, n *node.Node, from, to string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "s2sd_stanzas_routed_total" {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"kind": "message", "from": from, "to": to}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestSeams: the wrappers in Options see what the Router sends to remote
// and component domains, with its origin, OnComponent sees components come
// and go, and the dialback secret given replaces the configuration's.
func TestSeams(t *testing.T) {
	dns := s2stest.NewDNS(t)
	type seen struct {
		to     string
		origin route.Origin
	}
	got := make(chan seen, 10)
	wrap := func(h route.Handler) route.Handler {
		return route.HandlerFunc(func(ctx context.Context, s *route.Stanza) error {
			got <- seen{s.To.String(), s.Origin}
			if s.To.Domainpart() == "elsewhere.test" {
				return nil // taken: another node would send it
			}
			return h.Deliver(ctx, s)
		})
	}
	var wrapped []string
	events := make(chan string, 10)
	secret := []byte("shared by the cluster")
	n := startNode(t, dns, "a.test", node.Options{
		WrapRemote: func(h route.Handler) route.Handler {
			if _, ok := h.(*s2s.Pool); !ok {
				t.Errorf("WrapRemote got %T", h)
			}
			return wrap(h)
		},
		WrapComponent: func(domain string, h route.Handler) route.Handler {
			if _, ok := h.(*component.Server); !ok {
				t.Errorf("WrapComponent got %T", h)
			}
			wrapped = append(wrapped, domain)
			return wrap(h)
		},
		OnComponent: func(domain string, up bool) {
			events <- fmt.Sprint(domain, " ", up)
		},
		DialbackSecret: secret,
	})
	if s := n.S2SServer().Secret; string(s) != string(secret) {
		t.Errorf("s2s server secret %q, want %q", s, secret)
	}
	if s := n.Dialer().Secret; string(s) != string(secret) {
		t.Errorf("dialer secret %q, want %q", s, secret)
	}
	if fmt.Sprint(wrapped) != "[bot.a.test]" {
		t.Errorf("WrapComponent called for %v", wrapped)
	}
	c := attach(t, n, "bot.a.test")
	if e := <-events; e != "bot.a.test true" {
		t.Errorf("OnComponent: %s", e)
	}
	c.Send([]byte("<message from='x@bot.a.test' to='y@elsewhere.test' id='out'/>"))
	if s := <-got; s.to != "y@elsewhere.test" || s.origin != route.FromComponent {
		t.Errorf("remote wrapper saw %+v", s)
	}
	c.Send([]byte("<message from='x@bot.a.test' to='z@bot.a.test' id='self'/>"))
	if s := <-got; s.to != "z@bot.a.test" || s.origin != route.FromComponent {
		t.Errorf("component wrapper saw %+v", s)
	}
	expect(t, c, "x@bot.a.test", "self")
	// A reload wraps the domains it adds, and only those.
	cfg := nodeConfig(t, "a.test", dns.Addr())
	cfg.Server.StateDir = n.Config().Server.StateDir
	cfg.Component = append(cfg.Component, cfg.Component[0])
	cfg.Component[1].Domain = "new.a.test"
	if err := n.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(wrapped) != "[bot.a.test new.a.test]" {
		t.Errorf("WrapComponent called for %v", wrapped)
	}
	c.Close()
	if e := <-events; e != "bot.a.test false" {
		t.Errorf("OnComponent: %s", e)
	}
}

// TestReload: a valid configuration takes effect without a restart; one
// that fails validation leaves the running one in place.
func TestReload(t *testing.T) {
	dns := s2stest.NewDNS(t)
	n := startNode(t, dns, "a.test", node.Options{})
	cfg := nodeConfig(t, "a.test", dns.Addr())
	cfg.Server.StateDir = n.Config().Server.StateDir
	cfg.Component = append(cfg.Component, cfg.Component[0])
	cfg.Component[1].Domain, cfg.Component[1].Secret = "new.a.test", "sn"
	if err := n.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if d, _ := n.Router().Lookup("new.a.test"); d != route.ToComponent {
		t.Errorf("new.a.test routed to %v after reload", d)
	}
	attach(t, n, "new.a.test")
	bad := nodeConfig(t, "a.test", dns.Addr())
	bad.S2S.Policy = "trust-everyone"
	if err := n.Reload(bad); err == nil || !strings.Contains(err.Error(), "s2s.policy") {
		t.Fatalf("bad config: %v", err)
	}
	if d, _ := n.Router().Lookup("new.a.test"); d != route.ToComponent || len(n.Config().Component) != 2 {
		t.Errorf("a bad config replaced the running one")
	}
	if err := n.Start(); err != node.ErrStarted {
		t.Errorf("second Start: %v", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := n.Start(); err != node.ErrClosed {
		t.Errorf("Start after Shutdown: %v", err)
	}
}

// next reads the next stanza c receives.
func next(t *testing.T, c *component.Conn) *route.Stanza {
	t.Helper()
	return xmpptest.Next(t, c, 15*time.Second)
}

package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// clusterProcs runs three s2sd processes forming one cluster (embedded
// NATS, routes on loopback) that serve c.test and the component
// bot.c.test.
func clusterProcs(t *testing.T, dns *s2stest.DNS) []*s2sdtest.Proc {
	t.Helper()
	var ports []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().String())
		l.Close()
	}
	procs := make([]*s2sdtest.Proc, 3)
	for i := range 3 {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("%q", p))
			}
		}
		procs[i] = s2sdtest.Launch(t, fmt.Sprintf("n%d", i+1), fmt.Sprintf(`
[server]
domains = ["c.test"]
state_dir = "STATE"
log_level = "debug"

[s2s]
listen = "127.0.0.1:0"
dns = [%q]

[components]
listen = "127.0.0.1:0"

[[component]]
domain = "bot.c.test"
secret = "shared"

[cluster]
name = "n%d"
listen = %q
routes = [%s]
lease_ttl = "3s"
`, dns.Addr(), i+1, ports[i], strings.Join(routes, ", ")))
	}
	for _, p := range procs {
		p.Wait()
	}
	return procs
}

// TestClusterProsody: a real Prosody federates with a cluster of three
// s2sd processes. Prosody reaches c.test at a node that is not the owner
// of prosody.test's partition: its messages reach a component attached to
// a third node, the component's answers leave through the owner, and the
// owner's dialback key, which Prosody checks with the node it reaches, is
// verified there.
func TestClusterProsody(t *testing.T) {
	interop.Require(t, "prosody")
	dns := s2stest.NewDNS(t)
	procs := clusterProcs(t, dns)
	names := []string{"n1", "n2", "n3"}
	owner := cluster.PreferredOwner("prosody.test", names, 64)
	// Prosody reaches c.test at the first node that is not the owner; the
	// component attaches to the last.
	var entry, home int
	for i, n := range names {
		if n != owner {
			entry = i
			break
		}
	}
	home = 2
	if names[home] == owner || home == entry {
		home = 3 - entry - indexOf(names, owner)
	}
	dns.AddServer("c.test", procs[entry].S2S)
	dns.AddServer("bot.c.test", procs[entry].S2S)
	p := interop.StartProsody(t, interop.ProsodyOptions{Domain: "prosody.test", DNS: dns.Addr(), Users: []string{"alice:pw"}})
	dns.AddServer("prosody.test", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.S2S)))
	// Wait for the cluster to settle: every node logs the partitions it
	// takes; the owner must hold prosody.test's before the component
	// answers.
	time.Sleep(4 * time.Second)
	bot := dialComp(t, procs[home], "bot.c.test", "shared")
	time.Sleep(500 * time.Millisecond) // the component's registration spreads
	alice := interop.DialClient(t, p.C2SAddr(), jid.MustParse("alice@prosody.test"), "pw")
	const n = 10
	var from string
	for i := range n {
		alice.Send(fmt.Sprintf("<message to='x@bot.c.test' type='chat' id='p%d'><body>hello %d</body></message>", i, i))
	}
	for i := 0; i < n; {
		s := next(t, bot, 30*time.Second)
		if s.Kind != "message" {
			continue
		}
		if s.ID != fmt.Sprintf("p%d", i) {
			t.Fatalf("component got %s, want p%d", s.El.Raw, i)
		}
		from = s.From.String()
		i++
	}
	for i := range n {
		bot.Send([]byte(fmt.Sprintf("<message from='x@bot.c.test' to='%s' type='chat' id='r%d'><body>answer %d</body></message>", from, i, i)))
	}
	for i := range n {
		in := alice.Expect(t, 30*time.Second, func(s interop.Stanza) bool { return s.Name == "message" })
		if in.Attrs["type"] == "error" || in.Attrs["id"] != fmt.Sprintf("r%d", i) {
			t.Fatalf("alice got %s, want r%d", in.Raw, i)
		}
	}
	// Only the owner dialed prosody.test; the node Prosody reached
	// verified its key (it did not issue it).
	for i, pr := range procs {
		dialed := false
		for _, l := range strings.Split(pr.Log(), "\n") {
			dialed = dialed || strings.Contains(l, `msg="stream ready"`) && strings.Contains(l, "remote=prosody.test")
		}
		if dialed != (names[i] == owner) {
			t.Errorf("%s dialed prosody.test: %v; the owner is %s", names[i], dialed, owner)
		}
	}
	if !strings.Contains(procs[entry].Log(), "dialback verify request") || !strings.Contains(procs[entry].Log(), "result=valid") {
		t.Errorf("%s (not the owner) did not verify the owner's dialback key", names[entry])
	}
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

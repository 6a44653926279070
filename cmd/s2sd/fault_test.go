package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/internal/interop"
	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// TestFaults sends 10,000 stanzas from a component on a.test to a
// component on b.test while the link between the daemons is cut several
// times and b's s2sd is killed with SIGKILL and restarted. Every stanza must
// arrive or come back to its sender as an error; duplicates are counted and
// must stay within what the README states (the unacknowledged window of
// 512 stanzas per broken stream).
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault-injection run")
	}
	dns := s2stest.NewDNS(t)
	bPort := interop.FreePort(t)
	a := s2sdtest.Start(t, "a", faultConfig("a.test", dns.Addr(), "bot.a.test", "sa", "127.0.0.1:0"))
	bCfg := faultConfig("b.test", dns.Addr(), "bot.b.test", "sb", fmt.Sprintf("127.0.0.1:%d", bPort))
	b := s2sdtest.Start(t, "b", bCfg)
	proxy := s2stest.NewProxy(t, b.S2S.String())
	dns.AddServer("a.test", a.S2S)
	dns.AddServer("bot.a.test", a.S2S)
	dns.AddServer("b.test", proxy.Addr)
	dns.AddServer("bot.b.test", proxy.Addr)

	const n = 10000
	var mu sync.Mutex
	arrived := map[string]int{}
	bounced := map[string]bool{}
	dups := 0

	// The receiver reattaches to whichever b is running.
	bComp := make(chan string, 1)
	bComp <- b.Comp
	recvDone := make(chan struct{})
	stopRecv := make(chan struct{})
	go func() {
		defer close(recvDone)
		addr := <-bComp
		for {
			select {
			case <-stopRecv:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := component.Dial(ctx, addr, "bot.b.test", "sb")
			cancel()
			if err != nil {
				select {
				case addr = <-bComp:
				case <-time.After(50 * time.Millisecond):
				case <-stopRecv:
					return
				}
				continue
			}
			go func() { <-stopRecv; c.Close() }()
			for {
				s, err := c.Next()
				if err != nil {
					break
				}
				mu.Lock()
				if arrived[s.ID]++; arrived[s.ID] > 1 {
					dups++
				}
				mu.Unlock()
			}
		}
	}()
	ca := dialComp(t, a, "bot.a.test", "sa")
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for {
			s, err := ca.Next()
			if err != nil {
				return
			}
			if s.Type == "error" {
				mu.Lock()
				bounced[s.ID] = true
				mu.Unlock()
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) + len(bounced)
	}
	killed := false
	for i := range n {
		if err := ca.Send([]byte(fmt.Sprintf("<message from='x@bot.a.test' to='y@bot.b.test' id='f%d'><body>%d</body></message>", i, i))); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1500, 3000, 6500, 8500:
			proxy.Cut()
		case 4500:
			// Wait for some traffic to be in flight, then kill b.
			b.Signal(syscall.SIGKILL)
			<-b.Exited
			killed = true
			b = s2sdtest.Start(t, "b2", strings.ReplaceAll(bCfg, "STATE", b.Dir+"/state"))
			proxy.SetTarget(b.S2S.String())
			bComp <- b.Comp
		}
		if i%200 == 0 {
			time.Sleep(2 * time.Millisecond) // a component that writes in bursts
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stopRecv)
	<-recvDone
	mu.Lock()
	defer mu.Unlock()
	var lost []string
	for i := range n {
		id := fmt.Sprintf("f%d", i)
		if arrived[id] == 0 && !bounced[id] {
			lost = append(lost, id)
		}
	}
	t.Logf("%d stanzas: %d arrived, %d bounced, %d duplicates, %d lost (b killed: %v)", n, len(arrived), len(bounced), dups, len(lost), killed)
	if len(lost) > 0 {
		t.Errorf("%d stanzas lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	if dups > 5*512 {
		t.Errorf("%d duplicates, more than 5 broken streams' unacknowledged windows", dups)
	}
}

func faultConfig(domain, dns, comp, secret, listen string) string {
	return fmt.Sprintf(`
[server]
domains = [%q]
state_dir = "STATE"

[s2s]
listen = %q
dns = [%q]
retry_for = "5m"
queue_limit = 20000

[components]
listen = "127.0.0.1:0"

[[component]]
domain = %q
secret = %q
`, domain, listen, dns, comp, secret)
}

var _ = netip.Addr{}

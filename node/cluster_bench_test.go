package node_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// BenchmarkClusterWindow1 measures one stanza at a time from a component
// to a remote server through a cluster of three nodes in this process: on
// the node that owns the remote domain ("owner", the single-node path
// plus the cluster's wrappers), and on another node, so that each stanza
// crosses nodes over NATS ("cross"). It reports p50 and p99 latency.
//
//	go test -run '^$' -bench ClusterWindow1 -benchtime 2000x ./node
func BenchmarkClusterWindow1(b *testing.B) {
	dns := s2stest.NewDNS(b)
	nodes := startCluster(b, dns, 3)
	for end := time.Now().Add(30 * time.Second); !settledNodes(nodes, 3); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatal("the cluster did not settle in 30s")
		}
	}
	remote := s2stest.NewServer(b, dns, "remote.test", s2stest.Options{})
	names := []string{"n1", "n2", "n3"}
	owner := slices.Index(names, cluster.PreferredOwner("remote.test", names, 16))
	other := (owner + 1) % 3
	for _, c := range []struct {
		name string
		node int
	}{{"owner", owner}, {"cross", other}} {
		b.Run(c.name, func(b *testing.B) {
			bot := attach(b, nodes[c.node], "bot.c.test")
			time.Sleep(200 * time.Millisecond) // the registration spreads
			lat := make([]time.Duration, 0, b.N)
			send := func(i int) time.Duration {
				t0 := time.Now()
				bot.Send(fmt.Appendf(nil, "<message from='x@bot.c.test' to='u@remote.test' id='%s%d'><body>%s</body></message>", c.name, i, "0123456789"))
				for {
					s := remote.Expect(b, 15*time.Second)
					if s.ID == fmt.Sprintf("%s%d", c.name, i) {
						return time.Since(t0)
					}
				}
			}
			for i := range 50 {
				send(-1 - i) // warm up: streams up, caches filled
			}
			b.ResetTimer()
			for i := range b.N {
				lat = append(lat, send(i))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			bot.Close()
		})
	}
}

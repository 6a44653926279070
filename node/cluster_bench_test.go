package node_test

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// BenchmarkClusterWindow1 measures one stanza at a time from a component
// to a remote server through a cluster of three nodes in this process: on
// the node that owns the remote domain ("owner", the single-node path
// plus the cluster's wrappers), and on another node, so that each stanza
// crosses nodes over NATS ("cross"). It reports p50 and p99 latency, with
// each durability.
//
//	go test -run '^$' -bench ClusterWindow1 -benchtime 2000x ./node
func BenchmarkClusterWindow1(b *testing.B) {
	for _, d := range []string{"node", "replicated"} {
		b.Run(d, func(b *testing.B) { benchWindow1(b, d) })
	}
}

// benchCluster starts three nodes with the durability given and a remote
// server, and returns them with the owner of remote.test's partition.
func benchCluster(b *testing.B, durability string) (nodes []*node.Node, remote *s2stest.Server, owner int) {
	dns := s2stest.NewDNS(b)
	nodes = startClusterWith(b, dns, 3, durability)
	for end := time.Now().Add(30 * time.Second); !settledNodes(nodes, 3); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatal("the cluster did not settle in 30s")
		}
	}
	remote = s2stest.NewServer(b, dns, "remote.test", s2stest.Options{})
	// The node that holds the lease, which a settled cluster gives to the
	// preferred owner: wait for it, so that "cross" crosses.
	names := []string{"n1", "n2", "n3"}
	owner = slices.Index(names, cluster.PreferredOwner("remote.test", names, 16))
	for end := time.Now().Add(30 * time.Second); !nodes[owner].Cluster().Owns("remote.test"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatal("the preferred owner of remote.test did not take it in 30s")
		}
	}
	return nodes, remote, owner
}

func benchWindow1(b *testing.B, durability string) {
	nodes, remote, owner := benchCluster(b, durability)
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

// BenchmarkClusterCross measures throughput across nodes: a component on
// a node that does not own remote.test sends b.N stanzas, at most 500
// unanswered, and the remote server counts them. It reports msg/s, the
// CPU per stanza of this process (the three nodes, the remote server and
// the component together) and the stanzas repeated, with each durability.
//
//	go test -run '^$' -bench ClusterCross -benchtime 20000x ./node
func BenchmarkClusterCross(b *testing.B) {
	for _, d := range []string{"node", "replicated"} {
		b.Run(d, func(b *testing.B) {
			nodes, remote, owner := benchCluster(b, d)
			bot := attach(b, nodes[(owner+1)%3], "bot.c.test")
			time.Sleep(200 * time.Millisecond) // the registration spreads
			const window = 500
			seen := map[int]int{}
			got := make(chan int, window)
			go func() {
				for s := range remote.Received {
					var i int
					if _, err := fmt.Sscanf(s.ID, "t%d", &i); err == nil {
						got <- i
					}
				}
			}()
			// Warm up: the owner's stream to remote.test up.
			bot.Send([]byte("<message from='x@bot.c.test' to='u@remote.test' id='t-1'/>"))
			select {
			case <-got:
			case <-time.After(15 * time.Second):
				b.Fatal("the warm-up stanza did not arrive")
			}
			b.ResetTimer()
			t0, cpu0 := time.Now(), cpuTime()
			sent, dups := 0, 0
			for len(seen) < b.N {
				for sent < b.N && sent-len(seen) < window {
					bot.Send(fmt.Appendf(nil, "<message from='x@bot.c.test' to='u@remote.test' id='t%d'><body>0123456789</body></message>", sent))
					sent++
				}
				select {
				case i := <-got:
					if seen[i]++; seen[i] > 1 {
						dups++
					}
				case <-time.After(15 * time.Second):
					b.Fatalf("%d of %d arrived", len(seen), b.N)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "msg/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
			b.ReportMetric(float64(dups), "repeated")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

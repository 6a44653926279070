package route

import (
	"fmt"
	"sync"
	"testing"
)

// size returns the addresses a shard holds; the test holds no other lock.
func (sh *cacheShard) size() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := len(sh.dirty)
	if m := sh.read.Load(); m != nil {
		n += len(*m)
	}
	return n
}

// TestCacheBounded: whatever addresses come, no shard holds more than
// jidCacheShard, and what the cache answers is what parsing gives.
func TestCacheBounded(t *testing.T) {
	for i := range 20000 {
		a := fmt.Sprintf("user%d@host%d.example/r", i, i%97)
		j, err := ParseJID(a)
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 { // again, from the cache (read or dirty map)
			j2, err := ParseJIDBytes([]byte(a))
			if err != nil || !j2.Equal(j) {
				t.Fatalf("%s: %v, %v", a, j2, err)
			}
		}
	}
	for i := range cache.shards {
		if n := cache.shards[i].size(); n > jidCacheShard {
			t.Errorf("shard %d holds %d addresses", i, n)
		}
	}
}

// TestCacheConcurrent: lookups and additions on every core (go test
// -race); every answer is the address parsed.
func TestCacheConcurrent(t *testing.T) {
	want := make([]string, 600)
	for i := range want {
		want[i] = fmt.Sprintf("u%d@c%d.example", i, i%13)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3000 {
				i := (k*7 + g*131) % len(want)
				a, err := parseAddr([]byte(want[i]))
				if err != nil || a.j.String() != want[i] || a.domain != a.j.Domainpart() {
					t.Errorf("%s: %v %v", want[i], a, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCacheSpread: addresses as servers see them (many users at a few
// domains, with or without a resource, differing in a few bytes anywhere)
// spread over every shard under the cheap hash that picks one, so that
// the cache holds the thousands of addresses its size promises rather
// than one shard's worth.
func TestCacheSpread(t *testing.T) {
	for _, f := range []string{"user%d@example.org", "u%d@a.test/r", "%d@conference.example.net/nick", "bot@svc%d.example", "%d.example"} {
		var n [1 << shardBits]int
		const total = 4000
		for i := range total {
			s := []byte(fmt.Sprintf(f, i))
			for k := range cache.shards {
				if cache.shard(s) == &cache.shards[k] {
					n[k]++
				}
			}
		}
		for k, c := range n {
			if c > 2*total/len(n) || c < total/len(n)/2 {
				t.Errorf("%s: shard %d gets %d of %d addresses", f, k, c, total)
			}
		}
	}
}

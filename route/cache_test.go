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

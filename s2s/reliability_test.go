package s2s_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/stanza"

	"github.com/s2sd/s2sd/s2s/boltstore"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// collect reads stanzas at s until every id in want has arrived, and
// returns how many arrived more than once.
func collect(t *testing.T, s *s2stest.Server, n int, timeout time.Duration) (dups int) {
	t.Helper()
	seen := map[string]int{}
	deadline := time.After(timeout)
	for len(seen) < n {
		select {
		case st := <-s.Received:
			if st.Type == "error" {
				t.Fatalf("bounce: %s", st.El.Raw)
			}
			if seen[st.ID]++; seen[st.ID] > 1 {
				dups++
			}
		case <-deadline:
			t.Fatalf("%d of %d stanzas arrived within %v", len(seen), n, timeout)
		}
	}
	return dups
}

func TestStreamManagement(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	for i := range 200 {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("sm", i)))
	}
	if d := collect(t, b, 200, wait); d != 0 {
		t.Errorf("%d duplicates on a healthy stream", d)
	}
	streams := a.Pool.Streams()
	if len(streams) != 1 || !streams[0].StreamManagement() {
		t.Fatalf("XEP-0198 not enabled on the outbound stream")
	}
	deadline := time.Now().Add(wait)
	for a.Pool.Queued() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d stanzas never acknowledged", a.Pool.Queued())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLinkCuts: the link between a and b is cut several times while 3000
// stanzas flow; unacknowledged stanzas are sent again on the next stream,
// so none is lost.
func TestLinkCuts(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 20 * time.Second})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	dns.AddServer("b.test", proxy.Addr)
	const n, cuts = 3000, 4
	go func() {
		for i := range n {
			a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("c", i)))
			if i%700 == 350 {
				proxy.Cut()
			}
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	dups := collect(t, b, n, 30*time.Second)
	t.Logf("%d stanzas, %d delivered twice after cuts", n, dups)
	// Each cut can repeat at most the unacknowledged window (MaxUnacked,
	// 512 by default).
	if dups > cuts*512 {
		t.Errorf("%d duplicates: more than %d cuts of the unacknowledged window explain", dups, cuts)
	}
}

// TestStoreRestart: stanzas queued for an unreachable domain survive a
// restart of the sending server through the queue file, and go out when
// the domain comes back.
func TestStoreRestart(t *testing.T) {
	dns := s2stest.NewDNS(t)
	path := filepath.Join(t.TempDir(), "queue.db")
	store, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: time.Minute, Store: store, NoRegister: true})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	proxy.Refuse(true)
	dns.AddServer("b.test", proxy.Addr)
	for i := range 100 {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("s", i)))
	}
	time.Sleep(100 * time.Millisecond)
	a.Close()
	store.Close()

	store2, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	a2 := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: time.Minute, Store: store2})
	n, err := a2.Pool.Restore()
	if err != nil || n != 100 {
		t.Fatalf("restored %d stanzas (%v), want 100", n, err)
	}
	proxy.Refuse(false)
	if d := collect(t, b, 100, 20*time.Second); d != 0 {
		t.Errorf("%d duplicates", d)
	}
	// Delivered and acknowledged: the file is empty once commits land.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		store2.Load(func(uint64, string, string, []byte, time.Time) { left++ })
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stanzas still stored after delivery", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowPeerBackPressure: a peer that reads slower than stanzas arrive
// (and does not acknowledge, so nothing but the write buffer bounds what is
// in flight) fills the stream's write buffer; stanzas then wait in the
// queue. Nothing is resent or lost, and no second stream is opened.
func TestSlowPeerBackPressure(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 20 * time.Second})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true, DisableSM: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	dns.AddServer("b.test", proxy.Addr)
	a.Send(t, msg("alice@a.test", "bob@b.test", "warm"))
	collect(t, b, 1, wait)
	proxy.Delay(time.Millisecond)
	body := strings.Repeat("x", 8<<10)
	const n = 1500 // 12 MiB: more than the 8 MiB write buffer
	go func() {
		for i := range n {
			a.Send(t, fmt.Sprintf("<message from='alice@a.test' to='bob@b.test' id='p%d'><body>%s</body></message>", i, body))
		}
	}()
	if d := collect(t, b, n, 60*time.Second); d != 0 {
		t.Errorf("%d duplicates under back-pressure", d)
	}
	if s := a.Pool.Streams(); len(s) != 1 {
		t.Errorf("%d outbound streams, want 1", len(s))
	}
}

// TestHalfOpenPeer: the link goes silent without closing (a half-open
// connection). With no acknowledgement for AckTimeout, the stream is
// dropped and what it did not acknowledge goes out again on a new one.
func TestHalfOpenPeer(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 20 * time.Second, AckTimeout: 300 * time.Millisecond})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	dns.AddServer("b.test", proxy.Addr)
	a.Send(t, msg("alice@a.test", "bob@b.test", "h0"))
	collect(t, b, 1, wait)
	proxy.Hang()
	for i := 1; i <= 50; i++ {
		a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("h", i)))
	}
	// Past AckTimeout, a drops the hung stream and sends again on a new one.
	if d := collect(t, b, 50, wait); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// TestDNSFaults: a nameserver that never answers, and one that names a
// server that does not host the domain, end in the bounce the RFC names
// once retries are spent.
func TestDNSFaults(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 700 * time.Millisecond})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{})
	dns.Stall("_xmpp-server._tcp.stalled.test")
	dns.Stall("_xmpps-server._tcp.stalled.test")
	a.Send(t, msg("alice@a.test", "bob@stalled.test", "stall"))
	expectBounce(t, a, "stall", stanza.RemoteServerNotFound)
	// liar.test's records point at b, which does not serve it.
	dns.AddServer("liar.test", b.Addr)
	a.Send(t, msg("alice@a.test", "bob@liar.test", "lie"))
	expectBounce(t, a, "lie", stanza.RemoteServerTimeout)
}

// TestCorruptAndSlowLink: a byte flipped on the wire (TLS refuses the
// record, the stream dies) and a slow link: what was not acknowledged is
// sent again, nothing is lost.
func TestCorruptAndSlowLink(t *testing.T) {
	dns := s2stest.NewDNS(t)
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 20 * time.Second})
	b := s2stest.NewServer(t, dns, "b.test", s2stest.Options{NoRegister: true})
	proxy := s2stest.NewProxy(t, b.Addr.String())
	dns.AddServer("b.test", proxy.Addr)
	a.Send(t, msg("alice@a.test", "bob@b.test", "c0"))
	collect(t, b, 1, wait)
	proxy.Delay(2 * time.Millisecond)
	proxy.CorruptAfter(20000)
	const n = 1000
	go func() {
		for i := 1; i <= n; i++ {
			a.Send(t, msg("alice@a.test", "bob@b.test", fmt.Sprint("c", i)))
		}
	}()
	dups := collect(t, b, n, 30*time.Second)
	t.Logf("%d stanzas through a corrupted, slow link; %d sent twice", n, dups)
	if dups > 2*512 {
		t.Errorf("%d duplicates", dups)
	}
}

// TestLifetimeAcrossRestart: a stanza's lifetime counts from when it first
// arrived, not from the restart that found it in the queue file.
func TestLifetimeAcrossRestart(t *testing.T) {
	dns := s2stest.NewDNS(t)
	path := filepath.Join(t.TempDir(), "queue.db")
	store, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Queued an hour ago for a domain that has been unreachable since.
	store.Put("a.test", "gone.test", []byte(msg("alice@a.test", "bob@gone.test", "old")), time.Now().Add(-time.Hour))
	a := s2stest.NewServer(t, dns, "a.test", s2stest.Options{RetryFor: 30 * time.Minute, Store: store})
	dns.AddServer("gone.test", netip.MustParseAddrPort("127.0.0.1:1"))
	if n, err := a.Pool.Restore(); err != nil || n != 1 {
		t.Fatalf("restored %d (%v)", n, err)
	}
	expectBounce(t, a, "old", stanza.RemoteServerNotFound)
}

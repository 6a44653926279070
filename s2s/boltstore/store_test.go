package boltstore_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/s2sd/s2sd/s2s/boltstore"
)

func raw(i int) []byte {
	return fmt.Appendf(nil, "<message xmlns='jabber:server' from='a@a.test' to='b@b.test' id='%d'/>", i)
}

type loaded struct {
	id            uint64
	local, remote string
	raw           string
}

func load(t *testing.T, st *boltstore.Store) []loaded {
	t.Helper()
	var out []loaded
	if err := st.Load(func(id uint64, local, remote string, raw []byte, at time.Time) {
		out = append(out, loaded{id, local, remote, string(raw)})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(l []loaded) []uint64 {
	var out []uint64
	for _, e := range l {
		out = append(out, e.id)
	}
	return out
}

// TestPutDelete: what is deleted before its commit never reaches the file,
// what is deleted after it is removed from the file, and the rest survives
// a restart in the order it was put, with what was put.
func TestPutDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := boltstore.Open(path, boltstore.Options{Interval: 5 * time.Millisecond, MinAge: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var id []uint64
	for i := range 10 {
		id = append(id, st.Put("a.test", "b.test", raw(i), time.Now()))
	}
	st.Delete(id[1], id[3])
	if got, want := ids(load(t, st)), []uint64{id[0], id[2], id[4], id[5], id[6], id[7], id[8], id[9]}; !slices.Equal(got, want) {
		t.Fatalf("pending: %v, want %v", got, want)
	}
	// Past MinAge and Interval: committed.
	time.Sleep(200 * time.Millisecond)
	st.Delete(id[4], id[9])
	id = append(id, st.Put("a.test", "c.test", raw(10), time.Now()))
	st.Delete(id[10])
	id = append(id, st.Put("a.test", "c.test", raw(11), time.Now()))
	time.Sleep(200 * time.Millisecond)
	st.Close()

	st, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := load(t, st)
	if want := []uint64{id[0], id[2], id[5], id[6], id[7], id[8], id[11]}; !slices.Equal(ids(got), want) {
		t.Fatalf("after a restart: %v, want %v", ids(got), want)
	}
	for _, e := range got {
		i := slices.Index(id, e.id)
		remote := "b.test"
		if i >= 10 {
			remote = "c.test"
		}
		if e.local != "a.test" || e.remote != remote || e.raw != string(raw(i)) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	// Ids go on after the last one in the file.
	if next := st.Put("a.test", "b.test", raw(12), time.Now()); next <= id[11] {
		t.Errorf("id %d after %d", next, id[11])
	}
}

// TestPendingOrder: what waits for its commit is loaded in the order it
// was put.
func TestPendingOrder(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "q.db"), boltstore.Options{Interval: time.Hour, MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var id []uint64
	for i := range 300 {
		id = append(id, st.Put("a.test", "b.test", raw(i), time.Now()))
	}
	var want []uint64
	for i, x := range id {
		if i%3 == 0 {
			st.Delete(x)
		} else {
			want = append(want, x)
		}
	}
	if got := ids(load(t, st)); !slices.Equal(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
}

// BenchmarkPutDelete: a stream's stanzas put as they are queued and
// deleted when acknowledged, 500 later (the in-flight window).
func BenchmarkPutDelete(b *testing.B) {
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "q.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m := raw(1)
	var win []uint64
	b.ReportAllocs()
	for b.Loop() {
		win = append(win, st.Put("a.test", "b.test", m, time.Now()))
		if len(win) == 500 {
			st.Delete(win[:64]...)
			win = append(win[:0], win[64:]...)
		}
	}
}

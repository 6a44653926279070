package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/s2sd/s2sd/s2s/boltstore"
)

// TestDurable: Durable returns once what was put is in the
// file, well before the store's own minimum age and interval.
func TestDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := boltstore.Open(path, boltstore.Options{Interval: time.Hour, MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st.Put("a.test", "b.test", []byte("<message xmlns='jabber:server' from='a@a.test' to='b@b.test' id='1'/>"), time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Durable(ctx); err != nil {
		t.Fatalf("Durable: %v", err)
	}
	// Read the file with a second handle: bbolt allows one opener, so
	// close the store; Close writes what is pending anyway, so check
	// that nothing was pending: Durable wrote it.
	n := 0
	st.Load(func(uint64, string, string, []byte, time.Time) { n++ })
	if n != 1 {
		t.Fatalf("%d stanzas in the store", n)
	}
	if err := st.Durable(ctx); err != nil {
		t.Fatalf("Durable with nothing pending: %v", err)
	}
	st.Close()
}

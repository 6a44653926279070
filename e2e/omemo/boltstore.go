package omemo

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is a Store in a bbolt file: each Apply is one transaction,
// written to disk (fsync) before it returns, so a session state that was
// used to encrypt is never lost and its message keys never used twice.
type BoltStore struct {
	db *bolt.DB
}

var _ Store = (*BoltStore)(nil)

// BoltOptions configure OpenBoltStore.
type BoltOptions struct {
	// NoSync skips the fsync of each commit: the state survives a crash of
	// the process but not of the machine. For tests.
	NoSync bool
	// Timeout bounds the wait for the file lock held by another process
	// (default 2s).
	Timeout time.Duration
}

// OpenBoltStore opens (or creates) the store file at path. One process at
// a time may hold it.
func OpenBoltStore(path string, o BoltOptions) (*BoltStore, error) {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, NoSync: o.NoSync})
	if err != nil {
		return nil, fmt.Errorf("omemo: store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range Buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("omemo: store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// Get implements Store.
func (s *BoltStore) Get(_ context.Context, bucket, key string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return ErrNotFound
		}
		raw := b.Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		v = slices.Clone(raw)
		return nil
	})
	return v, err
}

// Keys implements Store.
func (s *BoltStore) Keys(_ context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys, err
}

// Apply implements Store.
func (s *BoltStore) Apply(ctx context.Context, changes []Change) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, c := range changes {
			b, err := tx.CreateBucketIfNotExists([]byte(c.Bucket))
			if err != nil {
				return err
			}
			if c.Value == nil {
				err = b.Delete([]byte(c.Key))
			} else {
				err = b.Put([]byte(c.Key), c.Value)
			}
			if err != nil {
				return fmt.Errorf("omemo: store: %w", err)
			}
		}
		return nil
	})
}

package omemo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// ErrNotFound is returned by Store.Get for a key that is not stored.
var ErrNotFound = errors.New("omemo: not found")

// Store keeps a device's state: its identity and pre-keys, its sessions,
// the device lists and identity keys of the accounts it talks to, and the
// trust decisions about them. Values are opaque bytes written by this
// package; keys are strings (a bare JID and a device id for remote
// devices), never pointers, so that a state read back after a restart is
// the state that was written.
//
// Each Encrypt, Decrypt or key operation reads what it needs, then writes
// all its changes with one Apply: a failed operation changes nothing, and
// a crash leaves either the state before or the state after.
//
// MemStore keeps everything in memory; BoltStore in a bbolt file.
type Store interface {
	// Get returns the value of key in bucket, or ErrNotFound.
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	// Keys returns the keys of bucket that start with prefix, sorted.
	Keys(ctx context.Context, bucket, prefix string) ([]string, error)
	// Apply makes all changes, in order, atomically and durably.
	Apply(ctx context.Context, changes []Change) error
}

// Change is one write of Store.Apply: Value nil deletes the key.
type Change struct {
	Bucket, Key string
	Value       []byte
}

// The buckets this package uses.
const (
	bucketLocal        = "local"        // "device": the local device record
	bucketPreKey       = "prekey"       // pre-key id: private key
	bucketSignedPreKey = "signedprekey" // signed pre-key id: signedPreKeyRecord
	bucketSession      = "session"      // JID/device: libsignal session record
	bucketIdentity     = "identity"     // JID/device: remoteDevice
	bucketDeviceList   = "devicelist"   // JID: device list
)

// Buckets lists the buckets this package writes, for Store
// implementations that must create them in advance.
var Buckets = []string{bucketLocal, bucketPreKey, bucketSignedPreKey, bucketSession, bucketIdentity, bucketDeviceList}

// MemStore is a Store in memory, for tests and short-lived programs. Its
// zero value is ready to use.
type MemStore struct {
	mu sync.RWMutex
	m  map[string]map[string][]byte
}

var _ Store = (*MemStore)(nil)

// Get implements Store.
func (s *MemStore) Get(_ context.Context, bucket, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[bucket][key]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(v), nil
}

// Keys implements Store.
func (s *MemStore) Keys(_ context.Context, bucket, prefix string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var keys []string
	for k := range s.m[bucket] {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Apply implements Store.
func (s *MemStore) Apply(_ context.Context, changes []Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]map[string][]byte)
	}
	for _, c := range changes {
		b := s.m[c.Bucket]
		if b == nil {
			b = make(map[string][]byte)
			s.m[c.Bucket] = b
		}
		if c.Value == nil {
			delete(b, c.Key)
		} else {
			b[c.Key] = slices.Clone(c.Value)
		}
	}
	return nil
}

// txn is the state seen by one operation: the Store with the operation's
// own changes on top. Nothing reaches the Store before commit.
type txn struct {
	st      Store
	pending map[[2]string][]byte // nil value: deleted
	order   [][2]string
}

func newTxn(st Store) *txn {
	return &txn{st: st, pending: make(map[[2]string][]byte)}
}

func (t *txn) get(ctx context.Context, bucket, key string) ([]byte, error) {
	if v, ok := t.pending[[2]string{bucket, key}]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	return t.st.Get(ctx, bucket, key)
}

func (t *txn) has(ctx context.Context, bucket, key string) (bool, error) {
	_, err := t.get(ctx, bucket, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *txn) put(bucket, key string, v []byte) {
	if v == nil {
		v = []byte{}
	}
	t.set(bucket, key, v)
}

func (t *txn) del(bucket, key string) { t.set(bucket, key, nil) }

func (t *txn) set(bucket, key string, v []byte) {
	k := [2]string{bucket, key}
	if _, ok := t.pending[k]; !ok {
		t.order = append(t.order, k)
	}
	t.pending[k] = v
}

func (t *txn) keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	keys, err := t.st.Keys(ctx, bucket, prefix)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	for k, v := range t.pending {
		if k[0] != bucket || !strings.HasPrefix(k[1], prefix) {
			continue
		}
		set[k[1]] = v != nil
	}
	keys = keys[:0]
	for k, ok := range set {
		if ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (t *txn) commit(ctx context.Context) error {
	if len(t.order) == 0 {
		return nil
	}
	changes := make([]Change, 0, len(t.order))
	for _, k := range t.order {
		changes = append(changes, Change{Bucket: k[0], Key: k[1], Value: t.pending[k]})
	}
	if err := t.st.Apply(ctx, changes); err != nil {
		return err
	}
	t.pending = make(map[[2]string][]byte)
	t.order = nil
	return nil
}

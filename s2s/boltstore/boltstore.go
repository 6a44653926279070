// Package boltstore keeps the stanzas an s2s.Pool queues for remote
// domains in a bbolt file, so that they survive a restart (s2s.Store).
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/s2sd/s2sd/internal/fifo"
	"github.com/s2sd/s2sd/s2s"
)

var _ s2s.Store = (*Store)(nil)

var bucketQueue = []byte("queue")

// Store is a Store in a bbolt file. Writes are batched: Put and Delete
// return at once and a goroutine commits them together at most Interval
// later, so a busy stream costs one transaction per batch, not per stanza,
// and a stanza acknowledged before its batch is committed never touches
// the disk.
type Store struct {
	db       *bolt.DB
	interval time.Duration
	minAge   time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	next uint64
	// puts are the puts not committed yet, in id order: puts[i] has id
	// first+i (ids are consecutive). A deleted one stays, marked, until
	// it reaches the front; the slice is consumed from its front and
	// reuses its array (no hashing, no copy per stanza).
	puts    []pendingPut
	arr     []pendingPut // the array puts lives in, whole (fifo.Push)
	first   uint64
	dels    []uint64
	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	// Durable: urgent asks the next commit to write every pending put;
	// written is the highest id every put up to which is in the file,
	// and wrote is closed (and replaced) after each commit.
	urgent  bool
	hurry   chan struct{} // wakes the loop from its interval for Durable
	written uint64
	wrote   chan struct{}
}

// Options configure OpenStore.
type Options struct {
	// Interval is the longest a Put waits before it is committed (default
	// 10ms). A process that is killed loses at most that window's stanzas.
	Interval time.Duration
	// MinAge keeps a stanza in memory until it has waited this long
	// (default 50ms): on a healthy stream its acknowledgement usually comes
	// first and it never touches the disk. Stanzas are written in the
	// order they were put: one put after a younger one (its time is
	// Put's at) waits for it. A process that is killed loses at most
	// MinAge+Interval of stanzas.
	MinAge time.Duration
	// Sync makes every commit fsync the file, so that stanzas also survive a
	// power loss; without it they survive a crash of the process.
	Sync   bool
	Logger *slog.Logger
}

// OpenStore opens (or creates) the queue file at path.
func Open(path string, o Options) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: !o.Sync, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	s := &Store{
		db:       db,
		interval: durOr(o.Interval, 10*time.Millisecond),
		minAge:   durOr(o.MinAge, 50*time.Millisecond),
		log:      o.Logger,
		kick:     make(chan struct{}, 1),
		wrote:    make(chan struct{}),
		hurry:    make(chan struct{}, 1),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketQueue)
		if err != nil {
			return err
		}
		if k, _ := b.Cursor().Last(); k != nil {
			s.next = binary.BigEndian.Uint64(k)
		}
		s.first = s.next + 1
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	go s.loop()
	return s, nil
}

func encodeEntry(local, remote string, raw []byte, at time.Time) []byte {
	b := make([]byte, 0, 12+len(local)+len(remote)+len(raw))
	b = binary.BigEndian.AppendUint64(b, uint64(at.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(local)))
	b = append(b, local...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(remote)))
	b = append(b, remote...)
	return append(b, raw...)
}

var errBadEntry = errors.New("boltstore: corrupt queue entry")

func decodeEntry(v []byte) (local, remote string, raw []byte, at time.Time, err error) {
	if len(v) < 12 {
		return "", "", nil, time.Time{}, errBadEntry
	}
	at = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	v = v[8:]
	n := int(binary.BigEndian.Uint16(v))
	if len(v) < 2+n+2 {
		return "", "", nil, time.Time{}, errBadEntry
	}
	local, v = string(v[2:2+n]), v[2+n:]
	n = int(binary.BigEndian.Uint16(v))
	if len(v) < 2+n {
		return "", "", nil, time.Time{}, errBadEntry
	}
	remote, raw = string(v[2:2+n]), append([]byte(nil), v[2+n:]...)
	return local, remote, raw, at, nil
}

// pendingPut is a Put not yet committed; it is encoded only if it lives
// until the commit. raw is never modified by the Pool once put.
type pendingPut struct {
	local, remote string
	raw           []byte
	at            time.Time
	deleted       bool
}

// Put implements Store.
func (s *Store) Put(local, remote string, raw []byte, at time.Time) uint64 {
	s.mu.Lock()
	s.next++
	id := s.next
	s.puts = fifo.Push(s.puts, &s.arr, pendingPut{local: local, remote: remote, raw: raw, at: at})
	s.mu.Unlock()
	s.signal()
	return id
}

// Delete implements Store.
func (s *Store) Delete(ids ...uint64) {
	s.mu.Lock()
	for _, id := range ids {
		if id >= s.first && id-s.first < uint64(len(s.puts)) {
			// Never written: nothing to delete on disk.
			p := &s.puts[id-s.first]
			*p = pendingPut{deleted: true}
			continue
		}
		s.dels = append(s.dels, id)
	}
	s.trim()
	s.mu.Unlock()
	s.signal()
}

// trim drops the deleted puts at the front; s.mu is held.
func (s *Store) trim() {
	i := 0
	for i < len(s.puts) && s.puts[i].deleted {
		i++
	}
	s.consume(i)
}

// consume drops the first n puts; s.mu is held.
func (s *Store) consume(n int) {
	clear(s.puts[:n]) // let the collector have their stanzas
	s.puts = s.puts[n:]
	s.first += uint64(n)
}

func (s *Store) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Store) loop() {
	defer close(s.stopped)
	for {
		select {
		case <-s.kick:
		case <-s.done:
			s.commit(true)
			return
		}
		s.mu.Lock()
		urgent := s.urgent
		s.mu.Unlock()
		if !urgent {
			// Group what comes in the next interval, unless Durable
			// asks for a commit now.
			t := time.NewTimer(s.interval)
			select {
			case <-t.C:
			case <-s.hurry:
				t.Stop()
			case <-s.done:
				// Close: everything now.
				t.Stop()
				s.commit(true)
				return
			}
			s.mu.Lock()
			urgent = s.urgent
			s.mu.Unlock()
		}
		s.commit(urgent)
	}
}

// Durable returns once every stanza put so far is in the file (fsynced
// with Sync), or ctx ends: a stanza handed over by another node of a
// cluster is acknowledged to it only then.
func (s *Store) Durable(ctx context.Context) error {
	s.mu.Lock()
	target := s.next
	if s.written >= target {
		s.mu.Unlock()
		return nil
	}
	s.urgent = true
	s.mu.Unlock()
	s.signal()
	select {
	case s.hurry <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		done, wrote := s.written >= target, s.wrote
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wrote:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopped:
			return errors.New("boltstore: closed")
		}
	}
}

// commit writes the pending puts old enough (all of them when final) and
// the deletes in one transaction.
func (s *Store) commit(final bool) {
	s.mu.Lock()
	upTo := s.next // with final, every put up to it is in this commit
	if final {
		s.urgent = false
	}
	dels := s.dels
	// The puts old enough, from the front: one put after a younger one
	// waits for it, at most MinAge.
	first := s.first
	n := len(s.puts)
	if !final {
		cutoff := time.Now().Add(-s.minAge)
		n = 0
		for n < len(s.puts) && (s.puts[n].deleted || !s.puts[n].at.After(cutoff)) {
			n++
		}
	}
	puts := slices.Clone(s.puts[:n])
	s.consume(n)
	young := len(s.puts) > 0
	s.dels = nil
	s.mu.Unlock()
	if young {
		// Come back for them.
		s.signal()
	}
	if n == 0 && len(dels) == 0 {
		s.committed(final, upTo)
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueue)
		var k [8]byte
		for i, p := range puts {
			if p.deleted {
				continue
			}
			binary.BigEndian.PutUint64(k[:], first+uint64(i))
			if err := b.Put(k[:], encodeEntry(p.local, p.remote, p.raw, p.at)); err != nil {
				return err
			}
		}
		for _, id := range dels {
			binary.BigEndian.PutUint64(k[:], id)
			if err := b.Delete(k[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("queue store: commit failed; stanzas stay in memory only", "err", err)
	}
	s.committed(final && err == nil, upTo)
}

// committed records a commit for Durable.
func (s *Store) committed(final bool, upTo uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if final && upTo > s.written {
		s.written = upTo
	}
	close(s.wrote)
	s.wrote = make(chan struct{})
}

// Load implements Store. It sees what is committed and what is still
// waiting for its commit.
func (s *Store) Load(f func(id uint64, local, remote string, raw []byte, at time.Time)) error {
	s.mu.Lock()
	first, puts := s.first, slices.Clone(s.puts)
	s.mu.Unlock()
	defer func() {
		for i, p := range puts {
			if !p.deleted {
				f(first+uint64(i), p.local, p.remote, p.raw, p.at)
			}
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			local, remote, raw, at, err := decodeEntry(v)
			if err != nil {
				s.log.Warn("queue store: skipping a corrupt entry", "key", fmt.Sprintf("%x", k))
				return nil
			}
			f(binary.BigEndian.Uint64(k), local, remote, raw, at)
			return nil
		})
	})
}

// Close implements Store.
func (s *Store) Close() error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	<-s.stopped
	return s.db.Close()
}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

package s2s

import "time"

// Store keeps stanzas queued for remote domains across restarts. A Pool
// puts each stanza it accepts and deletes it once the peer has acknowledged
// it (XEP-0198) or, with a peer that does not support acknowledgements, once
// it is written to the stream.
type Store interface {
	// Put records a stanza (raw XML in the jabber:server namespace) queued
	// for the pair at time at, and returns its id.
	Put(local, remote string, raw []byte, at time.Time) uint64
	// Delete forgets stanzas.
	Delete(ids ...uint64)
	// Load calls f for every stored stanza, oldest first.
	Load(f func(id uint64, local, remote string, raw []byte, at time.Time)) error
	// Close writes what is pending and closes the store.
	Close() error
}

// A Releaser is a Store shared by several processes (package cluster's
// replicated queue): Pool.Evict releases the stanzas it takes out to it,
// for another process to load, instead of deleting them.
type Releaser interface {
	// Release gives stanzas up, keeping them in the Store, and returns
	// the ids of those it could not keep: those are the caller's.
	Release(ids ...uint64) (notKept []uint64)
}

// The bbolt implementation is package s2s/boltstore: s2s imports no
// storage engine.

package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The replicated queue's stream and message headers.
const (
	queueStream   = "s2sd-queue"
	queueSubjects = "s2sd.q.*" // s2sd.q.<partition>

	hdrQLocal  = "S2S-Local"
	hdrQRemote = "S2S-Remote"
	hdrQAt     = "S2S-At"
	hdrQID     = "S2S-Id" // <incarnation>.<id>
)

// Queue is the replicated queue (durability "replicated"): an s2s.Store
// whose stanzas live in a JetStream stream with the buckets' replicas, on
// file storage written with SyncAlways, so that the node that takes a
// partition over sends what the node before it had accepted, even one
// that died. Stanzas are kept per partition (one subject each); a node
// loads a partition's stanzas when it takes its lease.
//
// As with the queue file, a stanza is published only once it has waited
// MinAge without being acknowledged by the peer, which most never do, or
// at once when Durable asks (a stanza another node hands over is answered
// only then). Each message carries the id this process gave it, so that
// loading a partition skips the stanzas this process holds already.
type Queue struct {
	c      *Cluster
	stream jetstream.Stream
	inc    string // this process's incarnation, in each message's id
	minAge time.Duration

	mu   sync.Mutex
	next uint64
	ents map[uint64]*qent
	// unstored holds the ids of the entries not in the stream yet (and
	// not deleted), and low the lowest of them (next+1 when none): every
	// id below low is stored or gone.
	unstored map[uint64]bool
	low      uint64
	// held: the stream sequences of the stored entries, so that loading
	// a partition again skips them.
	held    map[uint64]bool
	urgent  bool          // publish every pending entry now (Durable, Release)
	pubs    int           // publishes waiting for the stream's answer
	changed chan struct{} // closed and replaced when low moves or an entry is stored
	dels    []qdel        // stream sequences to delete
	// deleting counts, per partition, the deletes not done yet: a
	// partition given up waits for them, so that its next owner does not
	// load stanzas already sent.
	deleting map[int]int
	kick     chan struct{} // wakes the publisher
	delKick  chan struct{} // wakes a deleter
	done     chan struct{}
	wg       sync.WaitGroup
}

type qdel struct {
	seq  uint64
	part int
}

type qstate uint8

const (
	qPending    qstate = iota // in memory only
	qPublishing               // published, waiting for the stream's ack
	qStored                   // in the stream at seq
)

type qent struct {
	state         qstate
	seq           uint64
	part          int
	local, remote string
	raw           []byte
	at, put       time.Time
	deleted       bool // while publishing: delete once the stream has it
}

// maxDeletes bounds the stream deletes in flight. Each is a request
// whose answer waits for a write to the replicas' disks: many in flight
// are what keeps up with a busy node.
const maxDeletes = 256

// openQueue creates (or opens) the queue's stream.
func (c *Cluster) openQueue(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:      queueStream,
		Subjects:  []string{queueSubjects},
		Storage:   jetstream.FileStorage,
		Replicas:  c.cfg.Replicas,
		Retention: jetstream.LimitsPolicy,
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.js.CreateOrUpdateStream(actx, cfg)
		cancel()
		if err == nil {
			c.queue = &Queue{
				c: c, stream: st, inc: strconv.FormatUint(rand.Uint64(), 36), minAge: 50 * time.Millisecond,
				ents: map[uint64]*qent{}, unstored: map[uint64]bool{}, held: map[uint64]bool{}, deleting: map[int]int{}, low: 1,
				changed: make(chan struct{}), kick: make(chan struct{}, 1), delKick: make(chan struct{}, 1), done: make(chan struct{}),
			}
			c.queue.wg.Add(2)
			go c.queue.publisher()
			go c.queue.deleter()
			return nil
		}
		c.log.Debug("cluster: queue stream not ready", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: queue stream: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Queue returns the replicated queue, the node's s2s.Store with durability
// "replicated"; nil otherwise.
func (c *Cluster) Queue() *Queue { return c.queue }

func queueSubject(p int) string { return "s2sd.q." + strconv.Itoa(p) }

// Put implements s2s.Store.
func (q *Queue) Put(local, remote string, raw []byte, at time.Time) uint64 {
	q.mu.Lock()
	q.next++
	id := q.next
	q.ents[id] = &qent{part: partition(remote, q.c.cfg.Partitions), local: local, remote: remote, raw: raw, at: at, put: time.Now()}
	q.unstored[id] = true
	q.mu.Unlock()
	q.signal()
	return id
}

// Delete implements s2s.Store.
func (q *Queue) Delete(ids ...uint64) {
	q.mu.Lock()
	for _, id := range ids {
		e := q.ents[id]
		switch {
		case e == nil:
		case e.state == qPending:
			delete(q.ents, id)
			q.settled(id)
		case e.state == qPublishing:
			e.deleted = true
			q.settled(id)
		default:
			delete(q.ents, id)
			delete(q.held, e.seq)
			q.deleteLocked(e.seq, e.part)
		}
	}
	q.mu.Unlock()
	q.signal()
	q.signalDelete()
}

// settled records that entry id needs nothing more from Durable: it is
// stored or gone. q.mu is held.
func (q *Queue) settled(id uint64) {
	delete(q.unstored, id)
	moved := false
	for q.low <= q.next && !q.unstored[q.low] {
		q.low++
		moved = true
	}
	if moved {
		q.broadcast()
	}
}

// Load implements s2s.Store: a node restores nothing when it starts; it
// loads each partition's stanzas when it takes the partition (LoadPartition).
func (q *Queue) Load(func(id uint64, local, remote string, raw []byte, at time.Time)) error {
	return nil
}

// Release gives stanzas up to the partition's next owner, which loads them
// from the stream: what is only in memory is published first. It returns
// the ids it could not keep in the stream within the forwarding timeout;
// the caller sends those to the owner itself.
func (q *Queue) Release(ids ...uint64) (notKept []uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), q.c.cfg.ForwardTimeout)
	defer cancel()
	q.mu.Lock()
	q.urgent = true
	q.mu.Unlock()
	q.signal()
	for {
		q.mu.Lock()
		waiting, changed := false, q.changed
		for _, id := range ids {
			if e := q.ents[id]; e != nil && (e.state != qStored || q.deleting[e.part] > 0) {
				waiting = true
				break
			}
		}
		if !waiting || ctx.Err() != nil {
			for _, id := range ids {
				e := q.ents[id]
				switch {
				case e == nil:
				case e.state == qStored:
					delete(q.ents, id)
					delete(q.held, e.seq)
				default:
					// Sent on by the caller: if the stream gets it after
					// all, it is deleted there, not sent twice.
					notKept = append(notKept, id)
					if e.state == qPending {
						delete(q.ents, id)
					} else {
						e.deleted = true
					}
					q.settled(id)
				}
			}
			q.mu.Unlock()
			return notKept
		}
		q.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
	}
}

// Durable returns once every stanza put so far is in the stream (stored by
// a majority of its replicas) or deleted, or ctx ends.
func (q *Queue) Durable(ctx context.Context) error {
	q.mu.Lock()
	target := q.next
	q.urgent = true
	q.mu.Unlock()
	q.signal()
	for {
		q.mu.Lock()
		done, changed := q.low > target, q.changed
		q.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-q.done:
			return errors.New("cluster: queue closed")
		}
	}
}

// LoadPartition calls f for each stanza of partition p in the stream that
// this process does not hold, oldest first, and holds it from then on.
// After an error it may be called again: what it loaded is not loaded
// twice.
func (q *Queue) LoadPartition(ctx context.Context, p int, f func(id uint64, local, remote string, raw []byte, at time.Time)) (int, error) {
	// Only with a leader: a consumer made while the stream has none can
	// be served from a replica's copy that lags, and would give stanzas
	// that the owner before had sent and deleted.
	info, err := q.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.Cluster != nil && info.Cluster.Leader == "" {
		return 0, errors.New("cluster: queue stream: no leader")
	}
	cons, err := q.c.js.OrderedConsumer(ctx, queueStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{queueSubject(p)}})
	if err != nil {
		return 0, err
	}
	n, loaded := cons.CachedInfo().NumPending, 0
	for got := uint64(0); got < n; {
		batch, err := cons.Fetch(int(min(n-got, 256)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return loaded, err
		}
		k := 0
		for m := range batch.Messages() {
			got++
			k++
			if q.adopt(m, f) {
				loaded++
			}
		}
		if err := batch.Error(); err != nil {
			return loaded, err
		}
		if k == 0 {
			return loaded, errors.New("cluster: queue stream: no messages where some were pending")
		}
	}
	return loaded, nil
}

// adopt takes a message of a partition this node now owns, unless this
// process holds it already.
func (q *Queue) adopt(m jetstream.Msg, f func(id uint64, local, remote string, raw []byte, at time.Time)) bool {
	md, err := m.Metadata()
	if err != nil {
		return false
	}
	h := m.Headers()
	inc, sid, _ := strings.Cut(h.Get(hdrQID), ".")
	at, _ := strconv.ParseInt(h.Get(hdrQAt), 10, 64)
	local, remote := h.Get(hdrQLocal), h.Get(hdrQRemote)
	seq := md.Sequence.Stream
	q.mu.Lock()
	if q.held[seq] {
		q.mu.Unlock()
		return false
	}
	if inc == q.inc {
		if old, _ := strconv.ParseUint(sid, 10, 64); q.ents[old] != nil {
			q.mu.Unlock()
			return false
		}
	}
	q.next++
	id := q.next
	q.held[seq] = true
	q.ents[id] = &qent{state: qStored, seq: seq, part: partition(remote, q.c.cfg.Partitions), local: local, remote: remote, raw: m.Data(), at: time.Unix(0, at), put: time.Now()}
	q.settled(id)
	q.mu.Unlock()
	f(id, local, remote, m.Data(), time.Unix(0, at))
	return true
}

func (q *Queue) signal() { poke(q.kick) }

// poke wakes the goroutine waiting on ch, if it is not awake already.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// publisher publishes the entries that are due: it wakes on each Put,
// and while entries wait for their age, every 10 ms.
func (q *Queue) publisher() {
	defer q.wg.Done()
	for {
		select {
		case <-q.kick:
		case <-q.done:
			return
		}
		for q.publish() {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-q.kick: // a Durable does not wait for the age
			case <-q.done:
				return
			}
		}
	}
}

// publish publishes the pending entries old enough (all of them when
// urgent), and reports whether some are left to wait.
func (q *Queue) publish() (waiting bool) {
	q.mu.Lock()
	if q.pubs > 0 {
		// One batch at a time: what comes meanwhile goes in the next,
		// written to the replicas' disks together (a group commit), and
		// the last answer of this one wakes the publisher.
		q.mu.Unlock()
		return true
	}
	all := q.urgent
	q.urgent = false
	cutoff := time.Now().Add(-q.minAge)
	type due struct {
		id uint64
		e  qent
	}
	var ds []due
	for id := range q.unstored {
		e := q.ents[id]
		if e == nil || e.state != qPending {
			continue
		}
		if all || e.put.Before(cutoff) {
			e.state = qPublishing
			q.pubs++
			ds = append(ds, due{id, *e})
		} else {
			waiting = true
		}
	}
	q.mu.Unlock()
	// In order: a partition's stanzas load in the order they were put.
	slices.SortFunc(ds, func(a, b due) int { return cmp.Compare(a.id, b.id) })
	for _, d := range ds {
		mid := q.inc + "." + strconv.FormatUint(d.id, 10)
		m := nats.NewMsg(queueSubject(d.e.part))
		m.Header.Set(hdrQLocal, d.e.local)
		m.Header.Set(hdrQRemote, d.e.remote)
		m.Header.Set(hdrQAt, strconv.FormatInt(d.e.at.UnixNano(), 10))
		m.Header.Set(hdrQID, mid)
		m.Data = d.e.raw
		f, err := q.c.js.PublishMsgAsync(m, jetstream.WithMsgID(mid))
		if err != nil {
			q.failed(d.id, err)
			q.published()
			waiting = true
			continue
		}
		go q.await(d.id, f)
	}
	return waiting
}

// await records the stream's answer to a publish.
func (q *Queue) await(id uint64, f jetstream.PubAckFuture) {
	defer q.published()
	// The client's publish timeout ends the wait; this one is in case it
	// does not: a publish never answered must be tried again.
	t := time.NewTimer(2 * q.c.cfg.ForwardTimeout)
	defer t.Stop()
	select {
	case <-t.C:
		q.failed(id, errors.New("no answer from the stream"))
	case ack := <-f.Ok():
		q.mu.Lock()
		if e := q.ents[id]; e != nil {
			e.state, e.seq = qStored, ack.Sequence
			if e.deleted {
				delete(q.ents, id)
				q.deleteLocked(ack.Sequence, e.part)
			} else {
				q.held[ack.Sequence] = true
			}
			q.settled(id)
		}
		q.broadcast()
		q.mu.Unlock()
		q.signalDelete()
	case err := <-f.Err():
		q.failed(id, err)
	}
}

// published counts a publish answered (or failed); after the batch's
// last, the publisher goes on.
func (q *Queue) published() {
	q.mu.Lock()
	q.pubs--
	last := q.pubs == 0
	q.mu.Unlock()
	if last {
		q.signal()
	}
}

// failed puts an entry whose publish failed back in memory, to be tried
// again.
func (q *Queue) failed(id uint64, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.ents[id]
	if e == nil {
		return
	}
	if e.deleted {
		delete(q.ents, id)
		return
	}
	e.state = qPending
	q.c.log.Warn("cluster: cannot store a queued stanza in the replicated queue; trying again", "remote", e.remote, "err", err)
}

// broadcast wakes Durable and Release. q.mu is held.
func (q *Queue) broadcast() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// deleteLocked queues the delete of seq. q.mu is held.
func (q *Queue) deleteLocked(seq uint64, part int) {
	q.dels = append(q.dels, qdel{seq, part})
	q.deleting[part]++
}

func (q *Queue) signalDelete() { poke(q.delKick) }

// deleter deletes sent stanzas from the stream, up to maxDeletes at a
// time.
func (q *Queue) deleter() {
	defer q.wg.Done()
	sem := make(chan struct{}, maxDeletes)
	var running sync.WaitGroup
	defer running.Wait()
	for {
		q.mu.Lock()
		var d qdel
		n := len(q.dels)
		if n > 0 {
			d = q.dels[0]
			q.dels = q.dels[1:]
		}
		q.mu.Unlock()
		if n == 0 {
			select {
			case <-q.delKick:
				continue
			case <-q.done:
				return
			}
		}
		sem <- struct{}{}
		running.Add(1)
		go func() {
			defer func() { <-sem; running.Done() }()
			q.deleteMsg(d)
		}()
	}
}

func (q *Queue) deleteMsg(d qdel) {
	ctx, cancel := context.WithTimeout(context.Background(), q.c.cfg.ForwardTimeout)
	err := q.stream.DeleteMsg(ctx, d.seq)
	cancel()
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		// Left in the stream: the next owner of its partition sends it
		// again.
		q.c.log.Warn("cluster: cannot delete a sent stanza from the replicated queue", "seq", d.seq, "err", err)
	}
	q.mu.Lock()
	if q.deleting[d.part]--; q.deleting[d.part] <= 0 {
		delete(q.deleting, d.part)
		q.broadcast()
	}
	q.mu.Unlock()
}

// Close implements s2s.Store: what is only in memory is published, and the
// deletes under way finish, within the forwarding timeout.
func (q *Queue) Close() error {
	select {
	case <-q.done:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.c.cfg.ForwardTimeout)
	defer cancel()
	err := q.Durable(ctx)
	// The deletes queued and under way, counted by deleting.
	dctx, dcancel := context.WithTimeout(context.Background(), q.c.cfg.ForwardTimeout)
	defer dcancel()
	for dctx.Err() == nil {
		q.mu.Lock()
		n, changed := len(q.deleting), q.changed
		q.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-changed:
		case <-dctx.Done():
		}
	}
	close(q.done)
	q.wg.Wait()
	return err
}

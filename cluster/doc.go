// Package cluster lets several s2sd nodes serve the same domains, on NATS:
// an embedded nats-server in each node joined to the others by NATS
// cluster routes, or an external NATS cluster. Membership, leases and the
// shared state are JetStream key-value buckets; stanzas that must cross
// nodes travel as core NATS requests. Nothing here is a membership,
// consensus or replication protocol of its own: NATS does that.
//
// What the cluster does:
//
//   - Every node accepts inbound s2s streams and components for all the
//     cluster's domains (SRV records list every node).
//   - Members: each node keeps a key in the bucket s2sd-members, whose
//     entries live LeaseTTL; a node that stops refreshing it (SIGKILL,
//     partition) leaves the cluster after LeaseTTL.
//   - Outbound: remote domains hash into Partitions partitions; each has
//     one owner at a time, which holds a lease in s2sd-leases (a key per
//     partition, created with Create, renewed with Update on its revision,
//     gone after LeaseTTL without renewal). The preferred owner of a
//     partition is the live member that rendezvous hashing picks, so
//     partitions move only when members come or go. Only the owner dials a
//     remote domain: the cluster keeps one outbound stream per pair, like a
//     single server. Stanzas for a remote domain from any node go to the
//     owner (WrapRemote).
//   - Components: s2sd-components says which node holds each component
//     domain; a stanza for a component attached elsewhere goes there
//     (WrapComponent). A stanza for a component attached nowhere waits
//     ComponentGrace for it to come back (it may be reconnecting to another
//     node) before it bounces with service-unavailable. Stanzas that wait
//     for a component do so in one queue per domain, in the order they
//     came, and a stanza that comes meanwhile goes behind them.
//   - Dialback: the secret is in s2sd-config, created once by the first
//     node, so a db:verify that lands on any node answers for a key any
//     node issued (Secret).
//   - Forwarding keeps a stanza's origin (a local component, a remote
//     domain on an authenticated stream), so every node applies the same
//     rules: nothing is relayed between two remote domains, and a forwarded
//     stanza is delivered where it lands, never forwarded again (no loops
//     while ownership moves).
//   - Handover: a node that stops (Shutdown) gives its partitions up and
//     sends what its pool holds for them to their new owners before it
//     exits, so a rolling restart loses nothing.
//
// Durability ("node", the only mode so far): each node keeps what it owns
// in its own queue file; a forwarding node holds a stanza until the owner
// has queued it (the request's answer), and after repeated failures queues
// it itself rather than drop it. What a node killed with SIGKILL had queued
// stays in its file until it restarts: it is sent then (or handed to the
// partition's owner). A stanza can be repeated when an owner dies after
// sending it and before the peer acknowledged it, as on a single node.
// Between the lease's end on one side and its start on the other, for at
// most LeaseTTL, two nodes can each have a stream for the same pair
// (network partition): a node that cannot renew a lease for two thirds of
// LeaseTTL drops its streams for that partition, before the lease expires
// for the others.
package cluster

package route

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/s2sd/s2sd/stanza"
)

// Handler takes a stanza for delivery. A *stanza.Error returned
// synchronously is sent back to the stanza's sender by the Router; a handler
// that fails later (a remote server that cannot be reached) calls
// Router.Bounce itself.
//
// A stanza read from a stream may borrow that stream's read buffer
// (s2s.Server.Lend, component.Server.Lend): it is then valid only until
// Deliver returns, the Stanza itself included, which the stream reuses
// for a later stanza. A handler that keeps it longer, in a queue or on
// another goroutine, calls Stanza.Own first, or keeps its bytes alone
// (Stanza.KeepBytes).
type Handler interface {
	Deliver(ctx context.Context, s *Stanza) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Stanza) error

// Deliver calls f.
func (f HandlerFunc) Deliver(ctx context.Context, s *Stanza) error { return f(ctx, s) }

// ErrNotConnected is returned by a component handler when the component
// is not attached; the Router bounces service-unavailable.
var ErrNotConnected = errors.New("route: component not connected")

// Counter counts routing events; s2sd plugs its metrics in here.
type Counter interface {
	Routed(kind string, from, to Origin)
	Bounced(condition stanza.Condition)
	Dropped(reason string)
}

// Router dispatches stanzas by their 'to' domain. The zero value routes
// everything to Remote; set the fields before first use, or use the methods,
// which are safe for concurrent use.
type Router struct {
	// Local serves the server's own domains (disco, ping, errors).
	Local Handler
	// Remote is the server-to-server pool.
	Remote Handler
	// Logger is used for dropped and bounced stanzas; nil means
	// slog.Default().
	Logger *slog.Logger
	// Counter, when set, is told of every routing decision.
	Counter Counter

	mu    sync.Mutex // serializes changes to the table
	table atomic.Pointer[table]
}

// table is what Lookup reads: the local and component domains. A change
// replaces it whole (copy on write) and it is never modified, so routing
// a stanza takes no lock, only an atomic load; changes (a component
// connecting, a reload) are rare next to stanzas.
type table struct {
	local      map[string]bool
	components map[string]Handler
	// dests is both, for Lookup: one map access per stanza. A domain
	// that is local and a component's is local.
	dests map[string]dest
}

type dest struct {
	to Destination
	h  Handler // a component's
}

func newTable(local map[string]bool, components map[string]Handler) *table {
	t := &table{local: local, components: components, dests: make(map[string]dest, len(local)+len(components))}
	for d, h := range components {
		t.dests[d] = dest{ToComponent, h}
	}
	for d := range local {
		t.dests[d] = dest{to: ToLocal}
	}
	return t
}

var emptyTable table

func (r *Router) load() *table {
	if t := r.table.Load(); t != nil {
		return t
	}
	return &emptyTable
}

// Destination is where a domain's stanzas go.
type Destination uint8

// Destinations.
const (
	ToRemote Destination = iota
	ToLocal
	ToComponent
)

// SetLocal sets the domains served by Local.
func (r *Router) SetLocal(domains ...string) {
	m := make(map[string]bool, len(domains))
	for _, d := range domains {
		m[d] = true
	}
	r.mu.Lock()
	r.table.Store(newTable(m, r.load().components))
	r.mu.Unlock()
}

// SetComponent routes domain to h; a nil h removes the domain.
func (r *Router) SetComponent(domain string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.load()
	c := make(map[string]Handler, len(t.components)+1)
	for d, ch := range t.components {
		c[d] = ch
	}
	if h == nil {
		delete(c, domain)
	} else {
		c[domain] = h
	}
	r.table.Store(newTable(t.local, c))
}

// Lookup tells where stanzas for domain go.
func (r *Router) Lookup(domain string) (Destination, Handler) {
	switch d := r.load().dests[domain]; d.to {
	case ToLocal:
		return ToLocal, r.Local
	case ToComponent:
		return ToComponent, d.h
	}
	return ToRemote, r.Remote
}

// Hosted reports whether domain is ours: a local domain or a component's.
func (r *Router) Hosted(domain string) bool {
	d, _ := r.Lookup(domain)
	return d != ToRemote
}

// Components returns the component domains.
func (r *Router) Components() []string {
	t := r.load()
	l := make([]string, 0, len(t.components))
	for d := range t.components {
		l = append(l, d)
	}
	return l
}

func (r *Router) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// Deliver routes s. It never fails: what cannot be delivered is bounced to
// its sender, or dropped with a log line when it was an error itself.
func (r *Router) Deliver(ctx context.Context, s *Stanza) error {
	dest, h := r.Lookup(s.ToDomain())
	if dest == ToRemote && s.Origin == FromRemote {
		// RFC 6120 §13.7.1.1: never relay between two remote domains.
		r.Bounce(ctx, s, stanza.New(stanza.ServiceUnavailable, "this server does not relay between remote domains"))
		return nil
	}
	if h == nil {
		r.Bounce(ctx, s, stanza.New(stanza.ServiceUnavailable, ""))
		return nil
	}
	if r.Counter != nil {
		to := FromRemote
		switch dest {
		case ToLocal:
			to = FromLocal
		case ToComponent:
			to = FromComponent
		}
		r.Counter.Routed(s.Kind, s.Origin, to)
	}
	err := h.Deliver(ctx, s)
	if err == nil {
		return nil
	}
	var se *stanza.Error
	switch {
	case errors.As(err, &se):
	case errors.Is(err, ErrNotConnected):
		// A component that is not attached: bounce at once rather than
		// hold, so that the sender learns now and can retry; XEP-0114
		// components reconnect in seconds and hold their own state.
		se = stanza.New(stanza.ServiceUnavailable, "the component is not connected")
	default:
		se = stanza.New(stanza.InternalServerError, "")
		r.logger().Warn("delivery failed", "stanza", s.String(), "err", err)
	}
	r.Bounce(ctx, s, se)
	return nil
}

// Bounce returns s to its sender with error e, or drops it with a log line
// when s is itself an error (RFC 6120 §8.3.1).
func (r *Router) Bounce(ctx context.Context, s *Stanza, e *stanza.Error) {
	if e.By == "" && !s.To.Equal(s.To.Domain()) {
		e.By = s.To.Domain().String()
	}
	reply := ErrorReply(s, e)
	if reply == nil {
		r.logger().Info("stanza not delivered and not bounced", "stanza", s.String(), "condition", e.Condition, "text", e.Text)
		if r.Counter != nil {
			r.Counter.Dropped("error-not-bounced")
		}
		return
	}
	if r.Counter != nil {
		r.Counter.Bounced(e.Condition)
	}
	r.logger().Debug("bounce", "stanza", s.String(), "condition", e.Condition, "text", e.Text)
	// The reply comes from the recipient's domain: ours, a component's or a
	// remote one that failed. Route it like any stanza of ours.
	dest, h := r.Lookup(reply.To.Domain().String())
	if h == nil || dest == ToRemote && !r.Hosted(reply.From.Domain().String()) {
		// We may only send from our own domains.
		r.logger().Info("bounce not sent: it would come from a domain that is not ours", "stanza", s.String())
		if r.Counter != nil {
			r.Counter.Dropped("bounce-from-foreign-domain")
		}
		return
	}
	if err := h.Deliver(ctx, reply); err != nil {
		r.logger().Info("bounce not delivered", "stanza", reply.String(), "err", err)
	}
}

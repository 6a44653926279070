package cpim

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/s2sd/s2sd/route"
)

// Subscription is a presence subscription operation of the common
// presence profile (RFC 3859 §4.2, mapped by RFC 3922 §6): Watcher asks to
// be told of Target's presence for Duration. A Duration of zero ends the
// subscription.
type Subscription struct {
	Watcher  string // pres: URI
	Target   string // pres: URI
	Duration time.Duration
	// TransID identifies the operation; it maps to and from the stanza's
	// id (RFC 3922 §6.1.1, §6.2.1: SHOULD).
	TransID string
}

// Forever is the Duration of an XMPP subscription, which lasts until it is
// cancelled (RFC 3922 §6.1.1: no duration).
const Forever = time.Duration(math.MaxInt64)

// SubscriptionResult is the outcome of a subscription operation.
type SubscriptionResult int

// Outcomes of a subscription (RFC 3922 §6.1.2 to §6.1.4, §6.2.2 to §6.2.4).
const (
	// Approved: the target lets the watcher see its presence.
	Approved SubscriptionResult = iota
	// Denied: the target refused, or ended, the subscription.
	Denied
	// UnknownTarget: there is no such presentity (item-not-found).
	UnknownTarget
	// Forbidden: access control refused the watcher (forbidden).
	Forbidden
	// Exists: the subscription exists or is in progress (conflict).
	Exists
)

func (r SubscriptionResult) String() string {
	switch r {
	case Approved:
		return "approved"
	case Denied:
		return "denied"
	case UnknownTarget:
		return "unknown target"
	case Forbidden:
		return "forbidden"
	case Exists:
		return "exists"
	}
	return fmt.Sprintf("SubscriptionResult(%d)", int(r))
}

// conditions maps failure results to stanza error conditions and error
// types (RFC 6120 §8.3.3).
var conditions = map[SubscriptionResult][2]string{
	UnknownTarget: {"item-not-found", "cancel"},
	Forbidden:     {"forbidden", "auth"},
	Exists:        {"conflict", "cancel"},
}

// subscriptionStanza parses a presence stanza and returns it, its type,
// its bare from and to as pres: URIs, and its id.
func subscriptionStanza(stanza []byte) (root *node, typ, from, to, id string, err error) {
	root, err = parseXML(stanza)
	if err != nil {
		return nil, "", "", "", "", err
	}
	ns := root.name.Space
	if root.name.Local != "presence" || !(stanzaNS(ns) || ns == "") {
		return nil, "", "", "", "", fmt.Errorf("%w: not a presence stanza: %s", ErrSyntax, clark(root.name))
	}
	typ, _ = root.getAttr("type")
	id, _ = root.getAttr("id")
	for _, a := range [...]struct {
		name string
		out  *string
	}{{"from", &from}, {"to", &to}} {
		v, ok := root.getAttr(a.name)
		if !ok {
			return nil, "", "", "", "", fmt.Errorf("%w: subscription presence without %s", ErrNotMappable, a.name)
		}
		j, err := route.ParseJID(v)
		if err != nil {
			return nil, "", "", "", "", fmt.Errorf("%w: %q: %v", ErrAddress, v, err)
		}
		// A subscription is between bare JIDs (RFC 6121 §3.1.1).
		if *a.out, err = XMPPToPres(j.Bare().String()); err != nil {
			return nil, "", "", "", "", err
		}
	}
	return root, typ, from, to, id, nil
}

// SubscriptionFromStanza maps an XMPP subscription request to the
// operation a gateway passes on (RFC 3922 §6.1.1, §6.3): a presence of type
// subscribe is a subscription of from to to, lasting Forever; unsubscribe
// ends one (Duration zero); unsubscribed, sent by the target, ends the
// subscription of to to from. Resources are dropped. Other types give
// ErrNotMappable: subscribed and error are answers (SubscriptionAnswer),
// the rest notifications (PresenceToPIDF).
func SubscriptionFromStanza(stanza []byte) (*Subscription, error) {
	_, typ, from, to, id, err := subscriptionStanza(stanza)
	if err != nil {
		return nil, err
	}
	s := &Subscription{Watcher: from, Target: to, TransID: id}
	switch typ {
	case "subscribe":
		s.Duration = Forever
	case "unsubscribe":
	case "unsubscribed":
		s.Watcher, s.Target = to, from
	default:
		return nil, fmt.Errorf("%w: presence of type %q is not a subscription operation", ErrNotMappable, typ)
	}
	return s, nil
}

// Stanza maps the operation of a watcher outside XMPP to an XMPP user
// (RFC 3922 §6.2.1): a presence of type subscribe (any non-zero Duration:
// XMPP subscriptions do not expire, so a gateway that honours a shorter
// one ends it itself) or unsubscribe (zero), from the watcher to the
// target, with TransID as its id, in namespace ns (NSClient, NSServer or
// NSComponent).
func (s *Subscription) Stanza(ns string) ([]byte, error) {
	typ := "subscribe"
	if s.Duration == 0 {
		typ = "unsubscribe"
	}
	return s.presence(ns, typ, s.Watcher, s.Target, "", "")
}

// Answer maps the result of an XMPP watcher's subscription, given by the
// presence service outside XMPP, to what goes back to the watcher (RFC
// 3922 §6.1.2 to §6.1.4): subscribed when Approved (the gateway then sends
// the target's current presence), unsubscribed when Denied, and a
// presence of type error otherwise (item-not-found, forbidden, conflict).
// It comes from the target, with TransID as its id.
func (s *Subscription) Answer(r SubscriptionResult, ns string) ([]byte, error) {
	switch r {
	case Approved:
		return s.presence(ns, "subscribed", s.Target, s.Watcher, "", "")
	case Denied:
		return s.presence(ns, "unsubscribed", s.Target, s.Watcher, "", "")
	}
	c, ok := conditions[r]
	if !ok {
		return nil, fmt.Errorf("%w: unknown subscription result %d", ErrSyntax, int(r))
	}
	return s.presence(ns, "error", s.Target, s.Watcher, c[0], c[1])
}

// SubscriptionAnswer reads an XMPP user's answer to the subscription of a
// watcher outside XMPP (RFC 3922 §6.2.2 to §6.2.4): subscribed is Approved,
// unsubscribed Denied, and a presence of type error carries its condition
// (item-not-found, forbidden, conflict; others give ErrNotMappable). The
// Subscription names the watcher (the stanza's to) and the target (from),
// with the id as TransID.
func SubscriptionAnswer(stanza []byte) (*Subscription, SubscriptionResult, error) {
	root, typ, from, to, id, err := subscriptionStanza(stanza)
	if err != nil {
		return nil, 0, err
	}
	s := &Subscription{Watcher: to, Target: from, TransID: id, Duration: Forever}
	switch typ {
	case "subscribed":
		return s, Approved, nil
	case "unsubscribed":
		s.Duration = 0
		return s, Denied, nil
	case "error":
		for _, c := range root.elems() {
			if c.name.Local != "error" {
				continue
			}
			for _, cond := range c.elems() {
				if cond.name.Space != nsStanzas {
					continue
				}
				for r, v := range conditions {
					if v[0] == cond.name.Local {
						return s, r, nil
					}
				}
				return nil, 0, fmt.Errorf("%w: subscription error %s", ErrNotMappable, cond.name.Local)
			}
		}
		return nil, 0, fmt.Errorf("%w: presence error without a condition", ErrNotMappable)
	}
	return nil, 0, fmt.Errorf("%w: presence of type %q is not an answer to a subscription", ErrNotMappable, typ)
}

// nsStanzas is the namespace of stanza error conditions (RFC 6120 §8.3.3).
const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// presence writes a subscription presence from one pres: URI to another.
func (s *Subscription) presence(ns, typ, fromURI, toURI, cond, condType string) ([]byte, error) {
	if !stanzaNS(ns) {
		return nil, fmt.Errorf("%w: stanza namespace %q", ErrSyntax, ns)
	}
	from, err := PresToXMPP(fromURI)
	if err != nil {
		return nil, err
	}
	to, err := PresToXMPP(toURI)
	if err != nil {
		return nil, err
	}
	if !xmlText(s.TransID) {
		return nil, fmt.Errorf("%w: TransID is not XML text", ErrSyntax)
	}
	var b strings.Builder
	b.WriteString("<presence xmlns=")
	writeAttrValue(&b, ns)
	b.WriteString(" from=")
	writeAttrValue(&b, from)
	b.WriteString(" to=")
	writeAttrValue(&b, to)
	b.WriteString(" type=")
	writeAttrValue(&b, typ)
	if s.TransID != "" {
		b.WriteString(" id=")
		writeAttrValue(&b, s.TransID)
	}
	if cond == "" {
		b.WriteString("/>")
		return []byte(b.String()), nil
	}
	b.WriteString("><error type=")
	writeAttrValue(&b, condType)
	b.WriteString("><" + cond + " xmlns='" + nsStanzas + "'/></error></presence>")
	return []byte(b.String()), nil
}

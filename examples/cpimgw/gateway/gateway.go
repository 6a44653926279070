package gateway

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/s2sd/s2sd/cpim"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// DefaultTimeout bounds one Sink.Put when Gateway.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Object is one CPIM object made from a stanza.
type Object struct {
	// MediaType is cpim.MediaType (Message/CPIM) or cpim.MediaTypePIDF
	// (application/pidf+xml).
	MediaType string
	// Data is the object: a Message/CPIM object as Message.Marshal writes
	// it (without its own MIME header), or a PIDF document.
	Data []byte
	// Kind, From, To and ID are the source stanza's name and attributes,
	// for sinks that route or deduplicate without parsing Data. A PIDF
	// document names its entity (From) but not To.
	Kind, From, To, ID string
}

// Sender sends one raw stanza on the component stream;
// *component.Component and *component.Conn are Senders.
type Sender interface {
	Send(raw []byte) error
}

// Gateway maps stanzas to CPIM objects for a Sink, and CPIM objects to
// stanzas for a Sender. Set the fields before use; Deliver and Stanzas may
// be called concurrently.
type Gateway struct {
	// Domain is the component's domain; inbound objects must be from it.
	Domain string
	// Sink receives the objects made from stanzas. nil answers every
	// stanza with service-unavailable.
	Sink Sink
	// Sender carries inbound objects to XMPP (used by Inbox).
	Sender Sender

	// Timeout bounds each Sink.Put (default DefaultTimeout). Deliver runs
	// on the component's reading goroutine: a slow sink holds up the
	// stanzas behind it.
	Timeout time.Duration

	// PresenceAsCPIM wraps each PIDF document in a Message/CPIM object
	// (cpim.PresenceMessage, RFC 3922 §5.1) so that the presence's 'to'
	// survives as the To header. By default presence gives a bare PIDF
	// document, which has no recipient (Object.To still has it).
	PresenceAsCPIM bool

	// AcceptLoss decides whether a mapping that drops parts of a stanza or
	// of an object (lost names them, see cpim.UnmappedError) goes ahead.
	// nil accepts every loss; the lost parts are logged either way. A
	// refused stanza is answered with not-acceptable; a refused inbound
	// object is not sent.
	AcceptLoss func(kind string, lost []string) bool

	// Logger receives what was lost, refused and bounced; nil means
	// slog.Default(). Bodies are never logged.
	Logger *slog.Logger
}

var _ route.Handler = (*Gateway)(nil)

func (g *Gateway) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.Default()
}

// Deliver maps one stanza received by the component and puts the object in
// the sink. It returns a *stanza.Error for the component to send back; see
// the package documentation for which.
func (g *Gateway) Deliver(ctx context.Context, st *route.Stanza) error {
	log := g.logger().With("kind", st.Kind, "from", st.From.String(), "to", st.To.String(), "id", st.ID)
	if st.Kind == "iq" {
		switch st.Type {
		case "get", "set":
			// RFC 6120 §8.4: no service here answers any iq payload.
			return g.stanzaErr(stanza.ServiceUnavailable, "this CPIM gateway offers no iq services")
		case "error":
			log.Info("cpimgw: iq error received", "condition", errorCondition(st))
		}
		return nil // results: we never send iqs
	}
	obj, err := g.object(st, log)
	if st.IsError() {
		// Never answer an error (RFC 6120 §8.3). An error message still
		// tells the CPIM side that something it sent bounced.
		if err != nil {
			log.Info("cpimgw: error stanza not mapped", "condition", errorCondition(st), "err", err)
			return nil
		}
		if err := g.put(ctx, obj); err != nil {
			log.Warn("cpimgw: sink refused an error stanza", "err", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if err := g.put(ctx, obj); err != nil {
		se := g.sinkError(err)
		log.Warn("cpimgw: sink failed; bouncing", "err", err, "condition", se.Condition)
		return se
	}
	log.Debug("cpimgw: delivered", "media_type", obj.MediaType, "bytes", len(obj.Data))
	return nil
}

func (g *Gateway) put(ctx context.Context, obj Object) error {
	if g.Sink == nil {
		return stanza.New(stanza.ServiceUnavailable, "the gateway has no sink")
	}
	d := g.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return g.Sink.Put(ctx, obj)
}

// object maps a message or presence stanza; errors are *stanza.Error.
func (g *Gateway) object(st *route.Stanza, log *slog.Logger) (Object, error) {
	obj := Object{Kind: st.Kind, From: st.From.String(), To: st.To.String(), ID: st.ID}
	raw := selfContained(st)
	var err error
	switch st.Kind {
	case "message":
		var m *cpim.Message
		m, err = cpim.FromStanza(raw)
		if m != nil {
			inheritLang(m)
			obj.MediaType = cpim.MediaType
			if obj.Data, err = g.accept(st.Kind, err, log, m.Marshal); err != nil {
				return obj, err
			}
			return obj, nil
		}
	case "presence":
		if st.Type == "error" {
			return obj, fmt.Errorf("cpimgw: presence errors are not mapped")
		}
		if g.PresenceAsCPIM {
			var m *cpim.Message
			m, err = cpim.PresenceMessage(raw)
			if m != nil {
				obj.MediaType = cpim.MediaType
				obj.Data, err = g.accept(st.Kind, err, log, m.Marshal)
				return obj, err
			}
		} else {
			var pidf []byte
			pidf, err = cpim.PresenceToPIDF(raw)
			if pidf != nil {
				obj.MediaType = cpim.MediaTypePIDF
				obj.Data, err = g.accept(st.Kind, err, log, func() ([]byte, error) { return pidf, nil })
				return obj, err
			}
		}
	}
	log.Info("cpimgw: stanza not mapped", "err", redact(err))
	switch {
	case errors.Is(err, cpim.ErrSecured):
		return obj, g.stanzaErr(stanza.FeatureNotImplemented, "this gateway does not pass RFC 3923 secured content through")
	case errors.Is(err, cpim.ErrNotMappable):
		return obj, g.stanzaErr(stanza.FeatureNotImplemented, "not mapped to CPIM (RFC 3922 §6): "+err.Error())
	case errors.Is(err, cpim.ErrTooLarge):
		return obj, g.stanzaErr(stanza.PolicyViolation, "too large to map to CPIM")
	}
	return obj, g.stanzaErr(stanza.NotAcceptable, "cannot be mapped to CPIM: "+err.Error())
}

// accept applies AcceptLoss to the error of a conversion that produced a
// result, then encodes the result.
func (g *Gateway) accept(kind string, err error, log *slog.Logger, encode func() ([]byte, error)) ([]byte, error) {
	var un *cpim.UnmappedError
	if errors.As(err, &un) {
		lost := redactItems(un.Items)
		if g.AcceptLoss != nil && !g.AcceptLoss(kind, un.Items) {
			log.Info("cpimgw: loss refused", "lost", lost)
			return nil, g.stanzaErr(stanza.NotAcceptable, "cannot be mapped to CPIM without losing: "+strings.Join(un.Items, "; "))
		}
		log.Info("cpimgw: mapped with loss", "lost", lost)
	} else if err != nil {
		return nil, g.stanzaErr(stanza.NotAcceptable, "cannot be mapped to CPIM: "+err.Error())
	}
	b, err := encode()
	if err != nil {
		return nil, g.stanzaErr(stanza.NotAcceptable, "cannot be written as CPIM: "+err.Error())
	}
	return b, nil
}

func (g *Gateway) stanzaErr(c stanza.Condition, text string) *stanza.Error {
	return &stanza.Error{Condition: c, Text: text, By: g.Domain}
}

// sinkError turns what a sink returned into the error its sender gets.
// Details of the sink (addresses, paths) stay in the log.
func (g *Gateway) sinkError(err error) *stanza.Error {
	var se *stanza.Error
	if errors.As(err, &se) {
		if se.By == "" {
			c := *se
			c.By = g.Domain
			return &c
		}
		return se
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return g.stanzaErr(stanza.RemoteServerTimeout, "the gateway's sink did not answer in time")
	}
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 {
		return g.stanzaErr(stanza.NotAcceptable, fmt.Sprintf("the gateway's sink refused the object (HTTP %d)", he.StatusCode))
	}
	return g.stanzaErr(stanza.ServiceUnavailable, "the gateway's sink is unavailable")
}

// Stanzas maps one Message/CPIM object (with or without its own MIME
// header) to the stanzas that carry it, in the jabber:component:accept
// namespace: text content gives one message (Message.Stanza, RFC 3922
// §4.2), PIDF content one presence per tuple (Message.Presence, §5.2).
// Every stanza must be from the gateway's domain and have a recipient.
// Loss is handled as for Deliver; on a refused loss or a mapping error
// nothing is returned.
func (g *Gateway) Stanzas(obj []byte) ([][]byte, error) {
	m, err := cpim.Parse(obj)
	if err != nil {
		return nil, err
	}
	var (
		raw  []byte
		kind = "message"
	)
	if isPIDF(m.ContentType) {
		kind = "presence"
		raw, err = m.Presence(cpim.NSComponent)
	} else {
		raw, err = m.Stanza(cpim.NSComponent)
	}
	if raw == nil {
		return nil, err
	}
	var un *cpim.UnmappedError
	if errors.As(err, &un) {
		if g.AcceptLoss != nil && !g.AcceptLoss(kind, un.Items) {
			return nil, err
		}
		g.logger().Info("cpimgw: inbound object mapped with loss", "from", m.FromURI, "to", m.ToURI, "lost", redactItems(un.Items))
	} else if err != nil {
		return nil, err
	}
	out, err := splitElements(raw)
	if err != nil {
		return nil, err
	}
	for _, s := range out {
		st, err := route.New(s, cpim.NSComponent)
		if err != nil {
			return nil, fmt.Errorf("cpimgw: mapped stanza: %w", err)
		}
		if st.From.Domainpart() != g.Domain {
			return nil, fmt.Errorf("cpimgw: from %s is not at the gateway's domain %s", st.From.String(), g.Domain)
		}
		if st.To.Domainpart() == "" {
			return nil, fmt.Errorf("cpimgw: the object has no To")
		}
	}
	return out, nil
}

func isPIDF(contentType string) bool {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(t), cpim.MediaTypePIDF)
}

// splitElements splits concatenated top-level elements.
func splitElements(b []byte) ([][]byte, error) {
	var out [][]byte
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, start := 0, int64(0)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cpimgw: mapped stanzas: %w", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				start = off
			}
			depth++
		case xml.EndElement:
			if depth--; depth == 0 {
				out = append(out, b[start:d.InputOffset()])
			}
		}
	}
	return out, nil
}

// selfContained returns the stanza as an element that does not depend on
// its stream: prefixes and the xml:lang of the stream header are declared
// on it (the default namespace is the only thing left implicit, and cpim
// accepts that). The zero StreamContext is reached through a type
// parameter so that this file copies out of the module unchanged.
func selfContained(st *route.Stanza) []byte {
	return st.AppendTo(nil, zero(st.Ctx))
}

func zero[T any](T) (z T) { return z }

// inheritLang applies XML's xml:lang inheritance (XML 1.0 §2.12), which
// FromStanza leaves to its caller: a <subject/> or the <body/> without its
// own xml:lang is in the stanza's language, kept as XMPP.Lang. Subjects
// get it as ;lang= and the content as Content-Language; Message.Stanza
// writes both back as explicit, equivalent xml:lang attributes.
func inheritLang(m *cpim.Message) {
	lang := ""
	for _, h := range m.Extensions {
		if uri, local := m.Resolve(h.Name); uri == cpim.NamespaceXMPP && local == "Lang" {
			lang = h.Value
		}
	}
	if lang == "" {
		return
	}
	for i := range m.Subjects {
		if m.Subjects[i].Lang == "" {
			m.Subjects[i].Lang = lang
		}
	}
	if len(m.Body) == 0 {
		return
	}
	if _, ok := m.ContentHeader("Content-Language"); ok {
		return
	}
	// A second body in the same language would make the choice of the
	// content ambiguous on the way back: leave the content unlabelled.
	for _, h := range m.Extensions {
		if uri, local := m.Resolve(h.Name); uri == cpim.NamespaceXMPP && local == "Body" && strings.Contains(h.Params, "lang="+lang) {
			return
		}
	}
	m.ContentHeaders = append(m.ContentHeaders, cpim.Header{Name: "Content-Language", Value: lang})
}

func errorCondition(st *route.Stanza) string {
	var v struct {
		Error struct {
			Inner []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"error"`
	}
	if err := st.El.Unmarshal(&v); err != nil {
		return ""
	}
	for _, c := range v.Error.Inner {
		if c.XMLName.Space == stanza.NS && c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return ""
}

// redactItems keeps the names of lost parts and hides quoted values, which
// may be message text (bodies are never logged).
func redactItems(items []string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = redactString(it)
	}
	return out
}

func redact(err error) string {
	if err == nil {
		return ""
	}
	return redactString(err.Error())
}

func redactString(s string) string {
	if before, _, ok := strings.Cut(s, `"`); ok {
		return before + `"…"`
	}
	return s
}

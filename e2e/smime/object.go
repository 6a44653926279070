package smime

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/s2sd/s2sd/cpim"
	"github.com/s2sd/s2sd/route"
)

// nsPIDF is the PIDF namespace (RFC 3863 §4.1).
const nsPIDF = "urn:ietf:params:xml:ns:pidf"

// object builds the MIME entity to protect (RFC 3923 §3.1 step 1, §4.1
// step 1, §5), with a fresh timestamp.
func (a *Agent) object(s *stanza, form Form) ([]byte, error) {
	raw := s.withChildren(s.inner)
	if s.attr("from") == "" {
		// Clients leave 'from' to their server (RFC 6120 §8.1.2.1), but
		// the object names its sender (RFC 3923 Example 1).
		if addr := a.address(); addr != "" {
			raw = s.withAttr("from", addr)
		}
	}
	switch {
	case form == FormStanza || s.name == "iq":
		return a.xmppObject(raw)
	case s.name == "message":
		m, err := cpim.FromStanza(raw)
		if err = mapped(err); err != nil {
			return nil, fmt.Errorf("smime: the message does not map to Message/CPIM (FormStanza secures it whole): %w", err)
		}
		m.DateTime = a.timestamp()
		return m.MarshalMIME()
	case s.name == "presence":
		if s.attr("to") == "" {
			// RFC 3923 §4.1 step 3: only directed presence is secured.
			return nil, errors.New("smime: secured presence must be directed (have a 'to')")
		}
		pidf, err := cpim.PresenceToPIDF(raw)
		if err = mapped(err); err != nil {
			return nil, fmt.Errorf("smime: the presence does not map to PIDF (FormStanza secures it whole): %w", err)
		}
		pidf, err = stampPIDF(pidf, a.timestamp())
		if err != nil {
			return nil, err
		}
		return append([]byte("Content-Type: "+typePIDF+"\r\n\r\n"), pidf...), nil
	}
	return nil, fmt.Errorf("smime: cannot secure <%s/>", s.name)
}

// mapped returns err unless it is a *cpim.UnmappedError that names only
// what the secured stanza keeps in its start tag anyway (id, xml:lang):
// anything else would travel unprotected or be lost.
func mapped(err error) error {
	var u *cpim.UnmappedError
	if !errors.As(err, &u) {
		return err
	}
	for _, item := range u.Items {
		if item != "xml:lang" && !strings.HasPrefix(item, "id ") {
			return err
		}
	}
	return nil
}

// xmppObject wraps a whole stanza in application/xmpp+xml inside a
// Message/CPIM object (RFC 3923 §5: "[MSGFMT] specifies the ability to
// encapsulate any MIME type"), which gives it the DateTime that §6.9
// checks.
func (a *Agent) xmppObject(raw []byte) ([]byte, error) {
	s, err := parseStanza(raw)
	if err != nil {
		return nil, err
	}
	m := &cpim.Message{
		DateTime:    a.timestamp(),
		ContentType: typeXMPP + "; charset=utf-8",
		Body:        s.xmppDocument(),
	}
	if m.FromURI, err = addressURI(s.attr("from")); err != nil {
		return nil, err
	}
	if m.ToURI, err = addressURI(s.attr("to")); err != nil {
		return nil, err
	}
	return m.MarshalMIME()
}

// addressURI maps a JID to an im: URI (RFC 3922 §3.2), or to an xmpp: URI
// (RFC 5122) when it has no localpart.
func addressURI(j string) (string, error) {
	if j == "" {
		return "", nil
	}
	if u, err := cpim.XMPPToIM(j); err == nil {
		return u, nil
	}
	if _, err := route.ParseJID(j); err != nil {
		return "", fmt.Errorf("smime: address %q: %w", j, err)
	}
	return "xmpp:" + (&url.URL{Path: j}).EscapedPath(), nil
}

// cpimAddress maps a CPIM From URI back to an address.
func cpimAddress(uri string) (string, bool) {
	scheme, _, _ := strings.Cut(uri, ":")
	switch strings.ToLower(scheme) {
	case "im":
		j, err := cpim.IMToXMPP(uri)
		return j, err == nil
	case "pres":
		j, err := cpim.PresToXMPP(uri)
		return j, err == nil
	}
	return uriAddress(uri)
}

// opened is what readObject finds in the protected object.
type opened struct {
	body    []byte    // entity body
	stanza  []byte    // the stanza rebuilt from it
	senders []string  // addresses the object names as its sender
	time    time.Time // its timestamp, zero if none
}

// readObject reads the protected object found in received stanza s.
func readObject(s *stanza, ent *entity) (*opened, error) {
	ns := s.ns
	if ns == "" {
		ns = nsClient
	}
	o := &opened{body: ent.body}
	switch ent.mediaType {
	case typeCPIM:
		m, err := cpim.Parse(ent.body)
		if err != nil {
			return nil, err
		}
		o.time = m.DateTime
		if m.FromURI != "" {
			a, ok := cpimAddress(m.FromURI)
			if !ok {
				return nil, fmt.Errorf("smime: CPIM From %q is not an XMPP address", m.FromURI)
			}
			o.senders = append(o.senders, a)
		}
		mt, _, _ := mime.ParseMediaType(m.ContentType)
		if mt == typeXMPP {
			if err := o.takeXMPPDocument(m.Body); err != nil {
				return nil, err
			}
			return o, nil
		}
		if strings.HasPrefix(mt, "text/") {
			// Canonical CRLF back to XML's LF.
			m.Body = bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n"))
		}
		st, err := m.Stanza(ns)
		if err != nil && st == nil {
			return nil, err
		}
		children, err := childrenOf(st)
		if err != nil {
			return nil, err
		}
		o.stanza = s.withChildren(children)
	case typePIDF:
		entityAttr, ts, err := pidfInfo(ent.body)
		if err != nil {
			return nil, err
		}
		o.time = ts
		if entityAttr != "" {
			a, ok := cpimAddress(entityAttr)
			if !ok {
				return nil, fmt.Errorf("smime: PIDF entity %q is not an XMPP address", entityAttr)
			}
			o.senders = append(o.senders, a)
		}
		p, err := cpim.PIDFToPresence(ent.body, ns)
		if err != nil && p == nil {
			return nil, err
		}
		children, err := childrenOf(p)
		if err != nil {
			return nil, err
		}
		o.stanza = s.withChildren(children)
	case typeXMPP:
		// A bare application/xmpp+xml document has no timestamp; Open
		// then refuses it with bad-timestamp.
		if err := o.takeXMPPDocument(ent.body); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// takeXMPPDocument sets the stanza (and its sender) from an
// application/xmpp+xml document.
func (o *opened) takeXMPPDocument(b []byte) error {
	inner, err := parseXMPPDocument(b)
	if err != nil {
		return err
	}
	if f := inner.attr("from"); f != "" {
		o.senders = append(o.senders, f)
	}
	o.stanza = inner.withChildren(inner.inner)
	return nil
}

// childrenOf returns the children of a stanza as written.
func childrenOf(b []byte) ([]byte, error) {
	s, err := parseStanza(b)
	if err != nil {
		return nil, err
	}
	return s.inner, nil
}

// pidfInfo returns the entity of a PIDF document and its latest timestamp
// (RFC 3863 §4.1.7). A timestamp not in UTC ('Z') is returned in a fixed
// zone so that the caller refuses it (RFC 3923 §6.9).
func pidfInfo(b []byte) (entity string, latest time.Time, err error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth := 0
	inTS := false
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return entity, latest, nil
		}
		if err != nil {
			return "", time.Time{}, fmt.Errorf("smime: PIDF: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return "", time.Time{}, errors.New("smime: PIDF: DTDs are not allowed")
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return "", time.Time{}, errors.New("smime: PIDF nested too deeply")
			}
			if depth == 1 {
				if t.Name.Space != nsPIDF || t.Name.Local != "presence" {
					return "", time.Time{}, fmt.Errorf("smime: PIDF root is {%s}%s", t.Name.Space, t.Name.Local)
				}
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "entity" {
						entity = a.Value
					}
				}
			}
			if t.Name.Space == nsPIDF && t.Name.Local == "timestamp" {
				inTS = true
				text.Reset()
			}
		case xml.CharData:
			if inTS {
				text.Write(t)
			}
		case xml.EndElement:
			depth--
			if inTS {
				inTS = false
				v := strings.TrimSpace(text.String())
				ts, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					continue
				}
				if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
					ts = ts.UTC()
				} else {
					_, off := ts.Zone()
					ts = ts.In(time.FixedZone("", off))
				}
				if latest.IsZero() || ts.After(latest) {
					latest = ts
				}
			}
		}
	}
}

// stampPIDF gives every tuple of a PIDF document the timestamp ts,
// replacing any it has (RFC 3923 §6.9). <timestamp/> is the last child of
// <tuple/> (RFC 3863 §4.1.7), so it goes before each </tuple>, with the
// tuple's prefix.
func stampPIDF(pidf []byte, ts time.Time) ([]byte, error) {
	stamp := ts.UTC().Format(time.RFC3339Nano)
	type edit struct {
		from, to int64 // bytes to replace
		with     string
	}
	var edits []edit
	var prefix string
	var tsStart int64 = -1
	err := guardedTokens(pidf, "PIDF", func(tok xml.Token, off, end int64, depth int) error {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 2 && t.Name.Space == nsPIDF && t.Name.Local == "tuple" {
				prefix = ""
				if p, _, ok := strings.Cut(tagName(pidf[off:end]), ":"); ok {
					prefix = p + ":"
				}
			}
			if depth == 3 && t.Name.Space == nsPIDF && t.Name.Local == "timestamp" {
				tsStart = off
			}
		case xml.EndElement:
			switch {
			case depth == 2 && tsStart >= 0:
				edits = append(edits, edit{tsStart, end, ""})
				tsStart = -1
			case depth == 1 && t.Name.Space == nsPIDF && t.Name.Local == "tuple":
				edits = append(edits, edit{off, off, "<" + prefix + "timestamp>" + stamp + "</" + prefix + "timestamp>"})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	last := int64(0)
	for _, e := range edits {
		b.Write(pidf[last:e.from])
		b.WriteString(e.with)
		last = e.to
	}
	b.Write(pidf[last:])
	return b.Bytes(), nil
}

package node

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"sort"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// Namespaces of the services s2sd answers for its own domains.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"  // XEP-0030
	nsDiscoItems = "http://jabber.org/protocol/disco#items" // XEP-0030
	nsPing       = "urn:xmpp:ping"                          // XEP-0199
	nsVersion    = "jabber:iq:version"                      // XEP-0092
)

// local answers stanzas addressed to the node's own domains: service
// discovery listing the attached components, ping, the software version
// when enabled, and service-unavailable for everything else. Error stanzas
// are never answered (RFC 6120 §8.3.1).
type local struct {
	router  *route.Router
	version func() bool // whether to answer XEP-0092
	release string      // the version answered
	log     *slog.Logger
}

var _ route.Handler = (*local)(nil)

// payload returns the name of the first child element of a stanza.
func payload(s *route.Stanza) (xml.Name, string) {
	d := s.El.Decoder()
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF || err != nil {
			return xml.Name{}, ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				node := ""
				for _, a := range t.Attr {
					if a.Name.Local == "node" {
						node = a.Value
					}
				}
				return t.Name, node
			}
		case xml.EndElement:
			depth--
		}
	}
}

func (l *local) Deliver(ctx context.Context, s *route.Stanza) error {
	if s.IsError() {
		l.log.Debug("error stanza for a local domain", "stanza", s.String())
		return nil
	}
	switch s.Kind {
	case "presence":
		// RFC 6121 §8.5.2.2.1 and §8.5.1: presence for an account or a
		// domain that has none is silently ignored.
		return nil
	case "message":
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if s.Type == "result" {
		return nil
	}
	if s.Type != "get" && s.Type != "set" {
		return stanza.New(stanza.BadRequest, "iq of unknown type")
	}
	if s.To.Localpart() != "" || s.To.Resourcepart() != "" {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	name, node := payload(s)
	if s.Type != "get" {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	var body string
	switch {
	case name.Space == nsPing && name.Local == "ping":
	case name.Space == nsDiscoInfo && name.Local == "query" && node == "":
		body = "<query xmlns='" + nsDiscoInfo + "'><identity category='server' type='im' name='s2sd'/>" +
			"<feature var='" + nsDiscoInfo + "'/><feature var='" + nsDiscoItems + "'/><feature var='" + nsPing + "'/>"
		if l.version() {
			body += "<feature var='" + nsVersion + "'/>"
		}
		body += "</query>"
	case name.Space == nsDiscoItems && name.Local == "query" && node == "":
		comps := l.router.Components()
		sort.Strings(comps)
		body = "<query xmlns='" + nsDiscoItems + "'>"
		for _, c := range comps {
			body += "<item jid='" + string(stanza.AppendEscaped(nil, c)) + "'/>"
		}
		body += "</query>"
	case name.Space == nsVersion && name.Local == "query" && l.version():
		body = "<query xmlns='" + nsVersion + "'><name>s2sd</name><version>" + string(stanza.AppendEscaped(nil, l.release)) + "</version></query>"
	case name.Space == nsDiscoInfo || name.Space == nsDiscoItems:
		return stanza.New(stanza.ItemNotFound, "")
	default:
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	b := []byte("<iq type='result' from='")
	b = stanza.AppendEscaped(b, s.To.String())
	b = append(b, "' to='"...)
	b = stanza.AppendEscaped(b, s.From.String())
	b = append(b, "' id='"...)
	b = stanza.AppendEscaped(b, s.ID)
	b = append(b, "'>"...)
	b = append(b, body...)
	b = append(b, "</iq>"...)
	reply, err := route.New(b, xmlstream.NSServer)
	if err != nil {
		return stanza.New(stanza.InternalServerError, "")
	}
	return l.router.Deliver(ctx, reply)
}

package s2s

import (
	"encoding/xml"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/stream"
)

// features is what a <stream:features/> element offers (RFC 6120 §4.3.2).
type features struct {
	StartTLS         bool
	StartTLSRequired bool
	Mechanisms       []string
	Dialback         bool // urn:xmpp:features:dialback (XEP-0220 §2.1)
	DialbackErrors   bool
	SM               bool // urn:xmpp:sm:3 (XEP-0198)
	Raw              string
}

func (f features) offers(mech string) bool {
	for _, m := range f.Mechanisms {
		if m == mech {
			return true
		}
	}
	return false
}

func parseFeatures(el *xmlstream.Element) (features, error) {
	if el.Space != stream.NS || el.Local != "features" {
		return features{}, stream.Errorf(stream.UnsupportedStanzaType, "expected stream features, got %s", el.Local)
	}
	var v struct {
		StartTLS *struct {
			Required *struct{} `xml:"required"`
		} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
		Mechanisms []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
		Dialback   *struct {
			Errors *struct{} `xml:"errors"`
		} `xml:"urn:xmpp:features:dialback dialback"`
		SM *struct{} `xml:"urn:xmpp:sm:3 sm"`
	}
	if err := el.Unmarshal(&v); err != nil {
		return features{}, stream.New(stream.BadFormat, "bad stream features")
	}
	f := features{Mechanisms: v.Mechanisms, Raw: string(el.Raw), SM: v.SM != nil}
	if v.StartTLS != nil {
		f.StartTLS = true
		f.StartTLSRequired = v.StartTLS.Required != nil
	}
	if v.Dialback != nil {
		f.Dialback = true
		f.DialbackErrors = v.Dialback.Errors != nil
	}
	return f, nil
}

// dbElement is a db:result or db:verify element (XEP-0220 §2.1).
type dbElement struct {
	From, To, ID, Type string
	Key                string
	ErrCond            string
}

func parseDB(el *xmlstream.Element) (dbElement, error) {
	var v struct {
		From  string `xml:"from,attr"`
		To    string `xml:"to,attr"`
		ID    string `xml:"id,attr"`
		Type  string `xml:"type,attr"`
		Key   string `xml:",chardata"`
		Error *struct {
			Inner []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"error"`
	}
	if err := el.Unmarshal(&v); err != nil {
		return dbElement{}, stream.New(stream.BadFormat, "bad dialback element")
	}
	d := dbElement{From: v.From, To: v.To, ID: v.ID, Type: v.Type, Key: v.Key}
	if v.Error != nil && len(v.Error.Inner) > 0 {
		d.ErrCond = v.Error.Inner[0].XMLName.Local
	}
	return d, nil
}

func appendDB(b []byte, kind string, d dbElement) []byte {
	b = append(b, "<db:"...)
	b = append(b, kind...)
	for _, a := range [...][2]string{{"from", d.From}, {"to", d.To}, {"id", d.ID}, {"type", d.Type}} {
		if a[1] == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, a[0]...)
		b = append(b, "='"...)
		b = appendAttr(b, a[1])
		b = append(b, '\'')
	}
	if d.Key == "" && d.ErrCond == "" {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	if d.ErrCond != "" {
		b = append(b, "<error type='cancel'><"...)
		b = append(b, d.ErrCond...)
		b = append(b, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"...)
	} else {
		b = appendAttr(b, d.Key)
	}
	b = append(b, "</db:"...)
	b = append(b, kind...)
	return append(b, '>')
}

func appendAttr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

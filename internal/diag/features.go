package diag

import (
	"encoding/xml"
	"strings"
)

const (
	nsTLS             = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL            = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsDialbackFeature = "urn:xmpp:features:dialback"
)

// maxRaw bounds the stream features kept in a report.
const maxRaw = 4096

// parseFeatures reads a <stream:features/> element as the peer sent it
// (RFC 6120 §4.3.2). The stream prefix is declared on the stream header, not
// on the element, and is not checked.
func parseFeatures(raw string) Features {
	f := Features{Raw: raw, SASLMechanisms: []string{}}
	if len(f.Raw) > maxRaw {
		f.Raw = f.Raw[:maxRaw] + "…"
	}
	var v struct {
		XMLName  xml.Name
		Children []struct {
			XMLName    xml.Name
			Required   *struct{} `xml:"required"`
			Mechanisms []string  `xml:"mechanism"`
			Errors     *struct{} `xml:"errors"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(raw), &v); err != nil {
		f.Error = "unparsable stream features: " + err.Error()
		return f
	}
	if v.XMLName.Local != "features" {
		f.Error = "not stream features: <" + v.XMLName.Local + ">"
		return f
	}
	for _, c := range v.Children {
		switch c.XMLName {
		case xml.Name{Space: nsTLS, Local: "starttls"}:
			f.StartTLS = true
			f.StartTLSRequired = c.Required != nil
		case xml.Name{Space: nsSASL, Local: "mechanisms"}:
			for _, m := range c.Mechanisms {
				if m = strings.TrimSpace(m); m != "" {
					f.SASLMechanisms = append(f.SASLMechanisms, m)
				}
			}
		case xml.Name{Space: nsDialbackFeature, Local: "dialback"}:
			f.Dialback = true
			f.DialbackErrors = c.Errors != nil
		default:
			f.Other = append(f.Other, "{"+c.XMLName.Space+"}"+c.XMLName.Local)
		}
	}
	return f
}

func (f *Features) offers(mech string) bool {
	for _, m := range f.SASLMechanisms {
		if m == mech {
			return true
		}
	}
	return false
}

// summary is a one-line description: "STARTTLS (required), SASL EXTERNAL,
// dialback".
func (f *Features) summary() string {
	if f.Error != "" {
		return f.Error
	}
	var parts []string
	if f.StartTLS {
		if f.StartTLSRequired {
			parts = append(parts, "STARTTLS (required)")
		} else {
			parts = append(parts, "STARTTLS (not required)")
		}
	}
	if len(f.SASLMechanisms) > 0 {
		parts = append(parts, "SASL "+strings.Join(f.SASLMechanisms, " "))
	}
	if f.Dialback {
		if f.DialbackErrors {
			parts = append(parts, "dialback (with errors)")
		} else {
			parts = append(parts, "dialback")
		}
	}
	for _, o := range f.Other {
		if o == "{urn:xmpp:sm:3}sm" {
			o = "stream management (XEP-0198)"
		}
		parts = append(parts, o)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

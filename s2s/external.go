package s2s

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// This file checks a peer certificate's identity for a domain: RFC 6125 §6
// (DNS-ID, SRV-ID), RFC 6120 §13.7.1.4 (XmppAddr) and XEP-0178.

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Object identifiers of the otherName SANs XMPP uses.
var (
	OIDXmppAddr = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} // RFC 6120 §13.7.1.4
	OIDSRVName  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7} // RFC 4985
)

// CertError says why a peer certificate is not valid for a domain.
type CertError struct {
	Domain string
	Reason string
	Err    error
}

func (e *CertError) Error() string {
	s := "s2s: certificate not valid for " + e.Domain + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CertError) Unwrap() error { return e.Err }

// VerifyPeer checks that chain (leaf first) chains to roots (nil means the
// system roots) and names domain as a DNS-ID, an SRV-ID for _xmpp-server or
// _xmpps-server, or an XmppAddr.
func VerifyPeer(chain []*x509.Certificate, roots *x509.CertPool, domain string, now time.Time) error {
	if len(chain) == 0 {
		return &CertError{Domain: domain, Reason: "no certificate presented"}
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if _, err := leaf.Verify(opts); err != nil {
		reason := "chain not trusted"
		var ie x509.CertificateInvalidError
		if errors.As(err, &ie) && ie.Reason == x509.Expired {
			reason = "expired or not yet valid"
		}
		if _, ok := err.(x509.UnknownAuthorityError); ok && selfSigned(leaf) {
			reason = "self-signed"
		}
		return &CertError{Domain: domain, Reason: reason, Err: err}
	}
	if !NamesDomain(leaf, domain) {
		return &CertError{Domain: domain, Reason: fmt.Sprintf("names %s, not %s", certNames(leaf), domain)}
	}
	return nil
}

// NamesDomain reports whether the certificate names domain (RFC 6125 §6.4
// DNS-ID with a left-most wildcard, §6.5 SRV-ID, or an XmppAddr).
func NamesDomain(c *x509.Certificate, domain string) bool {
	d, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil {
		return false
	}
	if c.VerifyHostname(d) == nil {
		return true
	}
	for _, id := range OtherNames(c) {
		switch {
		case id.OID.Equal(OIDXmppAddr):
			if a, err := idna.Lookup.ToASCII(id.Value); err == nil && strings.EqualFold(a, d) {
				return true
			}
		case id.OID.Equal(OIDSRVName):
			// RFC 4985: "_Service.Name".
			for _, svc := range []string{"_xmpp-server.", "_xmpps-server."} {
				if n, ok := strings.CutPrefix(strings.ToLower(id.Value), svc); ok {
					if a, err := idna.Lookup.ToASCII(n); err == nil && strings.EqualFold(a, d) {
						return true
					}
				}
			}
		}
	}
	return false
}

// selfSigned reports whether c signed itself. Unlike CheckSignatureFrom it
// does not require c to be a CA: many self-signed server certificates are
// not.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func certNames(c *x509.Certificate) string {
	names := append([]string(nil), c.DNSNames...)
	for _, id := range OtherNames(c) {
		names = append(names, id.Value)
	}
	if len(names) == 0 {
		return "no domain"
	}
	return strings.Join(names, ", ")
}

// OtherName is an otherName subjectAltName (RFC 5280 §4.2.1.6).
type OtherName struct {
	OID   asn1.ObjectIdentifier
	Value string
}

// OtherNames extracts the otherName SANs with a string value (XmppAddr,
// SRVName), which crypto/x509 does not expose.
func OtherNames(c *x509.Certificate) []OtherName {
	var out []OtherName
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) > 0 {
			continue
		}
		rest := seq.Bytes
		for len(rest) > 0 {
			var gn asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
				break
			}
			if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 {
				continue
			}
			// OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
			var oid asn1.ObjectIdentifier
			vrest, err := asn1.Unmarshal(gn.Bytes, &oid)
			if err != nil {
				continue
			}
			var wrapped asn1.RawValue
			if _, err := asn1.Unmarshal(vrest, &wrapped); err != nil {
				continue
			}
			var s string
			if _, err := asn1.UnmarshalWithParams(wrapped.Bytes, &s, "utf8"); err != nil {
				if _, err := asn1.Unmarshal(wrapped.Bytes, &s); err != nil {
					continue
				}
			}
			out = append(out, OtherName{OID: oid, Value: s})
		}
	}
	return out
}

package diag

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/s2sd/s2sd/s2s"
)

// tlsReport describes a TLS connection and checks the peer's chain as the
// Dialer did (certErr is VerifyPeer's verdict).
func tlsReport(st tls.ConnectionState, certErr error, domain string, now time.Time) *TLS {
	t := &TLS{
		Version:     tls.VersionName(st.Version),
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ALPN:        st.NegotiatedProtocol,
		Valid:       certErr == nil,
		Chain:       []Cert{},
	}
	for _, c := range st.PeerCertificates {
		t.Chain = append(t.Chain, certReport(c))
	}
	if len(st.PeerCertificates) > 0 {
		t.NamesDomain = s2s.NamesDomain(st.PeerCertificates[0], domain)
	}
	if certErr != nil {
		t.Error = certErr.Error()
		t.Problem = certProblem(st.PeerCertificates, certErr, now)
	}
	return t
}

// certProblem classifies VerifyPeer's error (s2s.CertError).
func certProblem(chain []*x509.Certificate, err error, now time.Time) string {
	if len(chain) == 0 {
		return CertNone
	}
	leaf := chain[0]
	var ce *s2s.CertError
	reason := ""
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	var ua x509.UnknownAuthorityError
	switch {
	case reason == "self-signed", errors.As(err, &ua) && isSelfSigned(leaf):
		return CertSelfSigned
	case strings.HasPrefix(reason, "expired"):
		if now.Before(leaf.NotBefore) {
			return CertNotYetValid
		}
		return CertExpired
	case strings.HasPrefix(reason, "names "):
		return CertWrongName
	case errors.As(err, &ua):
		return CertUnknownCA
	}
	return CertUntrusted
}

func certReport(c *x509.Certificate) Cert {
	sum := sha256.Sum256(c.Raw)
	r := Cert{
		Subject:    c.Subject.String(),
		Issuer:     c.Issuer.String(),
		DNSNames:   append([]string{}, c.DNSNames...),
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		SelfSigned: isSelfSigned(c),
		IsCA:       c.IsCA,
		SHA256:     hex.EncodeToString(sum[:]),
		SANs:       []string{},
	}
	for _, n := range c.DNSNames {
		r.SANs = append(r.SANs, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		r.SANs = append(r.SANs, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		r.SANs = append(r.SANs, "email:"+e)
	}
	for _, u := range c.URIs {
		r.SANs = append(r.SANs, "URI:"+u.String())
	}
	for _, on := range otherNames(c) {
		r.SANs = append(r.SANs, on)
	}
	return r
}

// isSelfSigned reports whether c is signed by its own key. Unlike
// c.CheckSignatureFrom(c), it does not require c to be a CA: many
// self-signed server certificates are not.
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidXmppAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} // RFC 6120 §13.7.1.4
	oidSRVName        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7} // RFC 4985
)

// otherNames returns the XmppAddr and SRVName otherName SANs, which
// crypto/x509 does not expose, as "xmppAddr:VALUE" and "SRVName:VALUE".
func otherNames(c *x509.Certificate) []string {
	var out []string
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
			switch {
			case oid.Equal(oidXmppAddr):
				out = append(out, "xmppAddr:"+s)
			case oid.Equal(oidSRVName):
				out = append(out, "SRVName:"+s)
			default:
				out = append(out, "otherName:"+oid.String()+":"+s)
			}
		}
	}
	return out
}

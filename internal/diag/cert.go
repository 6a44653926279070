package diag

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
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
	case strings.HasPrefix(reason, "matches none of the"):
		return CertDANE
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

// otherNames returns the XmppAddr and SRVName otherName SANs, which
// crypto/x509 does not expose, as "xmppAddr:VALUE" and "SRVName:VALUE".
func otherNames(c *x509.Certificate) []string {
	var out []string
	for _, on := range s2s.OtherNames(c) {
		switch {
		case on.OID.Equal(s2s.OIDXmppAddr):
			out = append(out, "xmppAddr:"+on.Value)
		case on.OID.Equal(s2s.OIDSRVName):
			out = append(out, "SRVName:"+on.Value)
		default:
			out = append(out, "otherName:"+on.OID.String()+":"+on.Value)
		}
	}
	return out
}

package s2s

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DANE (RFC 6698, RFC 7671, and RFC 7673 for SRV targets)
//
// With Dialer.DANE and a Resolver that trusts DNSSEC (Resolver.TrustAD), a
// target whose SRV record and addresses were validated is looked up for
// TLSA records at _port._tcp.target. Validated records that can be used
// decide the peer's certificate: one that matches one of them is verified
// for the remote domain (as a CA-signed one would be: SASL EXTERNAL, and
// the require-valid-cert policy, accept it); one that matches none fails
// the attempt, and the next target is tried. Without such records,
// certificates are checked as before (RFC 6125 against Roots).

// daneMatch reports whether rec's association data is cert's (RFC 6698
// §2.1: the whole certificate or its SubjectPublicKeyInfo, in full or
// hashed with SHA-256 or SHA-512).
func daneMatch(rec *dns.TLSA, cert *x509.Certificate) bool {
	want, err := dns.CertificateToDANE(rec.Selector, rec.MatchingType, cert)
	return err == nil && strings.EqualFold(want, rec.Certificate)
}

// verifyDANE checks the peer's chain against usable TLSA records: nil when
// one of them matches (RFC 7671 §5 for each usage). domain is the remote
// domain and host the SRV target, the two names a certificate may carry
// (RFC 7673 §4.1).
func verifyDANE(chain []*x509.Certificate, recs []*dns.TLSA, roots *x509.CertPool, domain, host string, now time.Time) error {
	if len(chain) == 0 {
		return &CertError{Domain: domain, Reason: "no certificate presented"}
	}
	leaf := chain[0]
	named := NamesDomain(leaf, domain) || host != "" && NamesDomain(leaf, host)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	var pkix [][]*x509.Certificate // verified against roots, lazily
	pkixDone := false
	for _, rec := range recs {
		switch rec.Usage {
		case 3: // DANE-EE: the peer's own key; names and dates are not checked (RFC 7671 §5.1).
			if daneMatch(rec, leaf) {
				return nil
			}
		case 2: // DANE-TA: a trust anchor sent in the chain (RFC 7671 §5.2).
			if !named {
				continue
			}
			for _, ta := range chain[1:] {
				if !daneMatch(rec, ta) {
					continue
				}
				anchor := x509.NewCertPool()
				anchor.AddCert(ta)
				opts := x509.VerifyOptions{Roots: anchor, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
				if _, err := leaf.Verify(opts); err == nil {
					return nil
				}
			}
		case 0, 1: // PKIX-TA, PKIX-EE: a valid chain as well (RFC 6698 §2.1.1).
			if !named {
				continue
			}
			if !pkixDone {
				pkixDone = true
				opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
				pkix, _ = leaf.Verify(opts)
			}
			for _, ch := range pkix {
				certs := ch[:1]
				if rec.Usage == 0 {
					certs = ch[1:]
				}
				for _, c := range certs {
					if daneMatch(rec, c) {
						return nil
					}
				}
			}
		}
	}
	return &CertError{Domain: domain, Reason: fmt.Sprintf("matches none of the %d TLSA records of %s", len(recs), host)}
}

// verifyByDANE checks an inbound peer's chain against the validated TLSA
// records of domain's targets, where the peer claims to be reachable, as
// outbound streams do (Prosody's mod_s2s_auth_dane_in does the same). It
// fails unless DANE is on and a record matches.
func (d *Dialer) verifyByDANE(chain []*x509.Certificate, domain string) error {
	if d == nil || !d.DANE || len(chain) == 0 {
		return &CertError{Domain: domain, Reason: "not verified with DANE"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), daneLookupTimeout)
	defer cancel()
	r := d.resolver()
	targets, err := r.LookupTargets(ctx, domain)
	if err != nil {
		return &CertError{Domain: domain, Reason: "no DANE: targets not found", Err: err}
	}
	for _, t := range targets {
		if !t.Secure {
			continue
		}
		_, secure, err := r.lookupAddrsSecure(ctx, t.Host)
		if err != nil {
			continue
		}
		recs, err := r.tlsaFor(ctx, t, secure)
		if err != nil || len(recs) == 0 {
			continue
		}
		if verifyDANE(chain, recs, d.live().roots, domain, t.Host, time.Now()) == nil {
			return nil
		}
	}
	return &CertError{Domain: domain, Reason: "no validated TLSA record matches"}
}

// daneLookupTimeout bounds the lookups that verify an inbound peer with
// DANE.
const daneLookupTimeout = 5 * time.Second

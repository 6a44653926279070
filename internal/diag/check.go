package diag

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/s2sd/s2sd/s2s"
)

// expirySoon is how close to its end a valid certificate is reported.
const expirySoon = 14 * 24 * time.Hour

const refuse = "peers requiring valid certificates will refuse"

// check fills Problems and OK from the rest of the report.
func (r *Report) check(d *s2s.Dialer) {
	seen := map[string]bool{}
	add := func(sev, format string, args ...any) {
		text := fmt.Sprintf(format, args...)
		if seen[text] {
			return
		}
		seen[text] = true
		r.Problems = append(r.Problems, Problem{Severity: sev, Text: text})
	}
	// A step that failed is an error when nothing else worked, a warning
	// when another target did.
	fail := SevError
	if r.Authenticated {
		fail = SevWarning
	}

	dns := &r.DNS
	switch {
	case dns.NoService:
		add(SevError, `SRV target ".": %s says it offers no server-to-server service, so nobody can federate with it`, r.Domain)
	case dns.Fallback:
		add(SevWarning, "no SRV records: falling back to %s:%d", strings.TrimSuffix(dns.Name, "."), s2s.DefaultPort)
	case dns.Error != "":
		add(fail, "DNS: %s", dns.Error)
	}
	for _, s := range dns.SRV {
		if s.Error != "" && s.Error != dns.Error {
			add(SevWarning, "SRV lookup of %s failed: %s", s.Name, s.Error)
		}
	}
	for _, h := range dns.Hosts {
		if h.Error != "" {
			add(fail, "target %s has no address: %s", h.Name, h.Error)
		}
	}

	allow13 := d.TLSConfig == nil || d.TLSConfig.MaxVersion == 0 || d.TLSConfig.MaxVersion >= tls.VersionTLS13
	now := time.Now()
	for i := range r.Attempts {
		a := &r.Attempts[i]
		if !a.Connected {
			add(fail, "cannot connect to %s (%s): %s", a.Addr, a.Target, a.Error)
			continue
		}
		if f := a.stage(BeforeTLS); f != nil && !a.Target.DirectTLS {
			switch {
			case f.Error != "":
				add(fail, "%s: %s", a.Addr, f.Error)
			case !f.StartTLS:
				add(SevError, "%s does not offer STARTTLS: streams to it cannot be encrypted", a.Addr)
			case !f.StartTLSRequired:
				add(SevWarning, "STARTTLS is offered but not required: %s accepts unencrypted streams", a.Addr)
			}
		}
		if t := a.TLS; t != nil {
			if allow13 && t.Version != "" && t.Version != tls.VersionName(tls.VersionTLS13) {
				add(SevWarning, "%s only: %s did not negotiate TLS 1.3", t.Version, a.Addr)
			}
			r.checkCert(t, now, add)
		}
		if au := a.Auth; au != nil && au.Result != AuthValid {
			add(fail, "%s", au.text())
		} else if a.Error != "" {
			add(fail, "stream to %s failed (%s): %s", a.Addr, stepName(a.FailedAt), a.Error)
		}
		// Our certificate: a remote whose own certificate we trust and
		// that offers no SASL EXTERNAL did not accept ours.
		if f := a.stage(AfterTLS); f != nil && a.TLS != nil && a.TLS.Valid && !f.offers("EXTERNAL") && a.Auth != nil && a.Auth.Method == MethodDialback {
			add(SevWarning, "the remote does not offer SASL EXTERNAL: it did not accept our certificate for %s (or lacks EXTERNAL), so dialback was used", r.Local)
		}
	}
	if !r.Authenticated {
		hasErr := false
		for _, p := range r.Problems {
			hasErr = hasErr || p.Severity == SevError
		}
		if !hasErr {
			add(SevError, "no stream from %s to %s: %s", r.Local, r.Domain, r.Error)
		}
	}
	r.OK = len(r.Problems) == 0
}

// checkCert adds the problems of the peer's certificate.
func (r *Report) checkCert(t *TLS, now time.Time, add func(sev, format string, args ...any)) {
	if len(t.Chain) == 0 {
		add(SevWarning, "the server presented no certificate: %s", refuse)
		return
	}
	leaf := &t.Chain[0]
	if !t.Valid {
		switch {
		case t.Problem == CertDANE:
			add(SevError, "certificate matches none of the TLSA records published for the target: %s", t.Error)
		case leaf.SelfSigned || t.Problem == CertSelfSigned:
			add(SevWarning, "certificate is self-signed: %s", refuse)
		case t.Problem == CertUnknownCA:
			add(SevWarning, "certificate is issued by an unknown CA (%s): %s", leaf.Issuer, refuse)
		case t.Problem == CertUntrusted:
			add(SevWarning, "certificate is not trusted (%s): %s", t.Error, refuse)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		add(SevWarning, "certificate expired on %s: %s", fmtTime(leaf.NotAfter), refuse)
	case now.Before(leaf.NotBefore):
		add(SevWarning, "certificate is not valid before %s: %s", fmtTime(leaf.NotBefore), refuse)
	case t.Valid && leaf.NotAfter.Sub(now) < expirySoon:
		add(SevWarning, "certificate expires soon, on %s", fmtTime(leaf.NotAfter))
	}
	if !t.NamesDomain {
		names := strings.Join(leaf.SANs, ", ")
		if names == "" {
			names = "no name; subject " + leaf.Subject
		}
		add(SevWarning, "certificate does not name %s (it names %s): %s", r.Domain, names, refuse)
	}
}

// stage returns the stream features offered at a stage, or nil.
func (a *Attempt) stage(s string) *Features {
	for i := range a.Features {
		if a.Features[i].Stage == s {
			return &a.Features[i]
		}
	}
	return nil
}

// text is the one-line account of a failed authentication.
func (au *Auth) text() string {
	s := au.Method + ": " + au.Result
	if au.Condition != "" {
		s += " (" + au.Condition + ")"
	}
	if au.Hint != "" {
		return au.Method + ": " + au.Hint
	}
	if au.Error != "" {
		s += ": " + au.Error
	}
	return s
}

func stepName(step string) string {
	switch step {
	case stepConnect:
		return "connecting"
	case stepTLS:
		return "during TLS"
	case stepAuth:
		return "during authentication"
	case stepStream:
		return "opening the stream"
	}
	return "unknown step"
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

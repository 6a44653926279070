package diag

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s2sd/s2sd/s2s"
)

// Run diagnoses federation from local to domain: it looks the domain up with
// the Dialer's Resolver (s2s.Resolver.Diagnose), then dials it as the daemon
// would, with a shallow copy of d whose Trace records each step, closes the
// stream it gets, and returns what it found. It never fails: every error is
// in the Report. A nil d is a zero Dialer.
//
// d is not changed; a Trace it has is not called. Dialback succeeds only if
// the s2sd serving local is running and uses d's secret (see the package
// documentation).
func Run(ctx context.Context, d *s2s.Dialer, local, domain string) *Report {
	if d == nil {
		d = &s2s.Dialer{}
	}
	start := time.Now()
	r := &Report{
		Local:    local,
		Domain:   domain,
		Start:    start.UTC().Round(0),
		Targets:  []Target{},
		Attempts: []Attempt{},
		Problems: []Problem{},
	}
	res := d.Resolver
	if res == nil {
		res = &s2s.Resolver{}
	}
	r.DNS = lookup(ctx, res, domain)

	t := &tracer{r: r, domain: domain, local: local, cur: -1, lastAt: time.Now(), orig: d}
	dc := *d
	dc.Trace = t.trace()
	dc.NetDialer = t.netDialer(d.NetDialer)
	c, err := dc.DialContext(ctx, local, domain)
	t.done(c, err)
	if c != nil {
		c.Close()
	}
	r.Duration = Duration(time.Since(start))
	r.check(d)
	return r
}

// lookup reports the DNS records of domain.
func lookup(ctx context.Context, res *s2s.Resolver, domain string) DNS {
	out := DNS{Name: domain, SRV: []SRV{}, Hosts: []Host{}}
	rep, err := res.Diagnose(ctx, domain)
	if rep == nil {
		out.Error = errString(err)
		return out
	}
	out.Name = rep.Domain
	for _, s := range rep.SRV {
		sr := SRV{Name: s.Name, Service: s.Service, Records: []SRVRecord{}, NoService: s.NoService, Error: errString(s.Err), DNSSEC: s.Secure}
		for _, rec := range s.Records {
			target := rec.Host
			if target != "." {
				target += "."
			}
			sr.Records = append(sr.Records, SRVRecord{Priority: rec.Priority, Weight: rec.Weight, Port: rec.Port, Target: target})
		}
		out.SRV = append(out.SRV, sr)
	}
	switch {
	case rep.Err != nil:
		out.Error = rep.Err.Error()
		out.NoService = errors.Is(rep.Err, s2s.ErrNoService)
	case len(rep.SRV) > 0 && len(rep.Targets) > 0 && rep.Targets[0].Service == "":
		out.Fallback = true
	}
	for _, tr := range rep.TLSA {
		tl := TLSA{Name: fmt.Sprintf("_%d._tcp.%s.", tr.Port, tr.Host), Records: []string{}, Error: errString(tr.Err)}
		for _, rec := range tr.Records {
			tl.Records = append(tl.Records, fmt.Sprintf("%d %d %d %s", rec.Usage, rec.Selector, rec.MatchingType, strings.ToLower(rec.Certificate)))
		}
		out.TLSA = append(out.TLSA, tl)
	}
	for _, h := range rep.Addrs {
		hr := Host{Name: h.Host, Addrs: []string{}, Error: errString(h.Err), DNSSEC: h.Secure}
		for _, a := range h.Addrs {
			hr.Addrs = append(hr.Addrs, a.String())
		}
		out.Hosts = append(out.Hosts, hr)
	}
	if err != nil && out.Error == "" {
		out.Error = err.Error()
	}
	return out
}

// Steps of a stream, Attempt.FailedAt.
const (
	stepConnect = "connect"
	stepStream  = "stream"
	stepTLS     = "tls"
	stepAuth    = "auth"
)

// tracer records a dial through s2s.Trace. Its hooks are called
// synchronously from the dial; they only record, under mu, and never block.
type tracer struct {
	mu            sync.Mutex
	r             *Report
	local, domain string
	orig          *s2s.Dialer // the caller's Dialer: Roots, Policy

	cur      int       // index in r.Attempts of the attempt under way, or -1
	socketAt time.Time // when the dialer made the last socket
	lastAt   time.Time // when the last step ended
	startAt  time.Time // when the current attempt started
	secure   bool      // TLS is up on the current attempt
	sasl     bool      // SASL EXTERNAL succeeded on it
	step     string    // the step under way
	dbResult string    // the db:result type received
}

func (t *tracer) trace() *s2s.Trace {
	return &s2s.Trace{
		Targets:   t.targets,
		Connect:   t.connect,
		TLS:       t.tls,
		Features:  t.features,
		Auth:      t.auth,
		Dialback:  t.dialback,
		Negotiate: t.negotiate,
	}
}

// netDialer returns a copy of nd (nil: a zero net.Dialer) that notes when
// each socket is made, just before it connects, to time the connection.
func (t *tracer) netDialer(nd *net.Dialer) *net.Dialer {
	var c net.Dialer
	if nd != nil {
		c = *nd
	}
	ctl, ctlCtx := c.Control, c.ControlContext
	c.Control = nil
	c.ControlContext = func(ctx context.Context, network, address string, rc syscall.RawConn) error {
		t.mu.Lock()
		t.socketAt = time.Now()
		t.mu.Unlock()
		switch {
		case ctlCtx != nil:
			return ctlCtx(ctx, network, address, rc)
		case ctl != nil:
			return ctl(network, address, rc)
		}
		return nil
	}
	return &c
}

func target(t s2s.Target) Target {
	return Target{Host: t.Host, Port: t.Port, Service: t.Service, DirectTLS: t.DirectTLS}
}

func (t *tracer) targets(ts []s2s.Target, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range ts {
		t.r.Targets = append(t.r.Targets, target(x))
	}
	t.lastAt = time.Now()
}

// attempt returns the attempt under way, or nil; t.mu is held.
func (t *tracer) attempt() *Attempt {
	if t.cur < 0 {
		return nil
	}
	return &t.r.Attempts[t.cur]
}

// finish ends the attempt under way; t.mu is held.
func (t *tracer) finish(err error, now time.Time) {
	a := t.attempt()
	if a == nil {
		return
	}
	a.Time = Duration(now.Sub(t.startAt))
	if err == nil {
		a.Authenticated = true
	} else {
		a.Error = err.Error()
		a.FailedAt = t.step
		if a.TLS != nil && a.TLS.Problem == CertDANE {
			// Refused before authentication began.
			a.FailedAt = stepTLS
		}
		if a.FailedAt == stepAuth && a.Auth == nil && t.expectDialback(a) {
			// The stream ended while we waited for the db:result.
			a.Auth = &Auth{Method: MethodDialback, Result: AuthError, Error: err.Error(), Hint: dialbackHint(AuthError, t.local)}
		}
	}
	t.cur = -1
	t.lastAt = now
}

// expectDialback reports whether the Dialer went on with dialback after
// the last stream features of a; t.mu is held.
func (t *tracer) expectDialback(a *Attempt) bool {
	if len(a.Features) == 0 {
		return false
	}
	f := &a.Features[len(a.Features)-1]
	if !f.Dialback || f.Stage == AfterSASL {
		return false
	}
	valid := a.TLS != nil && a.TLS.Valid
	if valid && f.offers("EXTERNAL") {
		return false
	}
	if t.orig.Policy != nil && t.orig.Policy(t.domain) == s2s.RequireValidCert && !valid {
		return false
	}
	return true
}

func (t *tracer) connect(x s2s.Target, ap netip.AddrPort, err error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finish(errors.New("no result reported"), now)
	start := t.socketAt
	if start.IsZero() || start.Before(t.lastAt) {
		start = t.lastAt
	}
	t.socketAt = time.Time{}
	a := Attempt{
		Target:      target(x),
		Addr:        ap.String(),
		Connected:   err == nil,
		ConnectTime: Duration(now.Sub(start)),
	}
	if err != nil {
		a.Error = err.Error()
		a.FailedAt = stepConnect
		a.Time = a.ConnectTime
		t.r.Attempts = append(t.r.Attempts, a)
		t.lastAt = now
		return
	}
	t.r.Attempts = append(t.r.Attempts, a)
	t.cur = len(t.r.Attempts) - 1
	t.startAt = start
	t.secure, t.sasl, t.dbResult = x.DirectTLS, false, ""
	t.step = stepStream
	if x.DirectTLS {
		t.step = stepTLS
	}
}

func (t *tracer) features(raw string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.attempt()
	if a == nil {
		return
	}
	f := parseFeatures(raw)
	switch {
	case t.sasl:
		f.Stage = AfterSASL
	case t.secure:
		f.Stage = AfterTLS
	default:
		f.Stage = BeforeTLS
	}
	a.Features = append(a.Features, f)
	if !t.secure && f.StartTLS {
		// The Dialer starts TLS, then restarts the stream.
		t.secure = true
		t.step = stepTLS
		return
	}
	t.step = stepAuth
}

func (t *tracer) tls(st tls.ConnectionState, certErr error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.attempt()
	if a == nil {
		return
	}
	a.TLS = tlsReport(st, certErr, t.domain, now)
	a.TLS.Direct = a.Target.DirectTLS
	name := fmt.Sprintf("_%d._tcp.%s.", a.Target.Port, a.Target.Host)
	for _, tl := range t.r.DNS.TLSA {
		if tl.Name == name && len(tl.Records) > 0 {
			a.TLS.DANE = true
		}
	}
}

func (t *tracer) dialback(result string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dbResult = result
}

func (t *tracer) auth(method string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.attempt()
	if a == nil {
		return
	}
	au := &Auth{Method: method, Result: AuthValid, Error: errString(err)}
	switch method {
	case MethodSASLExternal:
		switch {
		case err == nil:
			t.sasl = true
		case strings.Contains(err.Error(), "SASL EXTERNAL failed"):
			// The peer answered <failure/>.
			au.Result = AuthInvalid
			au.Condition = saslCondition(err.Error())
			au.Hint = fmt.Sprintf("the remote refused our certificate for %s: it must name %s and chain to a CA the remote trusts", t.local, t.local)
		default:
			au.Result = AuthError
		}
	default:
		if t.dbResult != "" {
			au.Result = t.dbResult
		} else if err != nil {
			au.Result = AuthError
		}
		if err != nil {
			if _, cond, ok := strings.Cut(err.Error(), "dialback error: "); ok {
				au.Condition = cond
			}
			if au.Result == AuthValid {
				au.Result = AuthError
			}
		}
		au.Hint = dialbackHint(au.Result, t.local)
	}
	a.Auth = au
}

func (t *tracer) negotiate(err error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finish(err, now)
}

// done records the outcome of the dial.
func (t *tracer) done(c *s2s.Conn, err error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur >= 0 {
		cause := err
		var de *s2s.DialError
		if errors.As(err, &de) {
			cause = de.Err
		}
		if cause == nil {
			cause = errors.New("no result reported")
		}
		if c != nil {
			cause = nil
		}
		t.finish(cause, now)
	}
	if err != nil || c == nil {
		t.r.Error = errString(err)
		return
	}
	t.r.Authenticated = true
	t.r.Method = c.AuthMethod()
	for i := len(t.r.Attempts) - 1; i >= 0; i-- {
		a := &t.r.Attempts[i]
		if !a.Authenticated {
			continue
		}
		a.StreamID = c.ID()
		if st, ok := c.TLSState(); ok && a.TLS == nil {
			a.TLS = tlsReport(st, s2s.VerifyPeer(st.PeerCertificates, t.orig.Roots, t.domain, now), t.domain, now)
			a.TLS.Direct = a.Target.DirectTLS
		}
		break
	}
}

// dialbackHint says what to check after a dialback result.
func dialbackHint(result, local string) string {
	switch result {
	case AuthInvalid:
		return fmt.Sprintf("the remote checked our key with the authoritative server for %s, which said it is invalid — does the s2sd serving %s use the same configuration (dialback secret) as this diag?", local, local)
	case AuthError:
		return fmt.Sprintf("the remote could not verify our key — is s2sd running for %s and reachable?", local)
	}
	return ""
}

// saslCondition finds the condition in "SASL EXTERNAL failed: <failure
// xmlns=...><not-authorized/></failure>".
func saslCondition(s string) string {
	_, raw, ok := strings.Cut(s, "<failure")
	if !ok {
		return ""
	}
	_, raw, ok = strings.Cut(raw, ">")
	if !ok {
		return ""
	}
	raw = strings.TrimSpace(raw)
	if !strings.HasPrefix(raw, "<") || strings.HasPrefix(raw, "</") {
		return ""
	}
	name := raw[1:]
	if i := strings.IndexAny(name, " />\t\n"); i >= 0 {
		name = name[:i]
	}
	return name
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

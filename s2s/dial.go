package s2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/stanza"
	"github.com/s2sd/s2sd/stream"
)

// Dialer opens authenticated outbound streams to remote domains: it
// resolves them (RFC 6120 §3.2, XEP-0368), connects to each target in turn,
// negotiates STARTTLS or direct TLS, then authenticates with SASL EXTERNAL
// (RFC 6120 §6, XEP-0178) or Server Dialback (XEP-0220) as Policy allows.
// The zero value is usable but has no certificate to present.
type Dialer struct {
	// Resolver finds the targets; nil means a Resolver on /etc/resolv.conf.
	Resolver *Resolver
	// AttemptTimeout bounds each TCP connection attempt (default 10s).
	AttemptTimeout time.Duration
	// NegotiationTimeout bounds a whole negotiation (default 30s), counted
	// from the connect.
	NegotiationTimeout time.Duration
	// WriteTimeout bounds each write on a stream (default 30s): a peer
	// that stops reading for that long loses the stream.
	WriteTimeout time.Duration
	// TLSConfig is the base TLS configuration; it is cloned. Server name,
	// ALPN and verification are set per stream.
	TLSConfig *tls.Config
	// GetCertificate returns our certificate for a local domain, presented
	// as the TLS client certificate.
	GetCertificate func(domain string) (*tls.Certificate, error)
	// Roots verify peer certificates; nil means the system roots.
	Roots *x509.CertPool
	// Policy says how each remote domain may authenticate.
	Policy PolicyFunc
	// Secret is the dialback secret (XEP-0185); it must be the Server's.
	Secret []byte
	// Limits bound what the peer may send.
	Limits xmlstream.Limits
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Trace, when set, is told of each step (for s2sd diag).
	Trace *Trace
	// NetDialer makes TCP connections (nil means a zero net.Dialer).
	NetDialer *net.Dialer
	// DisableSM turns off XEP-0198 acknowledgements on outbound streams.
	DisableSM bool
	// DANE checks peer certificates against validated TLSA records where
	// the Resolver trusts DNSSEC (Resolver.TrustAD; see dane.go): a match
	// verifies the certificate, a mismatch fails the attempt.
	DANE bool
	// Observe, when set, is told how long each resolution ("dns") and each
	// successful connection and negotiation ("connect") took (metrics).
	Observe func(phase string, d time.Duration)
}

// Trace receives the steps of a dial. Any field may be nil.
type Trace struct {
	Targets   func(targets []Target, err error)
	Connect   func(t Target, addr netip.AddrPort, err error)
	TLS       func(state tls.ConnectionState, certErr error)
	Features  func(raw string)
	Auth      func(method string, err error)
	Dialback  func(result string)
	Negotiate func(err error)
}

// DialError says why a remote domain could not be reached, and which stanza
// error its queued stanzas bounce with.
type DialError struct {
	Domain    string
	Condition stanza.Condition // remote-server-not-found or remote-server-timeout
	Err       error
	// Permanent is true when retrying cannot help soon (no such domain, no
	// service).
	Permanent bool
}

// Error says "s2s: DOMAIN: cause", the cause without its own "s2s: ".
func (e *DialError) Error() string {
	return "s2s: " + e.Domain + ": " + strings.TrimPrefix(e.Err.Error(), "s2s: ")
}
func (e *DialError) Unwrap() error { return e.Err }

// dialerMu guards the fields of every Dialer that Update may change while
// the Dialer is in use. One lock for all Dialers keeps Dialer a plain
// struct that callers may copy; it is taken once per dial, and Update is
// rare (a configuration reload).
var dialerMu sync.RWMutex

// dialerLive are the fields Update may change, as one dial reads them.
type dialerLive struct {
	roots              *x509.CertPool
	negotiation, write time.Duration
	limits             xmlstream.Limits
}

func (d *Dialer) live() dialerLive {
	dialerMu.RLock()
	defer dialerMu.RUnlock()
	return dialerLive{roots: d.Roots, negotiation: d.NegotiationTimeout, write: d.WriteTimeout, limits: d.Limits}
}

// Update changes a Dialer that may be in use: f may set Roots,
// NegotiationTimeout, WriteTimeout and Limits, which dials that start
// afterwards use; streams already up keep what they started with. Other
// fields must not change once the Dialer is in use.
func (d *Dialer) Update(f func(d *Dialer)) {
	dialerMu.Lock()
	defer dialerMu.Unlock()
	f(d)
}

func (d *Dialer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

func (d *Dialer) resolver() *Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	return defaultResolver
}

var defaultResolver = &Resolver{}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

type purpose uint8

const (
	forStanzas purpose = iota
	forVerify
)

// DialContext returns an outbound stream from local to remote, authenticated
// and ready for stanzas.
func (d *Dialer) DialContext(ctx context.Context, local, remote string) (*Conn, error) {
	return d.dial(ctx, local, remote, forStanzas)
}

// Verify asks the authoritative server of remote whether key is the
// dialback key it issued for a stream from remote to local with stream ID id
// (XEP-0220 §2.3). The server is found through DNS, never through the
// connection the key arrived on.
func (d *Dialer) Verify(ctx context.Context, local, remote, id, key string) (bool, error) {
	c, err := d.dial(ctx, local, remote, forVerify)
	if err != nil {
		return false, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, durOr(d.live().negotiation, defaultNegotiation))
	defer cancel()
	req := appendDB(nil, "verify", dbElement{From: local, To: remote, ID: id, Key: key})
	if err := c.write(req); err != nil {
		return false, err
	}
	for {
		el, err := c.next(ctx)
		if err != nil {
			return false, err
		}
		if el.Space != nsDialback || el.Local != "verify" {
			continue
		}
		v, err := parseDB(el)
		if err != nil {
			return false, err
		}
		if v.ID != id || v.From != remote || v.To != local {
			continue
		}
		switch v.Type {
		case "valid":
			return true, nil
		case "invalid":
			return false, nil
		}
		return false, fmt.Errorf("s2s: dialback verification error: %s", v.ErrCond)
	}
}

func (d *Dialer) dial(ctx context.Context, local, remote string, p purpose) (*Conn, error) {
	log := d.logger().With("local", local, "remote", remote, "dir", "out")
	t0 := time.Now()
	targets, err := d.resolver().LookupTargets(ctx, remote)
	if d.Observe != nil {
		d.Observe("dns", time.Since(t0))
	}
	if d.Trace != nil && d.Trace.Targets != nil {
		d.Trace.Targets(targets, err)
	}
	if err != nil {
		var de *DNSError
		perm := errors.Is(err, ErrNoService) || errors.Is(err, ErrNotFound) || errors.As(err, &de) && de.Rcode == 3
		return nil, &DialError{Domain: remote, Condition: stanza.RemoteServerNotFound, Err: err, Permanent: perm}
	}
	var last error
	cond := stanza.RemoteServerNotFound
	// DNS said of every target that it has no address (no such name, or
	// no A/AAAA records): retrying soon cannot help, unlike a SERVFAIL or
	// a timeout.
	noAddress := true
	for _, t := range targets {
		addrs, secure, err := d.resolver().lookupAddrsSecure(ctx, t.Host)
		if err != nil {
			log.Debug("target has no address", "target", t.String(), "err", err)
			last = err
			noAddress = noAddress && errors.Is(err, ErrNotFound)
			continue
		}
		noAddress = false
		var tlsa []*dns.TLSA
		if d.DANE {
			// A failed query may hide records: the target is not used.
			if tlsa, err = d.resolver().tlsaFor(ctx, t, secure); err != nil {
				log.Info("TLSA lookup failed; skipping the target", "target", t.String(), "err", err)
				last = err
				continue
			}
		}
		for _, a := range addrs {
			ap := netip.AddrPortFrom(a, t.Port)
			t1 := time.Now()
			c, err := d.attempt(ctx, local, remote, t, ap, p, log, tlsa)
			if err == nil {
				if d.Observe != nil {
					d.Observe("connect", time.Since(t1))
				}
				return c, nil
			}
			last = err
			if ctx.Err() != nil {
				return nil, &DialError{Domain: remote, Condition: stanza.RemoteServerTimeout, Err: err}
			}
			var ne net.Error
			if !(errors.As(err, &ne) && !ne.Timeout()) && !errors.Is(err, errConnect) {
				// Connected, then failed: the server exists but would not
				// talk to us.
				cond = stanza.RemoteServerTimeout
			}
			log.Info("connection attempt failed", "target", t.String(), "addr", ap.String(), "err", err)
		}
	}
	if last == nil {
		last = errors.New("no address to connect to")
	}
	return nil, &DialError{Domain: remote, Condition: cond, Err: last, Permanent: noAddress && len(targets) > 0}
}

var errConnect = errors.New("connect failed")

type connectError struct{ err error }

func (e connectError) Error() string { return e.err.Error() }
func (e connectError) Is(t error) bool {
	return t == errConnect
}
func (e connectError) Unwrap() error { return e.err }

func (d *Dialer) tlsConfig(local, remote string, direct bool) *tls.Config {
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = remote
	// Verification is ours (VerifyPeer): the policy decides what an
	// unverifiable certificate means.
	cfg.InsecureSkipVerify = true
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	// Full-size records: streams carry many stanzas back to back.
	cfg.DynamicRecordSizingDisabled = true
	if direct {
		cfg.NextProtos = []string{alpnXMPPServer}
	}
	if d.GetCertificate != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := d.GetCertificate(local)
			if err != nil || c == nil {
				return &tls.Certificate{}, nil
			}
			return c, nil
		}
	}
	return cfg
}

func (d *Dialer) attempt(ctx context.Context, local, remote string, t Target, ap netip.AddrPort, p purpose, log *slog.Logger, tlsa []*dns.TLSA) (*Conn, error) {
	nd := d.NetDialer
	if nd == nil {
		nd = &net.Dialer{}
	}
	actx, cancel := context.WithTimeout(ctx, durOr(d.AttemptTimeout, 10*time.Second))
	nc, err := nd.DialContext(actx, "tcp", ap.String())
	cancel()
	if d.Trace != nil && d.Trace.Connect != nil {
		d.Trace.Connect(t, ap, err)
	}
	if err != nil {
		return nil, connectError{err}
	}
	live := d.live()
	raw := newTimedConn(nc, live.write)
	clk := newClock(raw, live.negotiation, 0)
	clk.outbound = true
	ctx, cancel = context.WithDeadline(ctx, clk.negotiationDeadline())
	defer cancel()
	nc = raw
	if t.DirectTLS {
		tc := tls.Client(spill(nc), d.tlsConfig(local, remote, true))
		if err := tc.HandshakeContext(ctx); err != nil {
			clk.stop()
			nc.Close()
			err = fmt.Errorf("TLS handshake: %w", err)
			if d.Trace != nil && d.Trace.Negotiate != nil {
				d.Trace.Negotiate(err)
			}
			return nil, err
		}
		nc = tc
	}
	c := newConn(nc, raw, clk, live.limits, log)
	c.local, c.remote = local, remote
	c.tlsa, c.tlsaHost = tlsa, t.Host
	err = d.negotiate(ctx, c, p)
	if d.Trace != nil && d.Trace.Negotiate != nil {
		d.Trace.Negotiate(err)
	}
	if err != nil {
		c.fail(err)
		return nil, err
	}
	if p == forVerify {
		log.Debug("stream to verify a dialback key ready", "stream_id", c.id, "addr", ap.String())
	} else {
		log.Info("stream ready", "stream_id", c.id, "addr", ap.String(), "tls", c.State()&Secure != 0, "verified", c.State()&Verified != 0)
	}
	return c, nil
}

// negotiate runs RFC 6120 §4-§6 as the initiating entity.
func (d *Dialer) negotiate(ctx context.Context, c *Conn, p purpose) error {
	policy := d.Policy.of(c.remote)
	saslDone := false
	for {
		hdr := xmlstream.AppendHeader(nil, xmlstream.Header{NS: nsServer, From: c.local, To: c.remote, Version: "1.0"}, true)
		if err := c.write(hdr); err != nil {
			return err
		}
		h, err := c.readHeader(ctx)
		if err != nil {
			return err
		}
		if h.NS != nsServer {
			return stream.Errorf(stream.InvalidNamespace, "default namespace %q, want jabber:server", h.NS)
		}
		c.id = h.ID
		if h.Version == "" {
			return stream.New(stream.UnsupportedVersion, "the peer does not speak XMPP 1.0 (no stream features)")
		}
		el, err := c.next(ctx)
		if err != nil {
			return err
		}
		f, err := parseFeatures(el)
		if err != nil {
			return err
		}
		if d.Trace != nil && d.Trace.Features != nil {
			d.Trace.Features(f.Raw)
		}
		secure := c.State()&Secure != 0
		if !secure {
			if f.StartTLS {
				if err := d.startTLS(ctx, c); err != nil {
					return err
				}
				continue
			}
			if policy != AllowPlaintext {
				return &stream.Error{Condition: stream.PolicyViolation, Text: "the peer does not offer STARTTLS and TLS is required"}
			}
		} else if c.State()&Verified == 0 && !saslDone {
			if err := d.checkCert(c); err != nil {
				return err
			}
		}
		if saslDone {
			c.authenticate(c.remote, c.local, "sasl-external")
			if err := d.enableSM(ctx, c, f); err != nil {
				return err
			}
			c.startWriter(outboundPending)
			c.clk.ready()
			return nil
		}
		c.canDialback = f.Dialback || h.Dialback()
		verified := c.State()&Verified != 0
		if policy == RequireValidCert && !verified {
			return fmt.Errorf("certificate of %s not trusted and policy requires a valid one", c.remote)
		}
		if p == forVerify {
			return nil
		}
		if verified && f.offers("EXTERNAL") {
			if err := d.external(ctx, c); err != nil {
				return err
			}
			saslDone = true
			continue
		}
		if !f.Dialback && !h.Dialback() {
			return stream.New(stream.UnsupportedFeature, "the peer offers no authentication we can use (no valid certificate for SASL EXTERNAL, no dialback)")
		}
		if err := d.dialback(ctx, c); err != nil {
			return err
		}
		if err := d.enableSM(ctx, c, f); err != nil {
			return err
		}
		c.startWriter(outboundPending)
		c.clk.ready()
		return nil
	}
}

// checkCert verifies the peer's certificate: against the target's TLSA
// records when it has usable ones (a mismatch is an error, which ends the
// attempt), otherwise against Roots (a failure leaves the stream
// unverified, for the policy to judge).
func (d *Dialer) checkCert(c *Conn) error {
	st, _ := c.TLSState()
	roots := d.live().roots
	if len(c.tlsa) > 0 {
		err := verifyDANE(st.PeerCertificates, c.tlsa, roots, c.remote, c.tlsaHost, time.Now())
		if d.Trace != nil && d.Trace.TLS != nil {
			d.Trace.TLS(st, err)
		}
		if err != nil {
			return err
		}
		c.log.Info("peer certificate verified with DANE", "target", c.tlsaHost, "records", len(c.tlsa))
		c.setState(Verified | DANE)
		return nil
	}
	err := VerifyPeer(st.PeerCertificates, roots, c.remote, time.Now())
	if d.Trace != nil && d.Trace.TLS != nil {
		d.Trace.TLS(st, err)
	}
	if err == nil {
		c.setState(Verified)
	} else {
		c.log.Debug("peer certificate not verified", "reason", err.Error())
	}
	return nil
}

// startTLS runs RFC 6120 §5.4 and restarts the stream reader on TLS.
func (d *Dialer) startTLS(ctx context.Context, c *Conn) error {
	if err := c.write([]byte("<starttls xmlns='" + nsTLS + "'/>")); err != nil {
		return err
	}
	el, err := c.next(ctx)
	if err != nil {
		return err
	}
	if el.Space != nsTLS || el.Local != "proceed" {
		return fmt.Errorf("STARTTLS refused (%s)", el.Local)
	}
	tc := tls.Client(spill(c.nc), d.tlsConfig(c.local, c.remote, false))
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if err := c.r.Reset(tc); err != nil {
		return err
	}
	c.r.SetIdleRelease(true)
	c.nc, c.tls = tc, tc
	c.setState(Secure)
	return nil
}

// external runs SASL EXTERNAL (RFC 6120 §6, XEP-0178 §4) with our domain
// as the authorization identity.
func (d *Dialer) external(ctx context.Context, c *Conn) error {
	auth := "<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte(c.local)) + "</auth>"
	if err := c.write([]byte(auth)); err != nil {
		return err
	}
	el, err := c.next(ctx)
	if err != nil {
		return err
	}
	var aerr error
	switch {
	case el.Space == nsSASL && el.Local == "success":
	case el.Space == nsSASL && el.Local == "failure":
		aerr = fmt.Errorf("SASL EXTERNAL failed: %s", el.Raw)
	default:
		aerr = fmt.Errorf("unexpected %s during SASL", el.Local)
	}
	if d.Trace != nil && d.Trace.Auth != nil {
		d.Trace.Auth("SASL EXTERNAL", aerr)
	}
	if aerr != nil {
		return aerr
	}
	return c.r.Reset(c.nc)
}

// dialback runs XEP-0220 §2.1 as the initiating server.
func (d *Dialer) dialback(ctx context.Context, c *Conn) error {
	key := DialbackKey(d.Secret, c.remote, c.local, c.id)
	if err := c.write(appendDB(nil, "result", dbElement{From: c.local, To: c.remote, Key: key})); err != nil {
		return err
	}
	for {
		el, err := c.next(ctx)
		if err != nil {
			return err
		}
		if el.Space != nsDialback || el.Local != "result" {
			c.log.Debug("ignoring element during dialback", "element", el.Local)
			continue
		}
		r, err := parseDB(el)
		if err != nil {
			return err
		}
		if d.Trace != nil && d.Trace.Dialback != nil {
			d.Trace.Dialback(r.Type)
		}
		var aerr error
		switch r.Type {
		case "valid":
		case "invalid":
			aerr = errors.New("dialback key refused (type='invalid')")
		default:
			aerr = fmt.Errorf("dialback error: %s", r.ErrCond)
		}
		if d.Trace != nil && d.Trace.Auth != nil {
			d.Trace.Auth("dialback", aerr)
		}
		if aerr != nil {
			return aerr
		}
		c.authenticate(c.remote, c.local, "dialback")
		return nil
	}
}

// enableSM turns on XEP-0198 acknowledgements when the peer offers them
// (XEP-0198 §3). Resumption is not asked for: unacknowledged stanzas are
// sent again on the next stream instead.
func (d *Dialer) enableSM(ctx context.Context, c *Conn, f features) error {
	if !f.SM || d.DisableSM {
		return nil
	}
	if err := c.write([]byte("<enable xmlns='" + nsSM + "'/>")); err != nil {
		return err
	}
	el, err := c.next(ctx)
	if err != nil {
		return err
	}
	if el.Space == nsSM && el.Local == "enabled" {
		c.sm.Store(true)
	}
	return nil
}

package diag

import (
	"fmt"
	"strconv"
	"time"
)

// Report is what Run found out about a remote domain. It marshals to JSON
// for scripts (`s2sd diag -json`); errors are strings, durations are
// milliseconds.
type Report struct {
	Local    string    `json:"local"`  // our domain, the stream's sender
	Domain   string    `json:"domain"` // the remote domain diagnosed
	Start    time.Time `json:"start"`
	Duration Duration  `json:"duration_ms"`

	DNS DNS `json:"dns"`
	// Targets are where the Dialer tried to connect, in order.
	Targets  []Target  `json:"targets"`
	Attempts []Attempt `json:"attempts"`

	// Authenticated is true when a stream from Local to Domain was set up
	// and authenticated; Method says how ("sasl-external" or "dialback").
	Authenticated bool   `json:"authenticated"`
	Method        string `json:"method,omitempty"`
	// Error is why no stream could be set up.
	Error string `json:"error,omitempty"`

	// OK is true when no problem was found.
	OK       bool      `json:"ok"`
	Problems []Problem `json:"problems"`
}

// DNS is what the nameservers said about the domain (RFC 6120 §3.2,
// XEP-0368).
type DNS struct {
	Name string `json:"name"` // the domain queried, A-labels, fully qualified
	// SRV holds one entry per service queried: _xmpps-server, then
	// _xmpp-server.
	SRV []SRV `json:"srv"`
	// Fallback is true when there were no SRV records, so that the domain
	// itself is tried on port 5269 (RFC 6120 §3.2.2).
	Fallback bool `json:"fallback"`
	// NoService is true when the SRV records say, with a "." target, that
	// there is no service at all (RFC 2782).
	NoService bool `json:"no_service"`
	// Error is why no target could be found, or why the lookup failed.
	Error string `json:"error,omitempty"`
	// Hosts are the A/AAAA lookups of each target host.
	Hosts []Host `json:"hosts"`
	// TLSA are the TLSA lookups, with DANE.
	TLSA []TLSA `json:"tlsa,omitempty"`
}

// SRV is the answer to one SRV query.
type SRV struct {
	Name      string      `json:"name"`    // "_xmpp-server._tcp.example.org."
	Service   string      `json:"service"` // "xmpps-server" or "xmpp-server"
	Records   []SRVRecord `json:"records"` // as received; empty for NXDOMAIN or no data
	NoService bool        `json:"no_service,omitempty"`
	Error     string      `json:"error,omitempty"`
	// DNSSEC is true when the answer was validated (s2s.Resolver.TrustAD).
	DNSSEC bool `json:"dnssec,omitempty"`
}

// TLSA is the TLSA lookup for one target (DANE, RFC 7673), made when its
// SRV record and addresses were validated.
type TLSA struct {
	Name    string   `json:"name"`    // "_5269._tcp.xmpp.example.org."
	Records []string `json:"records"` // "3 1 1 <hex>", validated and usable
	Error   string   `json:"error,omitempty"`
}

// SRVRecord is one SRV record; Target "." means no service.
type SRVRecord struct {
	Priority uint16 `json:"priority"`
	Weight   uint16 `json:"weight"`
	Port     uint16 `json:"port"`
	Target   string `json:"target"`
}

// Host is the address lookup of one target host.
type Host struct {
	Name   string   `json:"name"`
	Addrs  []string `json:"addrs"`
	Error  string   `json:"error,omitempty"`
	DNSSEC bool     `json:"dnssec,omitempty"` // both answers validated
}

// Target is one place the Dialer tries.
type Target struct {
	Host string `json:"host"`
	Port uint16 `json:"port"`
	// Service is "xmpps-server" or "xmpp-server" for an SRV target, "" for
	// the fallback to the domain itself.
	Service   string `json:"service,omitempty"`
	DirectTLS bool   `json:"direct_tls"`
}

func (t Target) String() string {
	return fmt.Sprintf("%s:%d", t.Host, t.Port)
}

// Attempt is one connection to one address, and the stream on it.
type Attempt struct {
	Target Target `json:"target"`
	Addr   string `json:"addr"` // "ip:port"
	// Connected is true when TCP connected; ConnectTime is how long that
	// took and Time how long the whole attempt took.
	Connected   bool     `json:"connected"`
	ConnectTime Duration `json:"connect_ms"`
	Time        Duration `json:"time_ms"`

	// Features are the stream features offered, in order.
	Features []Features `json:"features,omitempty"`
	TLS      *TLS       `json:"tls,omitempty"`
	Auth     *Auth      `json:"auth,omitempty"`

	// Authenticated is true when the stream was set up; StreamID is the
	// ID the remote gave it.
	Authenticated bool   `json:"authenticated"`
	StreamID      string `json:"stream_id,omitempty"`
	// FailedAt is the step that failed: "connect", "stream", "tls" or
	// "auth".
	FailedAt string `json:"failed_at,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Feature stages.
const (
	BeforeTLS = "before-tls"
	AfterTLS  = "after-tls"
	AfterSASL = "after-sasl"
)

// Features is one <stream:features/> element (RFC 6120 §4.3.2).
type Features struct {
	Stage            string   `json:"stage"` // BeforeTLS, AfterTLS or AfterSASL
	StartTLS         bool     `json:"starttls"`
	StartTLSRequired bool     `json:"starttls_required"`
	SASLMechanisms   []string `json:"sasl_mechanisms"`
	Dialback         bool     `json:"dialback"`        // urn:xmpp:features:dialback
	DialbackErrors   bool     `json:"dialback_errors"` // XEP-0220 §2.4 errors supported
	// Other lists other features as "{namespace}name".
	Other []string `json:"other,omitempty"`
	Raw   string   `json:"raw"`
	Error string   `json:"error,omitempty"` // the element could not be parsed
}

// Certificate problems, TLS.Problem.
const (
	CertSelfSigned  = "self-signed"
	CertUnknownCA   = "unknown-ca"
	CertExpired     = "expired"
	CertNotYetValid = "not-yet-valid"
	CertWrongName   = "wrong-name"
	CertNone        = "no-certificate"
	CertUntrusted   = "untrusted"     // any other chain failure
	CertDANE        = "dane-mismatch" // matches none of the target's TLSA records
)

// TLS is the TLS connection and the peer's certificate.
type TLS struct {
	Version     string `json:"version"` // "TLS 1.3"
	CipherSuite string `json:"cipher_suite"`
	ALPN        string `json:"alpn,omitempty"`
	// Direct is true for XEP-0368 direct TLS, false for STARTTLS.
	Direct bool `json:"direct"`
	// Chain is the certificate chain the peer sent, leaf first.
	Chain []Cert `json:"chain"`
	// Valid is true when the chain is valid for the domain against the
	// Dialer's roots. Otherwise Problem is one of the Cert constants, the
	// first reason, and Error is the full one.
	Valid   bool   `json:"valid"`
	Problem string `json:"problem,omitempty"`
	Error   string `json:"error,omitempty"`
	// NamesDomain is true when the leaf names the domain (RFC 6125 DNS-ID,
	// SRV-ID or XmppAddr), whatever its chain.
	NamesDomain bool `json:"names_domain"`
	// DANE is true when the chain was checked against the target's TLSA
	// records (then Valid means one matched).
	DANE bool `json:"dane,omitempty"`
}

// Cert describes one certificate.
type Cert struct {
	Subject  string   `json:"subject"`
	Issuer   string   `json:"issuer"`
	DNSNames []string `json:"dns_names"`
	// SANs are all subject alternative names: "DNS:", "IP:", "email:",
	// "URI:", "xmppAddr:" and "SRVName:" ones.
	SANs       []string  `json:"sans"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	IsCA       bool      `json:"is_ca"`
	SHA256     string    `json:"sha256"` // fingerprint of the DER, hex
}

// Auth methods and results.
const (
	MethodSASLExternal = "SASL EXTERNAL"
	MethodDialback     = "dialback"

	AuthValid   = "valid"
	AuthInvalid = "invalid"
	AuthError   = "error"
)

// Auth is the result of authenticating the stream.
type Auth struct {
	Method    string `json:"method"`              // MethodSASLExternal or MethodDialback
	Result    string `json:"result"`              // AuthValid, AuthInvalid or AuthError
	Condition string `json:"condition,omitempty"` // the SASL or dialback error condition
	Error     string `json:"error,omitempty"`
	Hint      string `json:"hint,omitempty"` // what to check
}

// Problem severities.
const (
	SevError   = "error"   // federation with the domain fails
	SevWarning = "warning" // it works, or may, but something is wrong
)

// Problem is one thing found wrong.
type Problem struct {
	Severity string `json:"severity"`
	Text     string `json:"text"`
}

// Duration is a time.Duration that JSON encodes as a number of
// milliseconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("diag: duration %s: %w", b, err)
	}
	*d = Duration(f * float64(time.Millisecond))
	return nil
}

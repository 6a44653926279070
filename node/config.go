package node

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/cluster"
	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/s2s"
)

//go:embed default.toml
var defaultConfig []byte

// Config is the configuration of a node: the s2sd configuration file
// (TOML), validated. Build one with LoadConfig, ParseConfig or
// DefaultConfig. The exported fields are the file's: a program may change
// them before New or Reload, which validate them again and read the files
// they name.
type Config struct {
	Server struct {
		Domains   []string `toml:"domains"`
		StateDir  string   `toml:"state_dir"`
		LogLevel  string   `toml:"log_level"`
		LogFormat string   `toml:"log_format"`
		Version   bool     `toml:"version"` // answer XEP-0092 software version
		// GCPercent is the Go garbage collector's target (GOGC, default
		// 100). 50 cuts the memory of idle streams by a sixth and costs a
		// fifth of the peak throughput. The GOGC environment variable
		// overrides it.
		GCPercent int `toml:"gc_percent"`
		// GCHeapFloorMiB is a floor under the collector's heap goal, in
		// MiB (default 16, 0 for none): while the live heap is small,
		// the heap grows to this before a collection, instead of to
		// twice the live heap (internal/gcfloor). The GOGC environment
		// variable turns it off.
		GCHeapFloorMiB *int `toml:"gc_heap_floor_mib"`
	} `toml:"server"`
	S2S struct {
		Listen          string            `toml:"listen"`
		DirectTLSListen string            `toml:"direct_tls_listen"`
		Policy          string            `toml:"policy"`
		Policies        map[string]string `toml:"policies"` // remote domain -> policy
		DNS             []string          `toml:"dns"`
		// DANE trusts the AD bit of the dns servers, which must validate
		// DNSSEC on this host, and uses TLSA records (RFC 7673).
		DANE          bool     `toml:"dane"`
		CAFile        string   `toml:"ca_file"`
		SecretFile    string   `toml:"dialback_secret_file"`
		RetryFor      Duration `toml:"retry_for"`
		QueueLimit    int      `toml:"queue_limit"`
		IdleTimeout   Duration `toml:"idle_timeout"`
		MaxConns      int      `toml:"max_connections"`
		MaxConnsPerIP int      `toml:"max_connections_per_ip"`
		Negotiation   Duration `toml:"negotiation_timeout"`
		// WriteTimeout bounds every write on an s2s stream (default 30s).
		WriteTimeout Duration `toml:"write_timeout"`
		// KeepAlive is the interval of whitespace keepalives on outbound
		// streams (default 60s).
		KeepAlive Duration `toml:"keepalive"`
		// AckTimeout drops an outbound stream whose peer acknowledges
		// nothing for that long while stanzas wait for it (default 30s).
		AckTimeout Duration `toml:"ack_timeout"`
	} `toml:"s2s"`
	Certificates []struct {
		Domains []string `toml:"domains"`
		Cert    string   `toml:"cert"`
		Key     string   `toml:"key"`
	} `toml:"certificate"`
	Components struct {
		Listen   string `toml:"listen"`
		Conflict string `toml:"conflict"` // replace or refuse
		// WriteTimeout bounds every write to a component (default 30s):
		// one that reads nothing for that long is disconnected.
		WriteTimeout Duration `toml:"write_timeout"`
	} `toml:"components"`
	Component []struct {
		Domain     string `toml:"domain"`
		Secret     string `toml:"secret"`
		SecretFile string `toml:"secret_file"`
	} `toml:"component"`
	Limits struct {
		MaxStanza int `toml:"max_stanza"`
		MaxDepth  int `toml:"max_depth"`
		MaxAttrs  int `toml:"max_attributes"`
		// Stanzas a second each inbound stream or component may send
		// (0: no limit), with bursts of rate_burst.
		Rate      float64 `toml:"stanzas_per_second"`
		RateBurst int     `toml:"rate_burst"`
	} `toml:"limits"`
	Queue struct {
		// Path of the queue file (default STATE_DIR/queue.db).
		Path string `toml:"path"`
		// Memory keeps the outbound queue in memory only: faster, but a
		// restart or crash loses what is queued.
		Memory bool `toml:"memory"`
		// Sync fsyncs each commit: queued stanzas survive a power loss, not
		// only a crash of s2sd.
		Sync bool `toml:"sync"`
	} `toml:"queue"`
	Metrics struct {
		Listen string `toml:"listen"`
		// Pprof serves net/http/pprof under /debug/pprof/ on the metrics
		// listener (keep it on loopback).
		Pprof bool `toml:"pprof"`
	} `toml:"metrics"`
	Shutdown struct {
		Grace Duration `toml:"grace"`
	} `toml:"shutdown"`
	// Cluster, when its name is set, makes this node one of several
	// serving the same domains (package cluster; docs/cluster.md).
	Cluster struct {
		// Name of this node, unique in the cluster.
		Name string `toml:"name"`
		// Listen is the embedded NATS server's route listener; Routes
		// the other nodes' route listeners.
		Listen string   `toml:"listen"`
		Routes []string `toml:"routes"`
		// Advertise is the route address the other nodes learn for
		// this one (default: listen): for NAT and containers.
		Advertise string `toml:"advertise"`
		// Client, when set, lets NATS tools connect to the embedded server.
		Client string `toml:"client"`
		// URL joins an external NATS cluster instead.
		URL string `toml:"url"`
		// User and PasswordFile authenticate routes (or the connection
		// to URL); required with TLS on a non-loopback listener.
		User         string `toml:"user"`
		PasswordFile string `toml:"password_file"`
		// TLS for routes (or the connection to URL): our certificate and
		// key, and the CA that signs the other nodes'.
		TLSCert string `toml:"tls_cert"`
		TLSKey  string `toml:"tls_key"`
		TLSCA   string `toml:"tls_ca"`
		// Durability: "node" (each node's queue file keeps what it
		// owns) or "replicated" (a JetStream stream keeps the queued
		// stanzas; the node that takes a partition over sends them).
		Durability string `toml:"durability"`
		// Partitions of the remote domains (default 64; the same on
		// every node), LeaseTTL of leases and members (default 10s),
		// ComponentGrace for stanzas to a component attached nowhere
		// (default 5s).
		Partitions     int      `toml:"partitions"`
		LeaseTTL       Duration `toml:"lease_ttl"`
		ComponentGrace Duration `toml:"component_grace"`
	} `toml:"cluster"`

	// Resolved at load time.
	path       string
	policy     s2s.Policy
	policies   map[string]s2s.Policy
	roots      *x509.CertPool
	certs      map[string]*tls.Certificate // by domain; "*.x" for wildcards
	secrets    map[string]string           // component domain -> secret
	generated  map[string]bool             // component secrets generated here
	dbSecret   []byte
	conflict   component.ConflictPolicy
	logLevel   slog.Level
	isDefault  bool
	selfSigned []string
	cluster    *cluster.Config // nil without [cluster]
}

// Duration is a time.Duration written in TOML as a string ("30s", "2m").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration with time.ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// LoadConfig reads and validates the configuration file at path, or the
// embedded default when path is "". Files it names (certificates, CA
// bundle, secrets) are read now; the state directory is left to Prepare.
func LoadConfig(path string) (*Config, error) {
	data := defaultConfig
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	return parseConfig(data, path, path == "")
}

// ParseConfig validates a configuration given as TOML text, as LoadConfig
// does a file's. Relative paths in it are relative to the working
// directory.
func ParseConfig(data []byte) (*Config, error) {
	return parseConfig(data, "", false)
}

// DefaultConfig returns the embedded default configuration: the domain
// localhost on loopback ports, one component, bot.localhost, with a
// generated secret, and a self-signed certificate.
func DefaultConfig() (*Config, error) {
	return parseConfig(defaultConfig, "", true)
}

func parseConfig(data []byte, path string, isDefault bool) (*Config, error) {
	name := "config"
	switch {
	case path != "":
		name = path
	case isDefault:
		name = "embedded default config"
	}
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown keys: %s", name, strings.Join(keys, ", "))
	}
	c.path, c.isDefault = path, isDefault
	if err := c.resolve(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// Path returns the file the configuration was loaded from, "" when it was
// not loaded from a file.
func (c *Config) Path() string { return c.path }

// IsDefault reports whether c is the embedded default.
func (c *Config) IsDefault() bool { return c.isDefault }

// LogLevel returns server.log_level.
func (c *Config) LogLevel() slog.Level { return c.logLevel }

// GCHeapFloor returns server.gc_heap_floor_mib in bytes (default 16 MiB).
func (c *Config) GCHeapFloor() uint64 {
	if c.Server.GCHeapFloorMiB == nil {
		return 16 << 20
	}
	return uint64(*c.Server.GCHeapFloorMiB) << 20
}

// ShutdownGrace returns shutdown.grace, the time queued stanzas get to go
// out at shutdown (default 10s).
func (c *Config) ShutdownGrace() time.Duration {
	return orDur(c.Shutdown.Grace.Duration, 10*time.Second)
}

// Secret returns the shared secret of a component domain: configured, read
// from its secret_file, or, after Prepare, generated in the state
// directory.
func (c *Config) Secret(domain string) (string, bool) {
	s, ok := c.secrets[domain]
	return s, ok
}

// DialbackSecret returns the dialback secret (XEP-0185): read from
// s2s.dialback_secret_file or, after Prepare, from the state directory,
// where it is generated once. nil before Prepare without a file.
func (c *Config) DialbackSecret() []byte { return bytes.Clone(c.dbSecret) }

// SelfSigned returns the domains that, after Prepare, use a self-signed
// certificate from the state directory.
func (c *Config) SelfSigned() []string { return slices.Clone(c.selfSigned) }

func checkDomain(d string) error {
	j, err := jid.Parse(d)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return fmt.Errorf("%q is not a domain", d)
	}
	return nil
}

func checkAddr(what, a string) error {
	if a == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// resolve validates the config and loads the files it names.
func (c *Config) resolve() error {
	if len(c.Server.Domains) == 0 && len(c.Component) == 0 {
		return errors.New("server.domains: at least one domain (or one [[component]]) is needed")
	}
	if p := c.Server.GCHeapFloorMiB; p != nil && (*p < 0 || *p > 1<<20) {
		return fmt.Errorf("server.gc_heap_floor_mib: %d is not between 0 and %d", *p, 1<<20)
	}
	for _, d := range c.Server.Domains {
		if err := checkDomain(d); err != nil {
			return fmt.Errorf("server.domains: %w", err)
		}
	}
	for what, a := range map[string]string{"s2s.listen": c.S2S.Listen, "s2s.direct_tls_listen": c.S2S.DirectTLSListen, "components.listen": c.Components.Listen, "metrics.listen": c.Metrics.Listen} {
		if err := checkAddr(what, a); err != nil {
			return err
		}
	}
	for _, a := range c.S2S.DNS {
		if err := checkAddr("s2s.dns", a); err != nil {
			return err
		}
		// The AD bit is worth what the path it came over is: only a
		// resolver on this host can be trusted with it.
		if ap, err := netip.ParseAddrPort(a); c.S2S.DANE && (err != nil || !ap.Addr().IsLoopback()) {
			return fmt.Errorf("s2s.dane: s2s.dns %q is not a loopback address; DANE needs a validating resolver on this host", a)
		}
	}
	if err := c.resolveCluster(); err != nil {
		return err
	}
	if c.S2S.DANE && len(c.S2S.DNS) == 0 {
		return errors.New("s2s.dane: set s2s.dns to the validating resolver on this host (such as unbound on 127.0.0.1:53)")
	}
	var ok bool
	if c.policy, ok = s2s.ParsePolicy(c.S2S.Policy); !ok {
		return fmt.Errorf("s2s.policy: unknown policy %q (dialback-over-tls, require-valid-cert, allow-plaintext)", c.S2S.Policy)
	}
	c.policies = map[string]s2s.Policy{}
	for d, p := range c.S2S.Policies {
		if c.policies[d], ok = s2s.ParsePolicy(p); !ok {
			return fmt.Errorf("s2s.policies.%s: unknown policy %q", d, p)
		}
	}
	switch c.Components.Conflict {
	case "", "replace":
		c.conflict = component.Replace
	case "refuse":
		c.conflict = component.Refuse
	default:
		return fmt.Errorf("components.conflict: %q is neither replace nor refuse", c.Components.Conflict)
	}
	if err := c.logLevel.UnmarshalText([]byte(orStr(c.Server.LogLevel, "info"))); err != nil {
		return fmt.Errorf("server.log_level: %w", err)
	}
	switch c.Server.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("server.log_format: %q is neither text nor json", c.Server.LogFormat)
	}
	if c.Server.StateDir == "" {
		c.Server.StateDir = defaultStateDir()
	}
	c.roots = nil
	if c.S2S.CAFile != "" {
		pem, err := os.ReadFile(c.S2S.CAFile)
		if err != nil {
			return fmt.Errorf("s2s.ca_file: %w", err)
		}
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("s2s.ca_file: no certificate in %s", c.S2S.CAFile)
		}
	}
	c.certs, c.selfSigned = map[string]*tls.Certificate{}, nil
	for i, cf := range c.Certificates {
		pair, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
		if err != nil {
			return fmt.Errorf("certificate[%d]: %w", i, err)
		}
		for _, d := range cf.Domains {
			c.certs[d] = &pair
		}
	}
	c.secrets, c.generated = map[string]string{}, map[string]bool{}
	for i, comp := range c.Component {
		if err := checkDomain(comp.Domain); err != nil {
			return fmt.Errorf("component[%d]: %w", i, err)
		}
		if c.isLocal(comp.Domain) {
			return fmt.Errorf("component[%d]: %s is also in server.domains", i, comp.Domain)
		}
		switch {
		case comp.Secret != "" && comp.SecretFile != "":
			return fmt.Errorf("component[%d]: both secret and secret_file", i)
		case comp.Secret != "":
			c.secrets[comp.Domain] = comp.Secret
		case comp.SecretFile != "":
			b, err := os.ReadFile(comp.SecretFile)
			if err != nil {
				return fmt.Errorf("component[%d]: %w", i, err)
			}
			c.secrets[comp.Domain] = strings.TrimSpace(string(b))
		default:
			c.generated[comp.Domain] = true
		}
	}
	c.dbSecret = nil
	if c.S2S.SecretFile != "" {
		b, err := os.ReadFile(c.S2S.SecretFile)
		if err != nil {
			return fmt.Errorf("s2s.dialback_secret_file: %w", err)
		}
		c.dbSecret = bytes.TrimSpace(b)
	}
	return nil
}

func (c *Config) isLocal(d string) bool {
	for _, x := range c.Server.Domains {
		if x == d {
			return true
		}
	}
	return false
}

// clone returns a copy of c that Prepare may fill without touching c.
func (c *Config) clone() *Config {
	n := *c
	n.certs = maps.Clone(c.certs)
	n.secrets = maps.Clone(c.secrets)
	n.generated = maps.Clone(c.generated)
	n.selfSigned = slices.Clone(c.selfSigned)
	return &n
}

// Prepare creates the state directory and fills in what the configuration
// leaves to it: generated component and dialback secrets and self-signed
// certificates, created once and kept there. New prepares its own copy of
// the configuration; diagnostics that use the daemon's identity call
// Prepare themselves.
func (c *Config) Prepare() error {
	if err := os.MkdirAll(c.Server.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	for d := range c.generated {
		s, err := stateSecret(filepath.Join(c.Server.StateDir, "component-"+d+".secret"))
		if err != nil {
			return err
		}
		c.secrets[d] = s
	}
	if c.dbSecret == nil {
		s, err := stateSecret(filepath.Join(c.Server.StateDir, "dialback.secret"))
		if err != nil {
			return err
		}
		c.dbSecret = []byte(s)
	}
	domains := append([]string(nil), c.Server.Domains...)
	for _, comp := range c.Component {
		domains = append(domains, comp.Domain)
	}
	for _, d := range domains {
		if c.certFor(d) != nil {
			continue
		}
		cert, err := selfSigned(c.Server.StateDir, d)
		if err != nil {
			return err
		}
		c.certs[d] = cert
		c.selfSigned = append(c.selfSigned, d)
	}
	return nil
}

// AnyDomain returns a domain of ours: the first of server.domains, or the
// first component's. It is the certificate for peers that send no SNI.
func (c *Config) AnyDomain() string {
	if len(c.Server.Domains) > 0 {
		return c.Server.Domains[0]
	}
	return c.Component[0].Domain
}

// certFor returns the certificate for a domain, exact or wildcard.
func (c *Config) certFor(d string) *tls.Certificate {
	if cert := c.certs[d]; cert != nil {
		return cert
	}
	if i := strings.IndexByte(d, '.'); i > 0 {
		return c.certs["*"+d[i:]]
	}
	return nil
}

func (c *Config) policyFor(remote string) s2s.Policy {
	if p, ok := c.policies[remote]; ok {
		return p
	}
	return c.policy
}

func (c *Config) limits() xmlstream.Limits {
	return xmlstream.Limits{MaxStanza: c.Limits.MaxStanza, MaxDepth: c.Limits.MaxDepth, MaxAttrs: c.Limits.MaxAttrs}
}

func stateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 16)
	rand.Read(b)
	s := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	return s, nil
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "s2sd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "s2sd")
	}
	return "s2sd-state"
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orStr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// resolveCluster checks the [cluster] section and builds the cluster's
// configuration from it.
func (c *Config) resolveCluster() error {
	k := &c.Cluster
	if k.Name == "" {
		if k.Listen != "" || len(k.Routes) > 0 || k.URL != "" {
			return errors.New("cluster.name: a node of a cluster needs a name")
		}
		c.cluster = nil
		return nil
	}
	switch k.Durability {
	case "", cluster.Node, cluster.Replicated:
	default:
		return fmt.Errorf("cluster.durability: unknown %q (node, replicated)", k.Durability)
	}
	cc := &cluster.Config{
		Name: k.Name, URL: k.URL, Listen: k.Listen, Routes: k.Routes, Advertise: k.Advertise, Client: k.Client,
		User: k.User, StoreDir: filepath.Join(c.Server.StateDir, "cluster"),
		Partitions: k.Partitions, LeaseTTL: k.LeaseTTL.Duration, ComponentGrace: k.ComponentGrace.Duration,
		Durability: k.Durability,
	}
	if k.PasswordFile != "" {
		b, err := os.ReadFile(k.PasswordFile)
		if err != nil {
			return fmt.Errorf("cluster.password_file: %w", err)
		}
		cc.Password = strings.TrimSpace(string(b))
	}
	if k.TLSCert != "" || k.TLSKey != "" || k.TLSCA != "" {
		cert, err := tls.LoadX509KeyPair(k.TLSCert, k.TLSKey)
		if err != nil {
			return fmt.Errorf("cluster.tls_cert/tls_key: %w", err)
		}
		pool := x509.NewCertPool()
		if k.TLSCA != "" {
			b, err := os.ReadFile(k.TLSCA)
			if err != nil {
				return fmt.Errorf("cluster.tls_ca: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return fmt.Errorf("cluster.tls_ca: no certificate in %s", k.TLSCA)
			}
		}
		cc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	}
	if err := cc.Check(); err != nil {
		return err
	}
	c.cluster = cc
	return nil
}

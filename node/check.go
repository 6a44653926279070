package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/miekg/dns"

	"github.com/s2sd/s2sd/s2s"
)

// Check examines a configuration file the way prosodyctl check does, and
// reports every problem it finds rather than the first: what LoadConfig
// refuses (syntax, unknown keys, bad values, unreadable files), and what
// it accepts but a production server should not run with: certificates
// that do not cover a served or component domain, that are expired, not
// yet valid, expiring within 30 days or self-signed, keys that do not
// match their certificates, secret files that others may read, a state
// directory that cannot be written, and listeners that peers cannot
// reach. With CheckOptions.DNS it also looks up the SRV, address and
// (with DANE) TLSA records of every served and component domain, and
// compares them with the listeners and certificates.

// Severities of a Problem.
const (
	SeverityError   = "error"   // the node will not start, or peers will fail
	SeverityWarning = "warning" // it runs, but not as it should in production
)

// Problem is one finding of Check.
type Problem struct {
	Severity string `json:"severity"`
	// Key is the configuration key or section concerned
	// ("certificate[0]", "s2s.listen"), "" for the file as a whole.
	Key  string `json:"key,omitempty"`
	Text string `json:"text"`
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Severity + ": " + p.Text
	}
	return p.Severity + ": " + p.Key + ": " + p.Text
}

// CheckReport is what Check found.
type CheckReport struct {
	// File is the file checked; "" for the embedded default.
	File     string    `json:"file"`
	Problems []Problem `json:"problems"`
}

// Errors returns the number of problems of severity error.
func (r *CheckReport) Errors() int {
	n := 0
	for _, p := range r.Problems {
		if p.Severity == SeverityError {
			n++
		}
	}
	return n
}

// Warnings returns the number of problems of severity warning.
func (r *CheckReport) Warnings() int { return len(r.Problems) - r.Errors() }

// CheckOptions tune Check. The zero value checks the file and the files
// it names.
type CheckOptions struct {
	// DNS looks up the records of the served and component domains.
	DNS bool
	// Now is the time certificates are checked at (default time.Now()).
	Now time.Time
	// Resolver, when set, answers the DNS checks instead of one on the
	// configuration's s2s.dns servers.
	Resolver *s2s.Resolver
	// LocalAddrs are the addresses of this host that the DNS records
	// should point at (default: those of its interfaces).
	LocalAddrs []netip.Addr
}

// expiryWarning is how soon an expiry is worth a warning.
const expiryWarning = 30 * 24 * time.Hour

type checker struct {
	CheckOptions
	rep   *CheckReport
	c     *Config
	file  string
	certs []*x509.Certificate // leaf of each [[certificate]], nil when it did not load
	pairs []*tls.Certificate
}

func (k *checker) add(sev, key, format string, args ...any) {
	k.rep.Problems = append(k.rep.Problems, Problem{Severity: sev, Key: key, Text: fmt.Sprintf(format, args...)})
}

func (k *checker) errorf(key, format string, args ...any) { k.add(SeverityError, key, format, args...) }
func (k *checker) warnf(key, format string, args ...any) {
	k.add(SeverityWarning, key, format, args...)
}

// Check checks the configuration file at path ("" for the embedded
// default). ctx bounds the DNS lookups.
func Check(ctx context.Context, path string, opts CheckOptions) *CheckReport {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	k := &checker{CheckOptions: opts, rep: &CheckReport{File: path, Problems: []Problem{}}, file: path}
	data := defaultConfig
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			k.errorf("", "%v", err)
			return k.rep
		}
	}
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		k.errorf("", "%v", err)
		return k.rep
	}
	for _, key := range md.Undecoded() {
		k.errorf(key.String(), "unknown key")
	}
	c.path, c.isDefault = path, path == ""
	k.c = &c
	k.values()
	k.files()
	k.certificates()
	k.secrets()
	k.stateDir()
	k.listeners()
	// What the daemon itself refuses, should the checks above have missed
	// it.
	if k.rep.Errors() == 0 {
		if _, err := parseConfig(data, path, path == ""); err != nil {
			k.errorf("", "%v", errors.Unwrap(err))
		}
	}
	if opts.DNS {
		k.dns(ctx)
	}
	return k.rep
}

// values checks the values that need no file.
func (k *checker) values() {
	c := k.c
	if len(c.Server.Domains) == 0 && len(c.Component) == 0 {
		k.errorf("server.domains", "at least one domain (or one [[component]]) is needed")
	}
	for _, d := range c.Server.Domains {
		if err := checkDomain(d); err != nil {
			k.errorf("server.domains", "%v", err)
		}
	}
	for _, x := range []struct{ key, addr string }{{"s2s.listen", c.S2S.Listen}, {"s2s.direct_tls_listen", c.S2S.DirectTLSListen}, {"components.listen", c.Components.Listen}, {"metrics.listen", c.Metrics.Listen}} {
		if err := checkAddr(x.key, x.addr); err != nil {
			k.errorf(x.key, "%v", errors.Unwrap(err))
		}
	}
	for _, a := range c.S2S.DNS {
		if _, _, err := net.SplitHostPort(a); err != nil {
			k.errorf("s2s.dns", "%v", err)
		} else if ap, err := netip.ParseAddrPort(a); c.S2S.DANE && (err != nil || !ap.Addr().IsLoopback()) {
			k.errorf("s2s.dane", "s2s.dns %q is not a loopback address; DANE needs a validating resolver on this host", a)
		}
	}
	if c.S2S.DANE && len(c.S2S.DNS) == 0 {
		k.errorf("s2s.dane", "set s2s.dns to the validating resolver on this host (such as unbound on 127.0.0.1:53)")
	}
	if _, ok := s2s.ParsePolicy(c.S2S.Policy); !ok {
		k.errorf("s2s.policy", "unknown policy %q (dialback-over-tls, require-valid-cert, allow-plaintext)", c.S2S.Policy)
	} else if p, _ := s2s.ParsePolicy(c.S2S.Policy); p == s2s.AllowPlaintext {
		k.warnf("s2s.policy", "allow-plaintext for every remote domain: stanzas may cross the network unencrypted; allow it per domain in [s2s.policies]")
	}
	for d, p := range c.S2S.Policies {
		if _, ok := s2s.ParsePolicy(p); !ok {
			k.errorf("s2s.policies."+d, "unknown policy %q", p)
		}
	}
	switch c.Components.Conflict {
	case "", "replace", "refuse":
	default:
		k.errorf("components.conflict", "%q is neither replace nor refuse", c.Components.Conflict)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(orStr(c.Server.LogLevel, "info"))); err != nil {
		k.errorf("server.log_level", "%v", err)
	}
	switch c.Server.LogFormat {
	case "", "text", "json":
	default:
		k.errorf("server.log_format", "%q is neither text nor json", c.Server.LogFormat)
	}
	seen := map[string]bool{}
	for i, comp := range c.Component {
		key := fmt.Sprintf("component[%d]", i)
		if err := checkDomain(comp.Domain); err != nil {
			k.errorf(key, "%v", err)
		}
		if c.isLocal(comp.Domain) {
			k.errorf(key, "%s is also in server.domains", comp.Domain)
		}
		if seen[comp.Domain] {
			k.errorf(key, "%s is configured twice", comp.Domain)
		}
		seen[comp.Domain] = true
		if comp.Secret != "" && comp.SecretFile != "" {
			k.errorf(key, "both secret and secret_file")
		}
	}
	for _, x := range []struct {
		key string
		d   Duration
	}{{"s2s.retry_for", c.S2S.RetryFor}, {"s2s.idle_timeout", c.S2S.IdleTimeout}, {"s2s.negotiation_timeout", c.S2S.Negotiation}, {"s2s.write_timeout", c.S2S.WriteTimeout}, {"s2s.keepalive", c.S2S.KeepAlive}, {"s2s.ack_timeout", c.S2S.AckTimeout}, {"components.write_timeout", c.Components.WriteTimeout}, {"shutdown.grace", c.Shutdown.Grace}} {
		if x.d.Duration < 0 {
			k.errorf(x.key, "negative duration %v", x.d.Duration)
		}
	}
}

// files checks that the files named can be read.
func (k *checker) files() {
	c := k.c
	if c.S2S.CAFile != "" {
		pem, err := os.ReadFile(c.S2S.CAFile)
		switch {
		case err != nil:
			k.errorf("s2s.ca_file", "%v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			k.errorf("s2s.ca_file", "no certificate in %s", c.S2S.CAFile)
		}
	}
}

// certificates checks each [[certificate]], then that every served and
// component domain has one that covers it.
func (k *checker) certificates() {
	c := k.c
	k.certs = make([]*x509.Certificate, len(c.Certificates))
	k.pairs = make([]*tls.Certificate, len(c.Certificates))
	byDomain := map[string]int{}
	for i, cf := range c.Certificates {
		key := fmt.Sprintf("certificate[%d]", i)
		for _, d := range cf.Domains {
			byDomain[d] = i
		}
		certPEM, err1 := os.ReadFile(cf.Cert)
		if err1 != nil {
			k.errorf(key, "cert: %v", err1)
		}
		keyPEM, err2 := os.ReadFile(cf.Key)
		if err2 != nil {
			k.errorf(key, "key: %v", err2)
		} else {
			k.secretMode(key+".key", cf.Key)
		}
		if err1 != nil || err2 != nil {
			continue
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			k.errorf(key, "%s and %s: %v", cf.Cert, cf.Key, err)
			continue
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			k.errorf(key, "%s: %v", cf.Cert, err)
			continue
		}
		k.certs[i], k.pairs[i] = leaf, &pair
		switch {
		case k.Now.Before(leaf.NotBefore):
			k.errorf(key, "%s is not valid before %s", cf.Cert, leaf.NotBefore.UTC().Format(time.DateTime))
		case k.Now.After(leaf.NotAfter):
			k.errorf(key, "%s expired on %s", cf.Cert, leaf.NotAfter.UTC().Format(time.DateTime))
		case leaf.NotAfter.Sub(k.Now) < expiryWarning:
			k.warnf(key, "%s expires on %s, in %d days", cf.Cert, leaf.NotAfter.UTC().Format(time.DateTime), int(leaf.NotAfter.Sub(k.Now).Hours()/24))
		}
		inter := x509.NewCertPool()
		for _, der := range pair.Certificate[1:] {
			if ic, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(ic)
			}
		}
		if bytes.Equal(leaf.RawSubject, leaf.RawIssuer) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
			k.warnf(key, "%s is self-signed: peers that require valid certificates refuse it, the others fall back to dialback", cf.Cert)
		} else if _, err := leaf.Verify(x509.VerifyOptions{Intermediates: inter, CurrentTime: k.Now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil && k.Now.Before(leaf.NotAfter) && k.Now.After(leaf.NotBefore) {
			k.warnf(key, "%s is not trusted by this host's CA roots (%v): is the chain (fullchain.pem) complete?", cf.Cert, err)
		}
		for _, d := range cf.Domains {
			name := d
			if rest, ok := strings.CutPrefix(d, "*."); ok {
				name = "s2sd-check." + rest // any name the wildcard covers
			}
			if !s2s.NamesDomain(leaf, name) {
				k.errorf(key, "%s does not cover %s (it names %s)", cf.Cert, d, certNames(leaf))
			}
		}
	}
	domains := slices.Clone(c.Server.Domains)
	for _, comp := range c.Component {
		domains = append(domains, comp.Domain)
	}
	for _, d := range domains {
		if checkDomain(d) != nil {
			continue // reported already
		}
		i, ok := byDomain[d]
		if !ok {
			if j := strings.IndexByte(d, '.'); j > 0 {
				i, ok = byDomain["*"+d[j:]]
			}
		}
		if !ok {
			if len(c.Certificates) > 0 || !c.isDefault {
				k.warnf("certificate", "no [[certificate]] for %s: s2sd uses a self-signed one from the state directory, which peers that require valid certificates refuse", d)
			}
			continue
		}
		if leaf := k.certs[i]; leaf != nil && !s2s.NamesDomain(leaf, d) {
			// The entry's own domains were checked above: this is a
			// wildcard entry that does not cover d (a deeper subdomain).
			k.errorf(fmt.Sprintf("certificate[%d]", i), "%s does not cover %s", c.Certificates[i].Cert, d)
		}
	}
	for d := range byDomain {
		if !c.isLocal(d) && !c.isComponent(d) && !strings.HasPrefix(d, "*.") {
			k.warnf(fmt.Sprintf("certificate[%d]", byDomain[d]), "%s is neither a served nor a component domain", d)
		}
	}
}

func (c *Config) isComponent(d string) bool {
	for _, x := range c.Component {
		if x.Domain == d {
			return true
		}
	}
	return false
}

func certNames(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, id := range s2s.OtherNames(c) {
		names = append(names, id.Value)
	}
	if len(names) == 0 {
		return "no domain"
	}
	return strings.Join(names, ", ")
}

// secretMode warns when a secret file may be read by other users.
func (k *checker) secretMode(key, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if m := fi.Mode().Perm(); m&0o044 != 0 {
		k.warnf(key, "%s is readable by %s (mode %04o): chmod 600 it, or 640 with a group only s2sd is in", path, who(m), m)
	}
}

func who(m fs.FileMode) string {
	switch {
	case m&0o004 != 0:
		return "every user"
	default:
		return "its group"
	}
}

// secrets checks the component and dialback secrets.
func (k *checker) secrets() {
	c := k.c
	inline := false
	for i, comp := range c.Component {
		key := fmt.Sprintf("component[%d]", i)
		switch {
		case comp.Secret != "":
			inline = true
			if len(comp.Secret) < 16 {
				k.warnf(key, "the secret of %s is short (%d characters): anyone who guesses it can act as the component; use 32 random characters (openssl rand -hex 16)", comp.Domain, len(comp.Secret))
			}
		case comp.SecretFile != "":
			b, err := os.ReadFile(comp.SecretFile)
			if err != nil {
				k.errorf(key+".secret_file", "%v", err)
				continue
			}
			if len(strings.TrimSpace(string(b))) == 0 {
				k.errorf(key+".secret_file", "%s is empty", comp.SecretFile)
			}
			k.secretMode(key+".secret_file", comp.SecretFile)
		}
	}
	if c.S2S.SecretFile != "" {
		b, err := os.ReadFile(c.S2S.SecretFile)
		switch {
		case err != nil:
			k.errorf("s2s.dialback_secret_file", "%v", err)
		case len(bytes.TrimSpace(b)) == 0:
			k.errorf("s2s.dialback_secret_file", "%s is empty", c.S2S.SecretFile)
		default:
			k.secretMode("s2s.dialback_secret_file", c.S2S.SecretFile)
		}
	}
	if inline && k.file != "" {
		k.secretMode("component.secret", k.file)
	}
}

// stateDir checks that the state directory (and the queue file's) can be
// written, or created.
func (k *checker) stateDir() {
	c := k.c
	dir := c.Server.StateDir
	if dir == "" {
		dir = defaultStateDir()
	}
	k.writableDir("server.state_dir", dir)
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		k.warnf("server.state_dir", "%s is writable by other users (mode %04o): it holds secrets and the queue", dir, fi.Mode().Perm())
	}
	if c.Queue.Path != "" && !c.Queue.Memory {
		k.writableDir("queue.path", filepath.Dir(c.Queue.Path))
	}
}

// writableDir checks that dir exists and can be written, or can be
// created.
func (k *checker) writableDir(key, dir string) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(dir)
		for {
			if _, err := os.Stat(parent); err == nil || parent == filepath.Dir(parent) {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := tryWrite(parent); err != nil {
			k.errorf(key, "%s does not exist and cannot be created: %v", dir, err)
		}
	case err != nil:
		k.errorf(key, "%v", err)
	case !fi.IsDir():
		k.errorf(key, "%s is not a directory", dir)
	default:
		if err := tryWrite(dir); err != nil {
			k.errorf(key, "%s cannot be written: %v", dir, err)
		}
	}
}

func tryWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".s2sd-check-*")
	if err != nil {
		return errors.Unwrap(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// listeners warns about listeners peers cannot reach, and about a status
// page open to the network.
func (k *checker) listeners() {
	c := k.c
	public := false
	for _, d := range c.Server.Domains {
		if d != "localhost" && !strings.HasSuffix(d, ".localhost") {
			public = true
		}
	}
	for _, x := range []struct{ key, addr string }{{"s2s.listen", c.S2S.Listen}, {"s2s.direct_tls_listen", c.S2S.DirectTLSListen}} {
		if public && isLoopback(x.addr) {
			k.warnf(x.key, "%s is a loopback address: remote servers cannot connect", x.addr)
		}
	}
	if public && c.S2S.Listen == "" {
		k.warnf("s2s.listen", "not set: s2sd listens on a random loopback port, which remote servers cannot reach; set it to \"[::]:5269\"")
	}
	if c.Metrics.Listen != "" && !isLoopback(c.Metrics.Listen) {
		k.warnf("metrics.listen", "%s is not a loopback address: /status and /status.json show peers, components and their addresses to whoever reaches it", c.Metrics.Listen)
	}
	if c.Components.Listen != "" && !isLoopback(c.Components.Listen) {
		k.warnf("components.listen", "%s is not a loopback address: component streams (XEP-0114) are not encrypted", c.Components.Listen)
	}
}

func isLoopback(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

func port(addr string) uint16 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

// dns checks the records of every served and component domain: SRV
// targets on our listeners' ports, at this host's addresses, and TLSA
// records (with DANE) that match our certificate.
func (k *checker) dns(ctx context.Context) {
	c := k.c
	r := k.Resolver
	if r == nil {
		r = &s2s.Resolver{Servers: c.S2S.DNS, TrustAD: c.S2S.DANE, CacheSize: -1, Logger: slog.New(slog.DiscardHandler)}
	}
	local := k.LocalAddrs
	if local == nil {
		local = interfaceAddrs()
	}
	ports := map[string]uint16{s2s.ServiceStartTLS: port(c.S2S.Listen), s2s.ServiceDirectTLS: port(c.S2S.DirectTLSListen)}
	domains := slices.Clone(c.Server.Domains)
	for _, comp := range c.Component {
		domains = append(domains, comp.Domain)
	}
	for _, d := range domains {
		if d == "localhost" || strings.HasSuffix(d, ".localhost") {
			continue
		}
		key := "dns " + d
		rep, err := r.Diagnose(ctx, d)
		if err != nil {
			k.errorf(key, "%v", err)
			continue
		}
		if rep.Err != nil {
			k.errorf(key, "remote servers cannot find this domain: %v", rep.Err)
			continue
		}
		srv := false
		for _, s := range rep.SRV {
			if s.Err != nil {
				k.warnf(key, "%s: %v", strings.TrimSuffix(s.Name, "."), s.Err)
			}
			srv = srv || len(s.Records) > 0
		}
		if !srv {
			k.warnf(key, "no _xmpp-server._tcp SRV record: remote servers connect to %s on port 5269", d)
		}
		for _, t := range rep.Targets {
			want, svc := ports[t.Service], t.Service
			if t.Service == "" {
				want, svc = ports[s2s.ServiceStartTLS], s2s.ServiceStartTLS
			}
			if want == 0 && t.Service == s2s.ServiceDirectTLS {
				k.warnf(key, "an _xmpps-server SRV record points at %s:%d, but s2s.direct_tls_listen is not set", t.Host, t.Port)
			} else if want != 0 && t.Port != want {
				k.warnf(key, "%s target %s:%d is not the port s2sd listens on (%d)", svc, t.Host, t.Port, want)
			}
		}
		for _, a := range rep.Addrs {
			if a.Err != nil && !srv {
				k.errorf(key, "remote servers cannot find %s: no SRV record, and its address: %v", d, a.Err)
				continue
			}
			if a.Err != nil {
				k.errorf(key, "target %s: %v", a.Host, a.Err)
				continue
			}
			if len(local) > 0 && !slices.ContainsFunc(a.Addrs, func(x netip.Addr) bool { return slices.Contains(local, x.Unmap()) }) {
				k.warnf(key, "target %s is at %v, none of them an address of this host (fine behind NAT or a load balancer)", a.Host, a.Addrs)
			}
		}
		leaf := k.certFor(d)
		for _, tr := range rep.TLSA {
			if tr.Err != nil {
				k.warnf(key, "TLSA _%d._tcp.%s: %v", tr.Port, tr.Host, tr.Err)
				continue
			}
			if len(tr.Records) > 0 && leaf != nil && !tlsaMatches(tr.Records, leaf) {
				k.errorf(key, "none of the %d TLSA records at _%d._tcp.%s matches the certificate of %s: DANE peers will refuse it", len(tr.Records), tr.Port, tr.Host, d)
			}
		}
	}
}

// certFor returns the chain of the [[certificate]] of domain, nil when
// none loaded.
func (k *checker) certFor(d string) *tls.Certificate {
	for i, cf := range k.c.Certificates {
		for _, x := range cf.Domains {
			if x == d || strings.HasPrefix(x, "*.") && strings.IndexByte(d, '.') > 0 && d[strings.IndexByte(d, '.'):] == x[1:] {
				return k.pairs[i]
			}
		}
	}
	return nil
}

// tlsaMatches reports whether a record matches a certificate of chain:
// the leaf for usages 1 and 3, any of it for 0 and 2.
func tlsaMatches(recs []*dns.TLSA, chain *tls.Certificate) bool {
	for _, rec := range recs {
		for i, der := range chain.Certificate {
			if i > 0 && (rec.Usage == 1 || rec.Usage == 3) {
				break
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				continue
			}
			if want, err := dns.CertificateToDANE(rec.Selector, rec.MatchingType, cert); err == nil && strings.EqualFold(want, rec.Certificate) {
				return true
			}
		}
	}
	return false
}

func interfaceAddrs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// WriteText writes the report as prosodyctl check does: one line a
// problem, then a summary.
func (r *CheckReport) WriteText(w io.Writer) {
	name := r.File
	if name == "" {
		name = "embedded default config"
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, p)
	}
	switch e, wn := r.Errors(), r.Warnings(); {
	case e == 0 && wn == 0:
		fmt.Fprintf(w, "s2sd: %s is valid\n", name)
	case e == 0:
		fmt.Fprintf(w, "s2sd: %s is valid, with %d warning%s\n", name, wn, plural(wn))
	default:
		fmt.Fprintf(w, "s2sd: %s has %d error%s and %d warning%s\n", name, e, plural(e), wn, plural(wn))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

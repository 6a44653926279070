package node

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/s2s"
)

// ReloadResult says what a reload did, as nats-server's reload logs each
// option it applied: the keys of the file whose values changed, split
// into those in force now and those that keep their old value until the
// next start.
type ReloadResult struct {
	// File is the file reloaded; "" for a configuration given by a
	// program.
	File string    `json:"file"`
	At   time.Time `json:"at"`
	// Applied are the changed keys now in force.
	Applied []string `json:"applied"`
	// Restart are the changed keys that take effect at the next start.
	Restart []string `json:"restart"`
}

// liveKeys are the configuration keys a reload applies; every other key
// (listeners, the state directory, the queue, DNS, DANE, the dialback
// secret, log format, and any section this table does not name, such as
// a cluster's) takes effect at the next start. An array of tables
// ([[certificate]], [[component]]) or a table of values (s2s.policies) is
// one key. How each applies:
//
//	server.domains          routed here at once; streams to removed domains stay until they end
//	server.log_level        at once
//	server.version          the next version query
//	s2s.policy, policies    the next authentication
//	s2s.ca_file             the next certificate check (the file is read again on every reload)
//	s2s.retry_for           the next attempt of every remote domain
//	s2s.queue_limit         the next stanza
//	s2s.idle_timeout        streams that start afterwards
//	s2s.max_connections*    the next connection
//	s2s.negotiation_timeout streams that start afterwards
//	s2s.write_timeout       streams that start afterwards
//	s2s.keepalive           outbound streams that start afterwards
//	s2s.ack_timeout         at once
//	certificate             the next TLS handshake (files are read again on every reload)
//	components.conflict     the next component handshake
//	components.write_timeout components that connect afterwards
//	component               the next component handshake; removed domains stop being routed
//	limits.*                streams and components that connect afterwards
//	metrics.pprof           the next request
//	shutdown.grace          the next shutdown
var liveKeys = map[string]bool{
	"server.domains": true, "server.log_level": true, "server.version": true,
	"s2s.policy": true, "s2s.policies": true, "s2s.ca_file": true,
	"s2s.retry_for": true, "s2s.queue_limit": true, "s2s.idle_timeout": true,
	"s2s.max_connections": true, "s2s.max_connections_per_ip": true,
	"s2s.negotiation_timeout": true, "s2s.write_timeout": true,
	"s2s.keepalive": true, "s2s.ack_timeout": true,
	"certificate": true, "components.conflict": true, "components.write_timeout": true, "component": true,
	"limits.max_stanza": true, "limits.max_depth": true, "limits.max_attributes": true,
	"limits.stanzas_per_second": true, "limits.rate_burst": true,
	"metrics.pprof": true, "shutdown.grace": true,
}

// ReloadApplies reports whether a reload applies the configuration key
// (as "s2s.retry_for"); false means the key takes effect at the next
// start.
func ReloadApplies(key string) bool { return liveKeys[key] }

// ConfigKeys returns every key of the configuration file, in file order:
// "section.key", or "section" for arrays of tables and tables of values.
func ConfigKeys() []string {
	var keys []string
	walkKeys(reflect.TypeFor[Config](), "", func(key string, _ []int) { keys = append(keys, key) })
	return keys
}

// walkKeys calls f with each leaf key of the TOML struct type t and the
// field index path to it. A struct whose fields have toml tags is a
// table; other values (Duration, slices, maps) are leaves.
func walkKeys(t reflect.Type, prefix string, f func(key string, index []int)) {
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			idx := append(slices.Clone(index), i)
			if sf.Type.Kind() == reflect.Struct && isTable(sf.Type) {
				walk(sf.Type, key, idx)
				continue
			}
			f(key, idx)
		}
	}
	walk(t, prefix, nil)
}

func isTable(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") != "" {
			return true
		}
	}
	return false
}

// changedKeys returns the keys whose values differ between a and b.
func changedKeys(a, b *Config) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	walkKeys(va.Type(), "", func(key string, index []int) {
		x, y := va.FieldByIndex(index), vb.FieldByIndex(index)
		if !reflect.DeepEqual(x.Interface(), y.Interface()) && !(empty(x) && empty(y)) {
			out = append(out, key)
		}
	})
	return out
}

// empty reports whether v is an empty slice or map: nil and empty are the
// same value in a file.
func empty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return false
}

// Reconfigure is Reload, and says what it did: which changed keys are in
// force and which wait for the next start; it logs both. On error the
// running configuration stays as it was, and the error is logged too.
func (n *Node) Reconfigure(cfg *Config) (*ReloadResult, error) {
	res, err := n.reconfigure(cfg)
	if err != nil {
		n.log.Error("reload failed; keeping the running configuration", "err", err)
	}
	return res, err
}

func (n *Node) reconfigure(cfg *Config) (*ReloadResult, error) {
	c, err := n.opts.prepare(cfg)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.cfg.Load()
	res := &ReloadResult{File: c.Path(), At: time.Now(), Applied: []string{}, Restart: []string{}}
	for _, k := range changedKeys(old, c) {
		if liveKeys[k] {
			res.Applied = append(res.Applied, k)
		} else {
			res.Restart = append(res.Restart, k)
		}
	}
	n.cfg.Store(c)
	if n.opts.Level != nil {
		n.opts.Level.Set(c.logLevel)
	}
	n.router.SetLocal(c.Server.Domains...)
	n.setComponents(c)
	n.applyLive(c)
	n.op.mu.Lock()
	n.op.reloaded, n.op.lastReload = res.At, res
	n.op.mu.Unlock()
	n.log.Info("configuration reloaded", "file", res.File, "domains", c.Server.Domains, "components", len(c.Component), "applied", res.Applied)
	if len(res.Restart) > 0 {
		n.log.Warn("configuration reloaded, but these keys take effect at the next restart", "keys", res.Restart)
	}
	return res, nil
}

// applyLive gives the parts the values of c that a reload applies and
// that they copied when New built them: the same fields, from the same
// keys, as New. Certificates, secrets, policies and the version answer
// are read from the running configuration each time, so n.cfg has them.
func (n *Node) applyLive(c *Config) {
	n.s2s.Update(func(s *s2s.Server) {
		s.Roots = c.roots
		s.Limits = c.limits()
		s.IdleTimeout = c.S2S.IdleTimeout.Duration
		s.NegotiationTimeout = c.S2S.Negotiation.Duration
		s.WriteTimeout = c.S2S.WriteTimeout.Duration
		s.MaxConns, s.MaxConnsPerIP = c.S2S.MaxConns, c.S2S.MaxConnsPerIP
		s.RateLimit, s.RateBurst = c.Limits.Rate, c.Limits.RateBurst
	})
	n.dialer.Update(func(d *s2s.Dialer) {
		d.Roots = c.roots
		d.NegotiationTimeout = c.S2S.Negotiation.Duration
		d.WriteTimeout = c.S2S.WriteTimeout.Duration
		d.Limits = c.limits()
	})
	n.pool.Update(func(p *s2s.Pool) {
		p.QueueLimit = c.S2S.QueueLimit
		p.RetryFor = orDur(c.S2S.RetryFor.Duration, time.Hour)
		p.IdleTimeout = c.S2S.IdleTimeout.Duration
		p.KeepAlive = c.S2S.KeepAlive.Duration
		p.AckTimeout = c.S2S.AckTimeout.Duration
	})
	n.comps.Update(func(s *component.Server) {
		s.Conflict = c.conflict
		s.WriteTimeout = c.Components.WriteTimeout.Duration
		s.Limits = c.limits()
		s.RateLimit, s.RateBurst = c.Limits.Rate, c.Limits.RateBurst
	})
}

// ReloadFile reloads the file the running configuration came from (the
// embedded default when it came from none), as SIGHUP and `s2sd ctl
// reload` do, and says what it did. A file that does not load keeps the
// running configuration; the error says why, and is logged.
func (n *Node) ReloadFile() (*ReloadResult, error) {
	old := n.cfg.Load()
	var c *Config
	var err error
	switch {
	case old.Path() != "":
		c, err = LoadConfig(old.Path())
	case old.IsDefault():
		c, err = DefaultConfig()
	default:
		err = errors.New("node: the running configuration was not loaded from a file: nothing to reload")
	}
	if err != nil {
		n.log.Error("reload failed; keeping the running configuration", "err", err)
		return nil, err
	}
	return n.Reconfigure(c)
}

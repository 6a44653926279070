package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Durability modes.
const (
	// Node: each node's queue file keeps the stanzas of the partitions
	// it owns.
	Node = "node"
	// Replicated: the queued stanzas are in a JetStream stream (Queue),
	// and the node that takes a partition over sends them.
	Replicated = "replicated"
)

// Config configures a node's membership of a cluster.
type Config struct {
	// Name names the node; unique in the cluster.
	Name string
	// URL, when set, joins an external NATS cluster (comma-separated
	// URLs) instead of embedding a server.
	URL string
	// Listen is the embedded server's route listener (host:port) and
	// Routes its peers' route listeners (host:port or nats-route URLs).
	Listen string
	Routes []string
	// Advertise is the route address the other nodes learn for this one
	// from their peers (NATS gossips it, and a node connects to the
	// nodes it learns of): set it when Listen is not how the others
	// reach this node (NAT, containers, a proxy).
	Advertise string
	// Client, when set, makes the embedded server also listen for NATS
	// clients there (tools); nodes themselves connect in-process.
	Client string
	// User and Password authenticate routes (embedded) or the connection
	// (external). TLS, when set, secures routes (embedded) or the
	// connection (external).
	User, Password string
	TLS            *tls.Config
	// StoreDir keeps the embedded server's JetStream data.
	StoreDir string
	// Replicas of the key-value buckets (default: the number of nodes the
	// routes name, at most 3).
	Replicas int
	// Partitions of the remote domains (default 64), the same on every
	// node.
	Partitions int
	// LeaseTTL is how long a member entry or a partition lease lives
	// without renewal (default 10s).
	LeaseTTL time.Duration
	// ForwardTimeout bounds one forwarded stanza's request (default 2s).
	ForwardTimeout time.Duration
	// ComponentGrace is how long a stanza for a component attached
	// nowhere waits for it (default 5s).
	ComponentGrace time.Duration
	// Durability is Node (default) or Replicated: where the stanzas
	// queued for remote domains are kept (docs/cluster.md).
	Durability string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Partitions <= 0 {
		c.Partitions = 64
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = 2 * time.Second
	}
	if c.ComponentGrace <= 0 {
		c.ComponentGrace = 5 * time.Second
	}
	if c.Replicas <= 0 {
		c.Replicas = min(3, 1+len(c.Routes))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Check reports what is wrong with c. Routes on an address other than
// loopback need TLS and authentication: they carry stanzas.
func (c *Config) Check() error {
	if c.Name == "" {
		return errors.New("cluster: a node needs a name")
	}
	switch c.Durability {
	case "", Node, Replicated:
	default:
		return fmt.Errorf("cluster: unknown durability %q (node, replicated)", c.Durability)
	}
	if c.URL != "" {
		return nil
	}
	if c.Listen == "" {
		return errors.New("cluster: listen (the route listener) or url is needed")
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("cluster: listen: %w", err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && (c.TLS == nil || c.User == "") {
		return fmt.Errorf("cluster: routes on %s (not loopback) need TLS and a user and password", c.Listen)
	}
	if c.StoreDir == "" {
		return errors.New("cluster: a JetStream store directory is needed")
	}
	return nil
}

// startServer starts the embedded NATS server.
func startServer(c *Config) (*server.Server, error) {
	host, port, err := splitPort(c.Listen)
	if err != nil {
		return nil, err
	}
	// Nodes connect in-process. The server still listens for clients (on
	// a random loopback port unless Client says where): its routes start
	// only once its client listener is up.
	o := &server.Options{
		ServerName: c.Name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   filepath.Join(c.StoreDir, "jetstream"),
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name:      "s2sd",
			Host:      host,
			Port:      port,
			Username:  c.User,
			Password:  c.Password,
			TLSConfig: c.TLS,
			Advertise: c.Advertise,
		},
	}
	if c.Durability == Replicated {
		// Every write to the stream is on disk before it is
		// acknowledged, on each replica: with the default interval an
		// acknowledged write can be lost when servers fail together.
		o.SyncAlways = true
	}
	if len(c.Routes) == 0 {
		// A node without routes is a cluster of one: NATS runs JetStream
		// clustered only with routes to other servers.
		o.Cluster = server.ClusterOpts{}
	}
	if c.Client != "" {
		h, p, err := splitPort(c.Client)
		if err != nil {
			return nil, err
		}
		o.Host, o.Port = h, p
	}
	for _, r := range c.Routes {
		u, err := routeURL(r, c)
		if err != nil {
			return nil, err
		}
		o.Routes = append(o.Routes, u)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats server: %w", err)
	}
	ns.SetLoggerV2(natsLog{c.Logger.With("component", "nats")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("cluster: the embedded nats server did not start")
	}
	return ns, nil
}

func splitPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: %q: %w", hp, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: %q: bad port", hp)
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	return h, n, nil
}

func routeURL(r string, c *Config) (*url.URL, error) {
	s := r
	if _, _, err := net.SplitHostPort(r); err == nil {
		s = "nats-route://" + r
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cluster: route %q: %w", r, err)
	}
	if c.User != "" && u.User == nil {
		u.User = url.UserPassword(c.User, c.Password)
	}
	return u, nil
}

// connect connects to the embedded server in-process, or to the external
// cluster.
func connect(c *Config, ns *server.Server) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("s2sd " + c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	url := c.URL
	if ns != nil {
		opts = append(opts, nats.InProcessServer(ns))
		url = ""
	} else {
		if c.User != "" {
			opts = append(opts, nats.UserInfo(c.User, c.Password))
		}
		if c.TLS != nil {
			opts = append(opts, nats.Secure(c.TLS))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect: %w", err)
	}
	return nc, nil
}

// natsLog sends the embedded server's log to slog.
type natsLog struct{ l *slog.Logger }

func (n natsLog) Noticef(f string, v ...any) { n.l.Debug(fmt.Sprintf(f, v...)) }
func (n natsLog) Warnf(f string, v ...any)   { n.l.Warn(fmt.Sprintf(f, v...)) }
func (n natsLog) Fatalf(f string, v ...any)  { n.l.Error(fmt.Sprintf(f, v...)) }
func (n natsLog) Errorf(f string, v ...any)  { n.l.Warn(fmt.Sprintf(f, v...)) }
func (n natsLog) Debugf(f string, v ...any)  {}
func (n natsLog) Tracef(f string, v ...any)  {}

// Package node assembles an s2sd federation server from its parts, as a
// library: cmd/s2sd is a thin binary around it, and a test or a cluster
// runs several nodes in one process. It follows nats-server's
// server.NewServer, Start and Shutdown.
//
// A Config is the s2sd configuration file (TOML): LoadConfig reads a file,
// ParseConfig takes the text, DefaultConfig is the embedded default. New
// builds a Node from a Config and Options; Start listens (127.0.0.1:0
// picks free ports, which S2SAddr, DirectTLSAddr, ComponentAddr and
// MetricsAddr report) and returns once the node accepts connections;
// Reload swaps the configuration without dropping streams; Shutdown stops
// gracefully and Close at once. Each node has its own Prometheus registry.
//
//	cfg, err := node.LoadConfig("s2sd.toml")
//	n, err := node.New(cfg, node.Options{Logger: log})
//	err = n.Start()
//	...
//	err = n.Shutdown(ctx) // ctx bounds the time queued stanzas get
//
// # Wiring
//
// Stanzas read by the s2s.Server (remote servers, RFC 6120) and by the
// component.Server (XEP-0114) go to one route.Router, with their Origin.
// The Router looks up the 'to' domain:
//
//	our domains        -> the node's services: disco (XEP-0030), ping
//	                      (XEP-0199), version (XEP-0092), errors
//	component domains  -> Options.WrapComponent(domain, component.Server)
//	any other domain   -> Options.WrapRemote(s2s.Pool)
//
// and never relays from one remote domain to another. The Pool brings up
// outbound streams through the s2s.Dialer and bounces what it cannot
// deliver through the Router. Router, Pool, S2SServer, ComponentServer and
// Dialer return the parts.
//
// # Seams for code built around a node
//
// A cluster of nodes serving the same domains wraps handlers rather than
// reaching inside, as CoreDNS plugins wrap plugin.Handler: Options
// installs, before New returns, a wrapper around the handler of remote
// domains (WrapRemote, given the *s2s.Pool) and one around the handler of
// each component domain (WrapComponent, given the domain and the
// *component.Server). Each wrapper receives every stanza
// the Router sends that way, with its Origin (a local component, or a
// remote domain on an authenticated stream), and may deliver it here
// through the handler it wraps or forward it to another node, whose Router
// takes it with the same Origin, so that the no-relay rule holds on every
// node. A component domain is routed to its wrapper whether or not its
// component is connected to this node: the wrapped component.Server
// returns route.ErrNotConnected when it is not; Options.OnComponent tells
// which components are attached here. Options.DialbackSecret
// gives nodes one dialback secret (XEP-0185), so that any of them
// verifies a key another issued.
//
// # Operators
//
// As nats-server serves /varz and /connz, a node tells what it does:
// Status returns its streams (authentication, TLS, counters), components,
// queues (depth, oldest, next retry, last error), process and cluster;
// the metrics listener serves it at /status (HTML) and /status.json, and
// a unix socket in the state directory, the control socket
// (docs/control.md), answers it to `s2sd status`, with the actions of
// `s2sd ctl`: CloseDomain, RetryDomain, BounceDomain and ReloadFile.
// Reconfigure (Reload) says which changed keys are in force and which
// wait for a restart (ReloadApplies). Check examines a configuration file
// and reports every problem, as prosodyctl check does.
//
// # Shutdown
//
// Shutdown stops taking stanzas in (components cannot connect, remote
// servers cannot authenticate new streams but may still verify dialback
// keys, which the draining streams need), gives the Pool until ctx ends to
// send what is queued, ends every stream with system-shutdown, closes the
// queue store and returns once the node's goroutines have ended.
package node

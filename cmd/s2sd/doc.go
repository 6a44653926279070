// Command s2sd is an XMPP federation daemon: it gives its domains
// server-to-server federation (RFC 6120, XEP-0220, XEP-0368) and routes
// stanzas between remote servers and the external components (XEP-0114)
// attached to it.
//
// Usage:
//
//	s2sd [-config FILE]         run (the embedded default without -config)
//	s2sd -t [-config FILE]      check a configuration and exit
//	s2sd -version               print the version and exit
//	s2sd diag [-json] DOMAIN    diagnose federation with DOMAIN
//
// SIGHUP reloads the configuration; SIGTERM shuts down gracefully. The
// daemon itself is package github.com/s2sd/s2sd/node; this command adds
// flags, signals and diagnostics.
package main

// Command s2sd is an XMPP federation daemon: it gives its domains
// server-to-server federation (RFC 6120, XEP-0220, XEP-0368) and routes
// stanzas between remote servers and the external components (XEP-0114)
// attached to it.
//
// Usage:
//
//	s2sd [-config FILE]                 run (the embedded default without -config)
//	s2sd -t [-dns] [-config FILE]       check a configuration, report every problem, exit
//	s2sd check [-dns] [-json] [-config FILE]   the same
//	s2sd -version                       print the version and exit
//	s2sd status [-json] [-config FILE]  what the running daemon does (control socket)
//	s2sd ctl [-config FILE] close|retry|bounce DOMAIN | reload
//	s2sd diag [-json] DOMAIN            diagnose federation with DOMAIN
//	s2sd help                           list the subcommands
//
// SIGHUP reloads the configuration, as `s2sd ctl reload` does (which also
// answers what changed); SIGTERM shuts down gracefully. status and ctl
// speak the JSON protocol of the control socket (docs/control.md). The
// daemon itself is package github.com/s2sd/s2sd/node; this command adds
// flags, signals, checks, the control client and diagnostics.
package main

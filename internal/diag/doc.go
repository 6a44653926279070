// Package diag is the engine of `s2sd diag DOMAIN`: it walks through what
// the daemon does to reach a remote XMPP domain and reports each step, for a
// federation admin to read (Report.WriteText) or a script to parse
// (encoding/json on the Report).
//
// Run reports, in order:
//
//   - DNS (RFC 6120 §3.2, XEP-0368): the _xmpps-server and _xmpp-server SRV
//     records with priority, weight, port and target, or that there were
//     none (and the fallback to DOMAIN:5269), a "." target (RFC 2782: no
//     service), or the DNS error; then the A and AAAA records of each
//     target host (s2s.Resolver.Diagnose);
//   - each connection attempt the s2s.Dialer makes: address, result, time;
//   - for each stream that got that far, the stream features before and
//     after TLS (RFC 6120 §4.3.2: STARTTLS and whether it is required, SASL
//     mechanisms, Server Dialback), the TLS version, cipher suite and ALPN,
//     the peer's certificate chain and whether it is valid for the domain
//     against the Dialer's roots (RFC 6125, XEP-0178), and the result of
//     authentication: SASL EXTERNAL (RFC 6120 §6) or Server Dialback
//     (XEP-0220);
//   - a verdict: OK, or the problems found.
//
// The steps come from the Dialer's Trace hooks (s2s.Trace), set on a copy of
// the daemon's own Dialer, so the diagnosis uses the same resolver, roots,
// certificates, policy and dialback secret as the daemon.
//
// # Dialback needs the running daemon
//
// Server Dialback is verified by the remote server calling back the
// authoritative server of our domain (XEP-0220 §2.3): the s2sd serving LOCAL,
// found through DNS. The key Run sends is made with the Dialer's secret, so
// the callback succeeds only when s2sd is running for LOCAL, is reachable from
// the remote, and uses the same secret (the same configuration). Run
// standalone, with no s2sd serving LOCAL, dialback fails, and the report says
// so plainly: "dialback: the remote could not verify our key — is s2sd
// running for LOCAL and reachable?". SASL EXTERNAL, used when both
// certificates are valid, needs no callback.
package diag

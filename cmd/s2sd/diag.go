package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/s2sd/s2sd/internal/diag"
	"github.com/s2sd/s2sd/s2s"
)

// diagMain runs `s2sd diag [-json] [-config FILE] [-from DOMAIN] DOMAIN`: it
// resolves, connects to and authenticates with DOMAIN using the daemon's
// own resolver, dialer, certificates and policy, and reports each step.
// Exit status: 0 when a stream authenticated without problems, 1 when
// problems were found, 2 on usage or configuration errors.
func diagMain(args []string) int {
	fs := flag.NewFlagSet("s2sd diag", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cfgPath := fs.String("config", "", "configuration `file` whose certificates, CA bundle, DNS servers and dialback secret to use")
	from := fs.String("from", "", "our `domain` to connect as (default: the configuration's first domain)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	verbose := fs.Bool("v", false, "log each step to stderr as well")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: s2sd diag [-json] [-config FILE] [-from DOMAIN] DOMAIN")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err == nil {
		err = cfg.prepareState()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "s2sd diag:", err)
		return 2
	}
	local := *from
	if local == "" {
		local = cfg.anyDomain()
	}
	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := &s2s.Dialer{
		Resolver: &s2s.Resolver{Servers: cfg.S2S.DNS, Logger: log, CacheSize: -1, TrustAD: cfg.S2S.DANE},
		DANE:     cfg.S2S.DANE,
		GetCertificate: func(domain string) (*tls.Certificate, error) {
			return cfg.certFor(domain), nil
		},
		Roots:  cfg.roots,
		Policy: cfg.policyFor,
		Secret: cfg.dbSecret,
		Limits: cfg.limits(),
		Logger: log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := diag.Run(ctx, d, local, fs.Arg(0))
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		r.WriteText(os.Stdout)
	}
	if !r.OK {
		return 1
	}
	return 0
}

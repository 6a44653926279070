package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/s2sd/s2sd/internal/diag"
	"github.com/s2sd/s2sd/node"
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
	cfg, err := node.LoadConfig(*cfgPath)
	if err == nil {
		err = cfg.Prepare()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "s2sd diag:", err)
		return 2
	}
	local := *from
	if local == "" {
		local = cfg.AnyDomain()
	}
	if *cfgPath == "" && *from == "" {
		// Without the daemon's configuration the test speaks as the
		// embedded default's domain, which a remote server cannot reach
		// back (dialback) nor find a certificate for.
		fmt.Fprintf(os.Stderr, "s2sd diag: no -config: testing as %q with a self-signed certificate; pass -config (or -from) to test as your domain\n", local)
	}
	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The daemon's own dialer, without its resolver cache: diag reports
	// what DNS says now.
	d := cfg.Dialer(log)
	d.Resolver.CacheSize = -1
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

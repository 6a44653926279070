package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/s2sd/s2sd/internal/gcfloor"
	"github.com/s2sd/s2sd/node"
)

var version = "0.1.0-dev"

func main() {
	if code, ok := subcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	fs := flag.NewFlagSet("s2sd", flag.ExitOnError)
	cfgPath := fs.String("config", "", "configuration `file` (TOML); without it, the embedded default")
	check := fs.Bool("t", false, "check the configuration, report every problem, and exit (1 on errors)")
	checkDNS := fs.Bool("dns", false, "with -t: also check the DNS records of the served and component domains")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		usage(fs.Output())
		fmt.Fprintln(fs.Output(), "\nflags:")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "s2sd: unknown subcommand or argument %q\n\n", fs.Arg(0))
		fs.Usage()
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("s2sd", version)
		return
	}
	if *check {
		os.Exit(checkFile(*cfgPath, *checkDNS, false))
	}
	cfg, err := node.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s2sd:", err)
		os.Exit(1)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "s2sd:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT; SIGHUP reloads the file cfg came
// from. A bad file keeps the running configuration.
func run(cfg *node.Config) error {
	if os.Getenv("GOGC") == "" {
		// The collector's policy (docs/operating.md, "Memory and the
		// garbage collector"): free pages go back to the system once
		// s2sd is quiet, and a floor keeps the goal from small sizes.
		defer gcfloor.StartRelease().Stop()
		switch floor := cfg.GCHeapFloor(); {
		case floor > 0:
			defer gcfloor.Start(floor, cfg.Server.GCPercent).Stop()
		case cfg.Server.GCPercent > 0:
			debug.SetGCPercent(cfg.Server.GCPercent)
		}
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg, level)
	n, err := node.New(cfg, node.Options{Logger: log, Level: level, Version: version})
	if err == nil {
		err = n.Start()
	}
	if err != nil {
		return err
	}
	greet(n)
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s != syscall.SIGHUP {
			break
		}
		// The node logs what changed, what waits for a restart, and a
		// failure.
		n.ReloadFile()
	}
	signal.Stop(sig)
	ctx, cancel := context.WithTimeout(context.Background(), n.Config().ShutdownGrace())
	defer cancel()
	// The node logs what did not stop in time; the stop was still orderly.
	n.Shutdown(ctx)
	return nil
}

func newLogger(c *node.Config, level *slog.LevelVar) *slog.Logger {
	level.Set(c.LogLevel())
	opts := &slog.HandlerOptions{Level: level}
	if c.Server.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// greet tells, on the embedded default, how to attach a component and how
// to go to production.
func greet(n *node.Node) {
	cfg := n.Config()
	if !cfg.IsDefault() {
		return
	}
	addr := ""
	if a := n.ComponentAddr(); a != nil {
		addr = a.String()
	}
	for _, c := range cfg.Component {
		// The embedded default prints its generated component secret
		// once, on purpose: it is the laptop setup's only credential.
		secret, _ := cfg.Secret(c.Domain)
		fmt.Fprintf(os.Stderr, "\nAttach a component (XEP-0114): connect to %s as %s with secret %s\n", addr, c.Domain, secret)
		fmt.Fprintf(os.Stderr, "  e.g. in Go: component.Dial(ctx, %q, %q, SECRET)\n", addr, c.Domain)
	}
	fmt.Fprintf(os.Stderr, "To go to production: copy s2sd.example.toml, set your domains, certificates and public listeners, check it with `s2sd -t -config FILE`, and run `s2sd -config FILE`.\n\n")
}

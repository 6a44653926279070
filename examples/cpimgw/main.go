// Command cpimgw is an example CPIM gateway: an XEP-0114 component of
// s2sd (or Prosody, or ejabberd) that turns the stanzas sent to its domain
// into Message/CPIM objects (RFC 3862) and PIDF documents (RFC 3863),
// mapped by RFC 3922, and hands them to a sink; and that sends the
// Message/CPIM objects dropped in an inbox directory back to XMPP.
//
//	cpimgw -addr 127.0.0.1:5347 -domain gw.example.org -secret-file /etc/cpimgw/secret \
//	    -sink dir:/var/spool/cpimgw/out -inbox /var/spool/cpimgw/in
//
// See README.md and package gateway.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/examples/cpimgw/gateway"
)

type config struct {
	addr, domain, secret string
	sink                 string
	inbox                string
	poll                 time.Duration
	presenceCPIM         bool
	log                  *slog.Logger
	stdout               io.Writer

	// onConnect is called after each handshake (tests).
	onConnect func()
}

func main() {
	cfg, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpimgw:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		cfg.log.Error("cpimgw: exiting", "err", err)
		os.Exit(1)
	}
}

func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var (
		cfg        config
		secretFile string
		level      = new(slog.LevelVar)
	)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:5347", "the server's component port, host:port")
	fs.StringVar(&cfg.domain, "domain", "", "the component's domain (required)")
	fs.StringVar(&cfg.secret, "secret", "", "the component secret (visible in ps; prefer -secret-file)")
	fs.StringVar(&secretFile, "secret-file", "", "file holding the component secret")
	fs.StringVar(&cfg.sink, "sink", "stdout", "where objects go: stdout, dir:PATH or http:URL")
	fs.StringVar(&cfg.inbox, "inbox", "", "directory of Message/CPIM objects to send to XMPP (none if empty)")
	fs.DurationVar(&cfg.poll, "poll", gateway.DefaultPoll, "how often the inbox is read")
	fs.BoolVar(&cfg.presenceCPIM, "presence-cpim", false, "wrap PIDF documents in Message/CPIM, keeping the presence's recipient")
	fs.TextVar(level, "log-level", level, "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.domain == "" {
		return cfg, errors.New("-domain is required")
	}
	switch {
	case cfg.secret != "" && secretFile != "":
		return cfg, errors.New("-secret and -secret-file are exclusive")
	case secretFile != "":
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return cfg, err
		}
		cfg.secret = strings.TrimSpace(string(b))
	}
	if cfg.secret == "" {
		return cfg, errors.New("-secret or -secret-file is required")
	}
	cfg.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.stdout = os.Stdout
	return cfg, nil
}

// run connects the gateway and serves until ctx ends.
func run(ctx context.Context, cfg config) error {
	log := cfg.log
	if log == nil {
		log = slog.Default()
	}
	sink, err := gateway.ParseSink(cfg.sink, cfg.stdout)
	if err != nil {
		return err
	}
	if ds, ok := sink.(*gateway.DirSink); ok {
		if err := os.MkdirAll(ds.Dir, 0o750); err != nil {
			return err
		}
	}
	gw := &gateway.Gateway{Domain: cfg.domain, Sink: sink, PresenceAsCPIM: cfg.presenceCPIM, Logger: log}
	comp := &component.Component{
		Addr: cfg.addr, Domain: cfg.domain, Secret: cfg.secret,
		Handler: gw,
		Logger:  log,
	}
	if cfg.onConnect != nil {
		comp.OnConnect = func(*component.Conn) { cfg.onConnect() }
	}
	gw.Sender = comp
	log.Info("cpimgw: starting", "domain", cfg.domain, "remote", cfg.addr, "sink", sinkKind(cfg.sink), "inbox", cfg.inbox)

	var wg sync.WaitGroup
	if cfg.inbox != "" {
		if err := os.MkdirAll(filepath.Join(cfg.inbox, gateway.FailedDir), 0o750); err != nil {
			return err
		}
		in := &gateway.Inbox{Dir: cfg.inbox, Gateway: gw, Poll: cfg.poll, Logger: log}
		wg.Go(func() {
			if err := in.Run(ctx); ctx.Err() == nil {
				log.Error("cpimgw: inbox stopped", "err", err)
			}
		})
	}
	err = comp.Run(ctx)
	wg.Wait()
	return err
}

// sinkKind names the sink without its URL, which may carry a token.
func sinkKind(spec string) string {
	if strings.HasPrefix(spec, "http") {
		return "http"
	}
	return spec
}

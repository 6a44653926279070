// Command omemobot is an example OMEMO component: an echo bot that answers
// every OMEMO-encrypted message with an encrypted "echo: " reply.
//
// It is an XEP-0114 component of s2sd (or Prosody, ejabberd), so its JID is
// the component's domain. A component has no PEP service: the bot answers
// the pubsub items requests for its device list and bundle nodes itself,
// and asks its correspondents' PEP services for theirs.
//
//	OMEMOBOT_SECRET=s3cret omemobot -addr 127.0.0.1:5347 -domain omemobot.example.org -store omemobot.db
//
// Its state (identity key, pre-keys, sessions) is kept in the bbolt file
// -store. It uses blind trust before verification; its fingerprint is
// logged at start.
//
// Like the package e2e/omemo it is built on, omemobot links
// go.mau.fi/libsignal and is distributed under the terms of the GNU GPL
// version 3.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/e2e/omemo"
)

func main() {
	addr := flag.String("addr", component.DefaultAddr, "the server's component port, host:port")
	domain := flag.String("domain", "", "the component's domain, which is the bot's JID (required)")
	store := flag.String("store", "omemobot.db", "the bbolt file that keeps the bot's OMEMO state")
	flag.Parse()
	secret := os.Getenv("OMEMOBOT_SECRET") // not a flag: flags show in ps
	if *domain == "" || secret == "" {
		fmt.Fprintln(os.Stderr, "omemobot: -domain and $OMEMOBOT_SECRET are required")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *domain, secret, *store, slog.Default()); err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("omemobot", "err", err)
		os.Exit(1)
	}
}

// run connects the bot and serves until ctx ends.
func run(ctx context.Context, addr, domain, secret, path string, log *slog.Logger) error {
	st, err := omemo.OpenBoltStore(path, omemo.BoltOptions{})
	if err != nil {
		return err
	}
	defer st.Close()
	c := &component.Component{Addr: addr, Domain: domain, Secret: secret, Logger: log}
	bot, err := newBot(ctx, domain, st, c.Send, log)
	if err != nil {
		return err
	}
	c.Handler = bot
	go bot.Run(ctx)
	return c.Run(ctx)
}

// newBot opens (or creates) the bot's device in st.
func newBot(ctx context.Context, domain string, st omemo.Store, send func([]byte) error, log *slog.Logger) (*Bot, error) {
	bot := &Bot{Send: send, Logger: log}
	dev, err := omemo.Open(ctx, omemo.Config{JID: domain, Store: st, FetchBundle: bot.FetchBundle, Logger: log})
	if err != nil {
		return nil, err
	}
	bot.Device = dev
	if _, err := dev.Maintain(ctx); err != nil {
		return nil, err
	}
	log.Info("omemobot: OMEMO device", "jid", domain, "device", dev.ID(), "fingerprint", dev.Fingerprint())
	return bot, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/e2e/omemo"
	"github.com/s2sd/s2sd/route"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	botDomain = "omemobot.example.org"
	alice     = "alice@example.org"
	aliceFull = alice + "/phone"
	secret    = "s3cret"
)

// TestBot runs the bot as a component of a component.Server on loopback.
// The test plays the server side and a user, alice, with an OMEMO device of
// her own: it answers the bot's requests to alice's PEP service, asks the
// bot for its device list and bundle, and chats with it.
func TestBot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	fromBot := make(chan *route.Stanza, 16)
	var srv *component.Server
	var dev *omemo.Device // alice's device
	connected := make(chan struct{}, 1)
	srv = &component.Server{
		Secret: func(d string) (string, bool) { return secret, d == botDomain },
		Logger: quiet,
		Handler: route.HandlerFunc(func(ctx context.Context, st *route.Stanza) error {
			// What the bot asks alice's PEP service is answered here.
			if st.Kind == "iq" && st.Type == "get" && st.To.String() == alice {
				node, _, err := parseItems(st.El.Raw)
				if err != nil {
					return err
				}
				var payload []byte
				switch node {
				case omemo.NodeDeviceList:
					payload = dev.WithSelf(nil).AppendXML(nil)
				case omemo.NodeBundle(dev.ID()):
					b, err := dev.Bundle(ctx)
					if err != nil {
						return err
					}
					payload = b.AppendXML(nil)
				default:
					t.Errorf("the bot asked for node %s", node)
				}
				return deliver(ctx, srv, fmt.Sprintf("<iq type='result' from='%s' to='%s' id='%s'><pubsub xmlns='%s'><items node='%s'><item id='current'>%s</item></items></pubsub></iq>",
					alice, st.From, st.ID, NSPubsub, node, payload))
			}
			fromBot <- st
			return nil
		}),
		OnConnect: func(string) { connected <- struct{}{} },
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	c := &component.Component{Addr: l.Addr().String(), Domain: botDomain, Secret: secret, Logger: quiet}
	bot, err := newBot(ctx, botDomain, &omemo.MemStore{}, c.Send, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.Handler = bot
	go bot.Run(ctx)
	go c.Run(ctx)
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("the bot did not connect")
	}

	// await returns the next stanza the bot sends.
	await := func() *route.Stanza {
		t.Helper()
		select {
		case st := <-fromBot:
			return st
		case <-ctx.Done():
			t.Fatal("no stanza from the bot")
			return nil
		}
	}
	// fetch asks the bot's "PEP service" for a node.
	fetch := func(node string) (*route.Stanza, []byte) {
		t.Helper()
		if err := deliver(ctx, srv, fmt.Sprintf("<iq type='get' from='%s' to='%s' id='q1'><pubsub xmlns='%s'><items node='%s'/></pubsub></iq>",
			aliceFull, botDomain, NSPubsub, node)); err != nil {
			t.Fatal(err)
		}
		st := await()
		if st.Kind != "iq" || st.ID != "q1" {
			t.Fatalf("got %s, want the answer to q1", st)
		}
		if st.IsError() {
			return st, nil
		}
		_, items, err := parseItems(st.El.Raw)
		if err != nil || len(items) != 1 {
			t.Fatalf("items: %v, %d", err, len(items))
		}
		return st, items[0]
	}

	dev, err = omemo.Open(ctx, omemo.Config{
		JID: alice, Store: &omemo.MemStore{}, Logger: quiet,
		FetchBundle: func(_ context.Context, jid string, id uint32) (*omemo.Bundle, error) {
			_, item := fetch(omemo.NodeBundle(id))
			return omemo.ParseBundle(item)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, item := fetch(omemo.NodeDeviceList)
	list, err := omemo.ParseDeviceList(item)
	if err != nil || len(list.Devices) != 1 || list.Devices[0] != bot.Device.ID() {
		t.Fatalf("the bot's device list: %+v, %v", list, err)
	}
	if err := dev.SetDeviceList(ctx, botDomain, list); err != nil {
		t.Fatal(err)
	}
	if st, _ := fetch(omemo.NodeBundle(bot.Device.ID() + 1)); !st.IsError() || !strings.Contains(string(st.El.Raw), "item-not-found") {
		t.Fatalf("a node the bot does not have: %s", st.El.Raw)
	}

	for i := range 5 {
		text := fmt.Sprintf("hello %d", i)
		e, err := dev.Encrypt(ctx, []byte(text), botDomain)
		if err != nil {
			t.Fatal(err)
		}
		if (i == 0) != e.Keys[0].PreKey {
			t.Fatalf("message %d: pre-key %v", i, e.Keys[0].PreKey)
		}
		msg := fmt.Sprintf("<message type='chat' from='%s' to='%s' id='m%d'>%s<body>fallback</body></message>", aliceFull, botDomain, i, e.AppendXML(nil))
		if err := deliver(ctx, srv, msg); err != nil {
			t.Fatal(err)
		}
		st := await()
		if st.Kind != "message" || st.To.String() != aliceFull || st.From.String() != botDomain {
			t.Fatalf("got %s", st)
		}
		reply, err := omemo.FindEncrypted(st.El.Raw)
		if err != nil || reply == nil {
			t.Fatalf("reply %s: %v", st.El.Raw, err)
		}
		m, err := dev.Decrypt(ctx, botDomain, reply)
		if err != nil {
			t.Fatal(err)
		}
		if want := "echo: " + text; string(m.Plaintext) != want || m.Fingerprint != bot.Device.Fingerprint() {
			t.Fatalf("got %q from %s, want %q from %s", m.Plaintext, m.Fingerprint, want, bot.Device.Fingerprint())
		}
	}
}

func deliver(ctx context.Context, srv *component.Server, raw string) error {
	st, err := route.New([]byte(raw), "jabber:server")
	if err != nil {
		return err
	}
	return srv.Deliver(ctx, st)
}

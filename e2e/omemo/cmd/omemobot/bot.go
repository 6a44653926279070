package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/s2sd/s2sd/e2e/omemo"
	"github.com/s2sd/s2sd/route"
	"github.com/s2sd/s2sd/stanza"
)

// NSPubsub is the XEP-0060 namespace of the items requests the bot answers
// and sends.
const NSPubsub = "http://jabber.org/protocol/pubsub"

// Bot is an OMEMO echo bot, the route.Handler of a component. A component
// has no PEP service, so the bot answers XEP-0060 items requests for its
// own device list and bundle nodes itself, sent to its JID; it fetches the
// device lists and bundles of its correspondents with the same requests,
// sent to their bare JIDs (their PEP services). Each encrypted message is
// answered with an encrypted "echo: " reply to every device of the sender.
type Bot struct {
	// Device is the bot's OMEMO device; its JID is the component's domain.
	Device *omemo.Device
	// Send writes a stanza to the server (Component.Send).
	Send func(raw []byte) error
	// Timeout bounds each request to a correspondent's PEP service
	// (default 10s).
	Timeout time.Duration
	// Logger; nil means slog.Default(). Message bodies are never logged.
	Logger *slog.Logger

	once    sync.Once
	queue   chan queued
	mu      sync.Mutex
	pending map[string]chan *route.Stanza
}

type queued struct {
	from string // the sender's full JID
	raw  []byte
}

var _ route.Handler = (*Bot)(nil)

func (b *Bot) init() {
	b.once.Do(func() {
		b.queue = make(chan queued, 64)
		b.pending = make(map[string]chan *route.Stanza)
	})
}

func (b *Bot) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.Default()
}

// Run decrypts and answers queued messages, in the order they came, until
// ctx ends. Deliver only queues them: answering needs requests whose
// results arrive through Deliver, on the stream's reading goroutine.
func (b *Bot) Run(ctx context.Context) error {
	b.init()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case q := <-b.queue:
			if err := b.answer(ctx, q); err != nil {
				b.logger().Warn("omemobot: message not answered", "from", q.from, "err", err)
			}
		}
	}
}

// Deliver implements route.Handler.
func (b *Bot) Deliver(ctx context.Context, st *route.Stanza) error {
	b.init()
	switch st.Kind {
	case "iq":
		switch st.Type {
		case "result", "error":
			b.mu.Lock()
			ch := b.pending[st.ID]
			delete(b.pending, st.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- st
			}
			return nil
		case "get":
			return b.items(ctx, st)
		}
		return stanza.New(stanza.ServiceUnavailable, "")
	case "message":
		if st.IsError() {
			return nil
		}
		select {
		case b.queue <- queued{from: st.From.String(), raw: slices.Clone(st.El.Raw)}:
			return nil
		default:
			return stanza.New(stanza.ResourceConstraint, "too many messages waiting")
		}
	}
	return nil
}

// pubsubItems is the part of an items request or result the bot reads.
type pubsubItems struct {
	Pubsub *struct {
		Items *struct {
			Node string `xml:"node,attr"`
			Item []struct {
				Inner []byte `xml:",innerxml"`
			} `xml:"item"`
		} `xml:"items"`
	} `xml:"http://jabber.org/protocol/pubsub pubsub"`
}

func parseItems(raw []byte) (node string, items [][]byte, err error) {
	var v pubsubItems
	dec := xml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&v); err != nil {
		return "", nil, err
	}
	if v.Pubsub == nil || v.Pubsub.Items == nil {
		return "", nil, errors.New("no pubsub items")
	}
	for _, it := range v.Pubsub.Items.Item {
		items = append(items, it.Inner)
	}
	return v.Pubsub.Items.Node, items, nil
}

// items answers an items request for the bot's device list or bundle
// (XEP-0060 §6.5.2; XEP-0384 0.3 §4.2, §4.3).
func (b *Bot) items(ctx context.Context, st *route.Stanza) error {
	node, _, err := parseItems(st.El.Raw)
	if err != nil {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	var payload []byte
	switch node {
	case omemo.NodeDeviceList:
		payload = b.Device.WithSelf(nil).AppendXML(nil)
	case omemo.NodeBundle(b.Device.ID()):
		bu, err := b.Device.Bundle(ctx)
		if err != nil {
			return err
		}
		payload = bu.AppendXML(nil)
	default:
		return stanza.New(stanza.ItemNotFound, "")
	}
	r := fmt.Appendf(nil, "<iq type='result' from='%s' to='%s' id='%s'><pubsub xmlns='%s'><items node='%s'><item id='current'>",
		esc(st.To.String()), esc(st.From.String()), esc(st.ID), NSPubsub, esc(node))
	r = append(r, payload...)
	r = append(r, "</item></items></pubsub></iq>"...)
	return b.Send(r)
}

func esc(s string) []byte { return stanza.AppendEscaped(nil, s) }

// request sends an items request for node to jid and returns the payloads
// of the items.
func (b *Bot) request(ctx context.Context, jid, node string) ([][]byte, error) {
	b.init()
	id := make([]byte, 8)
	rand.Read(id)
	sid := hex.EncodeToString(id)
	ch := make(chan *route.Stanza, 1)
	b.mu.Lock()
	b.pending[sid] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, sid)
		b.mu.Unlock()
	}()
	req := fmt.Appendf(nil, "<iq type='get' from='%s' to='%s' id='%s'><pubsub xmlns='%s'><items node='%s'/></pubsub></iq>",
		esc(b.Device.JID()), esc(jid), sid, NSPubsub, esc(node))
	if err := b.Send(req); err != nil {
		return nil, err
	}
	to := b.Timeout
	if to <= 0 {
		to = 10 * time.Second
	}
	t := time.NewTimer(to)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("no answer from %s for %s", jid, node)
	case st := <-ch:
		if st.IsError() {
			if e, err := stanza.ParseError(st.El.Inner()); err == nil {
				return nil, e
			}
			return nil, fmt.Errorf("error from %s for %s", jid, node)
		}
		_, items, err := parseItems(st.El.Raw)
		return items, err
	}
}

// FetchBundle fetches a device's bundle from its account's PEP service; it
// is the Device's Config.FetchBundle.
func (b *Bot) FetchBundle(ctx context.Context, jid string, device uint32) (*omemo.Bundle, error) {
	items, err := b.request(ctx, jid, omemo.NodeBundle(device))
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errors.New("empty bundle node")
	}
	return omemo.ParseBundle(items[len(items)-1])
}

// refreshDeviceList fetches and records the device list of jid.
func (b *Bot) refreshDeviceList(ctx context.Context, jid string) error {
	items, err := b.request(ctx, jid, omemo.NodeDeviceList)
	if err != nil {
		return err
	}
	l := &omemo.DeviceList{}
	if len(items) > 0 {
		if l, err = omemo.ParseDeviceList(items[len(items)-1]); err != nil {
			return err
		}
	}
	return b.Device.SetDeviceList(ctx, jid, l)
}

func bare(full string) string {
	for i := 0; i < len(full); i++ {
		if full[i] == '/' {
			return full[:i]
		}
	}
	return full
}

// answer decrypts one message and sends the encrypted echo.
func (b *Bot) answer(ctx context.Context, q queued) error {
	e, err := omemo.FindEncrypted(q.raw)
	if err != nil {
		return err
	}
	if e == nil {
		return nil // not an OMEMO message: chat states and the like
	}
	from := bare(q.from)
	m, err := b.Device.Decrypt(ctx, from, e)
	if err != nil {
		return err
	}
	log := b.logger().With("from", q.from, "device", m.Device, "fingerprint", m.Fingerprint, "trust", m.Trust)
	if m.Plaintext == nil {
		log.Info("omemobot: empty message")
		if m.PreKey {
			// Tell the sender the session is up, or it keeps sending
			// pre-key messages.
			ack, err := b.Device.EmptyMessage(ctx, from, m.Device)
			if err != nil {
				return err
			}
			return b.Send(b.message(q.from, ack, false))
		}
		return nil
	}
	log.Info("omemobot: message", "bytes", len(m.Plaintext))
	l, err := b.Device.DeviceList(ctx, from)
	if err != nil {
		return err
	}
	if !l.Contains(m.Device) {
		if err := b.refreshDeviceList(ctx, from); err != nil {
			return fmt.Errorf("device list of %s: %w", from, err)
		}
	}
	reply, err := b.Device.Encrypt(ctx, append([]byte("echo: "), m.Plaintext...), from)
	if err != nil {
		return err
	}
	return b.Send(b.message(q.from, reply, true))
}

// message wraps an encrypted element in a chat message to full JID to.
func (b *Bot) message(to string, e *omemo.Encrypted, body bool) []byte {
	id := make([]byte, 8)
	rand.Read(id)
	r := fmt.Appendf(nil, "<message type='chat' from='%s' to='%s' id='%x'>", esc(b.Device.JID()), esc(to), id)
	r = e.AppendXML(r)
	if body {
		// XEP-0384 0.3 §4.5: a body for clients without OMEMO; XEP-0380
		// names the encryption; XEP-0334 asks the server to store it.
		r = append(r, "<body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that.</body>"+
			"<encryption xmlns='urn:xmpp:eme:0' namespace='"+omemo.NS+"' name='OMEMO'/>"+
			"<store xmlns='urn:xmpp:hints'/>"...)
	}
	return append(r, "</message>"...)
}

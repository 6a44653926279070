package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	mxml "mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Client is a user logged in to a peer server over c2s (RFC 6120 client
// streams, through mellium.im/xmpp): STARTTLS without verification (the
// peers use self-signed certificates on loopback), SASL PLAIN, resource
// binding. Received stanzas arrive on In as raw XML.
type Client struct {
	JID  jid.JID
	sess *xmpp.Session
	In   chan Stanza
}

// Stanza is a received stanza: its name and attributes, and the raw XML.
type Stanza struct {
	Name  string
	Attrs map[string]string
	Raw   string
}

// DialClient logs in as j with password at addr and sends initial
// presence. The session ends with the test.
func DialClient(t testing.TB, addr string, j jid.JID, password string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("c2s dial %s: %v", addr, err)
	}
	sess, err := xmpp.NewClientSession(ctx, j, conn,
		xmpp.StartTLS(&tls.Config{ServerName: j.Domainpart(), InsecureSkipVerify: true}),
		xmpp.SASL("", password, sasl.Plain),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		t.Fatalf("c2s login as %s: %v", j, err)
	}
	c := &Client{JID: sess.LocalAddr(), sess: sess, In: make(chan Stanza, 100)}
	go sess.Serve(xmpp.HandlerFunc(func(r mxml.TokenReadEncoder, start *xml.StartElement) error {
		var buf bytes.Buffer
		enc := xml.NewEncoder(&buf)
		enc.EncodeToken(*start)
		mxml.Copy(enc, mxml.Inner(r))
		enc.EncodeToken(start.End())
		enc.Flush()
		st := Stanza{Name: start.Name.Local, Attrs: map[string]string{}, Raw: buf.String()}
		for _, a := range start.Attr {
			st.Attrs[a.Name.Local] = a.Value
		}
		select {
		case c.In <- st:
		default:
		}
		return nil
	}))
	t.Cleanup(func() { sess.Close(); conn.Close() })
	if err := c.Send("<presence/>"); err != nil {
		t.Fatalf("initial presence: %v", err)
	}
	return c
}

// Send sends a raw stanza.
func (c *Client) Send(raw string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.sess.Send(ctx, xml.NewDecoder(strings.NewReader(raw)))
}

// Expect waits for a stanza for which match returns true, skipping others.
func (c *Client) Expect(t testing.TB, timeout time.Duration, match func(Stanza) bool) Stanza {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case st := <-c.In:
			if match(st) {
				return st
			}
		case <-deadline:
			t.Fatalf("%s: expected stanza not received within %v", c.JID, timeout)
			return Stanza{}
		}
	}
}

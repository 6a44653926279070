package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	mxml "mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/route"
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
	// The session starts as the domain alone: Prosody echoes the header's
	// 'from' as 'to', which mellium parses with jid.Parse; the user's
	// address, which jid.Parse may refuse (see bindResource), goes in
	// SASL and comes back from resource binding.
	sess, err := xmpp.NewClientSession(ctx, j.Domain(), conn,
		xmpp.StartTLS(&tls.Config{ServerName: j.Domainpart(), InsecureSkipVerify: true}),
		saslPlain(j.Localpart(), password),
		bindResource(),
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

const (
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
)

// saslPlain authenticates as user with SASL PLAIN (RFC 6120 §6.4, RFC
// 4616). xmpp.SASL takes the username from the session's address, which
// DialClient keeps to the domain.
func saslPlain(user, password string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsSASL, Local: "mechanisms"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			var m struct {
				List []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanism"`
			}
			err := d.DecodeElement(&m, start)
			return true, m.List, err
		},
		Negotiate: func(_ context.Context, sess *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
			if list, _ := data.([]string); !slices.Contains(list, "PLAIN") {
				return 0, nil, fmt.Errorf("interop: PLAIN not offered (%v)", list)
			}
			auth := xml.StartElement{Name: xml.Name{Space: nsSASL, Local: "auth"}, Attr: []xml.Attr{{Name: xml.Name{Local: "mechanism"}, Value: "PLAIN"}}}
			c := sasl.NewClient(sasl.Plain, sasl.Credentials(func() ([]byte, []byte, []byte) {
				return []byte(user), []byte(password), nil
			}))
			_, resp, err := c.Step(nil)
			if err != nil {
				return 0, nil, err
			}
			cred := base64.StdEncoding.EncodeToString(resp)
			if err := writeTokens(sess, auth, xml.CharData(cred), auth.End()); err != nil {
				return 0, nil, err
			}
			start, d, done, err := readStart(sess)
			if err != nil {
				return 0, nil, err
			}
			defer done()
			if err := d.Skip(); err != nil {
				return 0, nil, err
			}
			if start.Name.Space != nsSASL || start.Name.Local != "success" {
				return 0, nil, fmt.Errorf("interop: SASL PLAIN as %s: %s", user, start.Name.Local)
			}
			// A new stream follows (RFC 6120 §6.4.6).
			return xmpp.Authn, sess.Conn(), nil
		},
	}
}

// writeTokens writes toks on the session and flushes them.
func writeTokens(sess *xmpp.Session, toks ...xml.Token) error {
	w := sess.TokenWriter()
	defer w.Close()
	for _, tok := range toks {
		if err := w.EncodeToken(tok); err != nil {
			return err
		}
	}
	return w.Flush()
}

// readStart reads up to the next start element on the session; done
// releases the session's reader.
func readStart(sess *xmpp.Session) (xml.StartElement, *xml.Decoder, func() error, error) {
	r := sess.TokenReader()
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			r.Close()
			return xml.StartElement{}, nil, nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return start, d, r.Close, nil
		}
	}
}

// bindResource is xmpp.BindResource for a client (RFC 6120 §7), except that
// the address the server binds is parsed with route.ParseJID: jid.Parse
// refuses addresses such as 2ème@prosody.test (golang.org/x/text applies
// the Bidi Rule to every non-ASCII localpart), and mellium's bind fails
// on them.
func bindResource() xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, sess *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			const id = "bind-1"
			iq := xml.StartElement{Name: xml.Name{Space: "jabber:client", Local: "iq"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "type"}, Value: "set"},
				{Name: xml.Name{Local: "id"}, Value: id},
			}}
			b := xml.StartElement{Name: xml.Name{Space: nsBind, Local: "bind"}}
			if err := writeTokens(sess, iq, b, b.End(), iq.End()); err != nil {
				return 0, nil, err
			}
			start, d, done, err := readStart(sess)
			if err != nil {
				return 0, nil, err
			}
			defer done()
			var resp struct {
				Type string `xml:"type,attr"`
				ID   string `xml:"id,attr"`
				JID  string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
			}
			if err := d.DecodeElement(&resp, &start); err != nil {
				return 0, nil, err
			}
			if start.Name.Local != "iq" || resp.ID != id || resp.Type != "result" {
				return 0, nil, fmt.Errorf("interop: bind answered with %s type=%q id=%q", start.Name.Local, resp.Type, resp.ID)
			}
			j, err := route.ParseJID(resp.JID)
			if err != nil {
				return 0, nil, fmt.Errorf("interop: bound address %q: %w", resp.JID, err)
			}
			sess.UpdateAddr(j)
			return xmpp.Ready, nil, nil
		},
	}
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

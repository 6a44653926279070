package cpim

import (
	"errors"
	"testing"
)

// TestSubscriptionFromStanza: XMPP subscription requests become the
// operations RFC 3922 §6.1.1 and §6.3 name, bare JIDs as pres: URIs.
func TestSubscriptionFromStanza(t *testing.T) {
	for _, tc := range []struct {
		stanza string
		want   Subscription
	}{
		{`<presence xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net' type='subscribe' id='sub1'/>`,
			Subscription{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net", Duration: Forever, TransID: "sub1"}},
		{`<presence from='juliet@example.com' to='romeo@example.net/orchard' type='unsubscribe'/>`,
			Subscription{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net"}},
		// unsubscribed comes from the target: it ends the subscription of
		// the one it is sent to.
		{`<presence xmlns='jabber:server' from='romeo@example.net' to='juliet@example.com' type='unsubscribed' id='u'/>`,
			Subscription{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net", TransID: "u"}},
		{`<presence from='o#27;malley@example.com' to='romeo@example.net' type='subscribe'/>`,
			Subscription{Watcher: "pres:o%27malley@example.com", Target: "pres:romeo@example.net", Duration: Forever}},
	} {
		got, err := SubscriptionFromStanza([]byte(tc.stanza))
		if err != nil {
			t.Errorf("%s: %v", tc.stanza, err)
			continue
		}
		if *got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.stanza, *got, tc.want)
		}
	}
	for _, tc := range []struct {
		stanza string
		want   error
	}{
		{`<presence from='a@b' to='c@d' type='subscribed'/>`, ErrNotMappable},
		{`<presence from='a@b' to='c@d'/>`, ErrNotMappable},
		{`<presence from='a@b' type='subscribe'/>`, ErrNotMappable},
		{`<presence from='b' to='c@d' type='subscribe'/>`, ErrAddress},
		{`<presence from='a@@b' to='c@d' type='subscribe'/>`, ErrAddress},
		{`<message from='a@b' to='c@d' type='subscribe'/>`, ErrSyntax},
		{`<presence from='a@b' to='c@d' type='subscribe'>`, ErrSyntax},
	} {
		if _, err := SubscriptionFromStanza([]byte(tc.stanza)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.stanza, err, tc.want)
		}
	}
}

// TestSubscriptionStanza: a watcher outside XMPP subscribes to and
// unsubscribes from an XMPP user (RFC 3922 §6.2.1, §6.3), and the XMPP
// side reads it back as the same operation.
func TestSubscriptionStanza(t *testing.T) {
	for _, tc := range []struct {
		s    Subscription
		want string
	}{
		{Subscription{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net", Duration: Forever, TransID: "t1"},
			`<presence xmlns='jabber:server' from='juliet@example.com' to='romeo@example.net' type='subscribe' id='t1'/>`},
		{Subscription{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net", Duration: 3600e9},
			`<presence xmlns='jabber:server' from='juliet@example.com' to='romeo@example.net' type='subscribe'/>`},
		{Subscription{Watcher: "pres:o%27malley@example.com", Target: "pres:romeo@example.net", TransID: "a<b"},
			`<presence xmlns='jabber:server' from='o#27;malley@example.com' to='romeo@example.net' type='unsubscribe' id='a&lt;b'/>`},
	} {
		got, err := tc.s.Stanza(NSServer)
		if err != nil || string(got) != tc.want {
			t.Errorf("%+v:\n got %s (%v)\nwant %s", tc.s, got, err, tc.want)
			continue
		}
		back, err := SubscriptionFromStanza(got)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.s
		if want.Duration != 0 {
			want.Duration = Forever
		}
		if *back != want {
			t.Errorf("read back %+v, want %+v", *back, want)
		}
	}
	bad := []Subscription{
		{Watcher: "im:juliet@example.com", Target: "pres:romeo@example.net"},
		{Watcher: "pres:juliet@example.com", Target: "pres:example.net"},
		{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net", TransID: "\x00"},
	}
	for _, s := range bad {
		if _, err := s.Stanza(NSClient); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if _, err := (&Subscription{Watcher: "pres:a@b", Target: "pres:c@d"}).Stanza("urn:other"); !errors.Is(err, ErrSyntax) {
		t.Errorf("unknown namespace: %v", err)
	}
}

// TestSubscriptionAnswers: each result travels to an XMPP watcher as RFC
// 3922 §6.1.2 to §6.1.4 say, and an XMPP user's answer to a watcher outside
// XMPP reads back as the same result (§6.2.2 to §6.2.4).
func TestSubscriptionAnswers(t *testing.T) {
	s := &Subscription{Watcher: "pres:juliet@example.com", Target: "pres:romeo@example.net", Duration: Forever, TransID: "s1"}
	want := map[SubscriptionResult]string{
		Approved:      `<presence xmlns='jabber:client' from='romeo@example.net' to='juliet@example.com' type='subscribed' id='s1'/>`,
		Denied:        `<presence xmlns='jabber:client' from='romeo@example.net' to='juliet@example.com' type='unsubscribed' id='s1'/>`,
		UnknownTarget: `<presence xmlns='jabber:client' from='romeo@example.net' to='juliet@example.com' type='error' id='s1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
		Forbidden:     `<presence xmlns='jabber:client' from='romeo@example.net' to='juliet@example.com' type='error' id='s1'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
		Exists:        `<presence xmlns='jabber:client' from='romeo@example.net' to='juliet@example.com' type='error' id='s1'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	}
	for r, w := range want {
		got, err := s.Answer(r, NSClient)
		if err != nil || string(got) != w {
			t.Errorf("%v:\n got %s (%v)\nwant %s", r, got, err, w)
			continue
		}
		back, br, err := SubscriptionAnswer(got)
		if err != nil || br != r || back.Watcher != s.Watcher || back.Target != s.Target || back.TransID != s.TransID {
			t.Errorf("%v read back as %v %+v (%v)", r, br, back, err)
		}
	}
	if _, err := s.Answer(SubscriptionResult(42), NSClient); err == nil {
		t.Error("unknown result accepted")
	}
	for _, stanza := range []string{
		`<presence from='romeo@example.net' to='juliet@example.com' type='subscribe'/>`,
		`<presence from='romeo@example.net' to='juliet@example.com' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
		`<presence from='romeo@example.net' to='juliet@example.com' type='error'/>`,
	} {
		if _, _, err := SubscriptionAnswer([]byte(stanza)); !errors.Is(err, ErrNotMappable) {
			t.Errorf("%s: %v, want ErrNotMappable", stanza, err)
		}
	}
}

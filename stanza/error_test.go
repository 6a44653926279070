package stanza_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/s2sd/s2sd/stanza"
)

func TestErrorRoundTrip(t *testing.T) {
	tests := []*stanza.Error{
		0: {Condition: stanza.ServiceUnavailable},
		1: {Condition: stanza.RemoteServerNotFound, By: "example.net", Text: "no <route> & no hope"},
		2: {Type: stanza.Modify, Condition: stanza.NotAcceptable, Text: "stale", Lang: "en", App: []byte("<bad-timestamp xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/>")},
	}
	for i, e := range tests {
		got, err := stanza.ParseError(e.AppendXML(nil))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got.Condition != e.Condition || got.Text != e.Text || got.By != e.By || string(got.Type) != string(e.Condition.DefaultType()) && e.Type == "" {
			t.Errorf("%d: got %+v, want %+v", i, got, e)
		}
		if e.App != nil && string(got.App) != string(e.App) {
			t.Errorf("%d: app %s, want %s", i, got.App, e.App)
		}
		if !errors.Is(fmt.Errorf("wrapped: %w", got), &stanza.Error{Condition: e.Condition}) {
			t.Errorf("%d: errors.Is does not match the condition", i)
		}
		if errors.Is(got, &stanza.Error{Condition: stanza.Conflict}) {
			t.Errorf("%d: matches another condition", i)
		}
	}
}

func TestDefaultTypes(t *testing.T) {
	for c, want := range map[stanza.Condition]stanza.Type{
		stanza.BadRequest: stanza.Modify, stanza.Forbidden: stanza.Auth, stanza.RemoteServerTimeout: stanza.Wait,
		stanza.ServiceUnavailable: stanza.Cancel, stanza.RemoteServerNotFound: stanza.Cancel,
	} {
		if got := c.DefaultType(); got != want {
			t.Errorf("%s: %s, want %s (RFC 6120 §8.3.3)", c, got, want)
		}
	}
}

func ExampleError() {
	e := &stanza.Error{Condition: stanza.RemoteServerNotFound, By: "example.net", Text: "no SRV or A record"}
	fmt.Println(string(e.AppendXML(nil)))
	// Output:
	// <error type='cancel' by='example.net'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no SRV or A record</text></error>
}

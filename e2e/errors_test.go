package e2e_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/s2sd/s2sd/e2e"
)

func TestErrorIs(t *testing.T) {
	cause := errors.New("boom")
	for i, tc := range []struct {
		err    error
		target error
		want   bool
	}{
		0: {e2e.Wrap(e2e.ErrBadTimestamp, cause), e2e.ErrBadTimestamp, true},
		1: {e2e.Wrap(e2e.ErrBadTimestamp, cause), e2e.ErrSignatureUnverified, false},
		2: {e2e.Wrap(e2e.ErrBadTimestamp, cause), cause, true},
		3: {e2e.Wrap(e2e.ErrDecryptionFailed, cause), e2e.ErrDecryptionFailed, true},
		4: {e2e.Wrap(e2e.ErrDecryptionFailed, nil), e2e.ErrServiceUnavailable, false},
		5: {fmt.Errorf("wrapped: %w", e2e.Wrap(e2e.ErrSignatureUnverified, cause)), e2e.ErrSignatureUnverified, true},
		// A target without E2E matches on the defined condition alone.
		6: {e2e.ErrSignatureUnverified, &e2e.Error{Condition: "not-acceptable"}, true},
		7: {&e2e.Error{Type: "modify", Condition: "not-acceptable"}, e2e.ErrBadTimestamp, false},
		8: {e2e.ErrServiceUnavailable, io.EOF, false},
	} {
		if got := errors.Is(tc.err, tc.target); got != tc.want {
			t.Errorf("%d: errors.Is(%v, %v) = %v", i, tc.err, tc.target, got)
		}
	}
	var ee *e2e.Error
	if !errors.As(fmt.Errorf("x: %w", e2e.Wrap(e2e.ErrBadTimestamp, cause)), &ee) || ee.E2E != e2e.BadTimestamp || ee.Err != cause {
		t.Errorf("errors.As: %#v", ee)
	}
	if s := e2e.Wrap(e2e.ErrBadTimestamp, cause).Error(); s != "e2e: not-acceptable (bad-timestamp): boom" {
		t.Errorf("Error() = %q", s)
	}
}

// TestStanzaError: the four RFC 3923 §7 errors, as sent, round-trip through
// ParseError, StanzaError, MarshalXML and UnmarshalXML.
func TestStanzaError(t *testing.T) {
	for _, tc := range []struct {
		err  *e2e.Error
		want string
	}{
		{e2e.ErrServiceUnavailable, `<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`},
		{e2e.ErrBadTimestamp, `<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><bad-timestamp xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error>`},
		{e2e.ErrSignatureUnverified, `<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><signature-unverified xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error>`},
		{e2e.ErrDecryptionFailed, `<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><decryption-failed xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error>`},
	} {
		if got := string(tc.err.StanzaError()); got != tc.want {
			t.Errorf("StanzaError\n got %s\nwant %s", got, tc.want)
		}
		back, err := e2e.ParseError([]byte(tc.want))
		if err != nil {
			t.Fatal(err)
		}
		if *back != *tc.err {
			t.Errorf("ParseError = %#v, want %#v", back, tc.err)
		}
		m, err := xml.Marshal(tc.err)
		if err != nil {
			t.Fatal(err)
		}
		var u e2e.Error
		if err := xml.Unmarshal(m, &u); err != nil {
			t.Fatal(err)
		}
		if u != *tc.err {
			t.Errorf("xml round trip of %s = %#v", m, u)
		}
	}
}

// TestParseErrorVariants: the element names and namespaces of RFC 3923
// Examples 16 to 18 and of its schema are all accepted.
func TestParseErrorVariants(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want *e2e.Error
	}{
		// Example 16
		0: {`<error type='modify'>
    <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <bad-timestamp xmlns='urn:ietf:params:xml:xmpp-e2e'/>
  </error>`, e2e.ErrBadTimestamp},
		// Example 17
		1: {`<error type='modify'>
    <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <unverified-signature xmlns='urn:ietf:params:xml:xmpp-e2e'/>
  </error>`, e2e.ErrSignatureUnverified},
		// Example 18
		2: {`<error type='modify'>
    <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <decryption-failed xmlns='urn:ietf:params:xml:xmpp-e2e'/>
  </error>`, e2e.ErrDecryptionFailed},
		3: {`<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><unverified-signature xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error>`, e2e.ErrSignatureUnverified},
		4: {`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`, e2e.ErrServiceUnavailable},
	} {
		got, err := e2e.ParseError([]byte(tc.in))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if *got != *tc.want {
			t.Errorf("%d: %#v, want %#v", i, got, tc.want)
		}
	}
	for i, in := range []string{
		``,
		`<iq/>`,
		`<error type='modify'/>`,
		`<!DOCTYPE error><error/>`,
		`<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`,
	} {
		if got, err := e2e.ParseError([]byte(in)); err == nil {
			t.Errorf("bad %d: ParseError = %#v", i, got)
		}
	}
}

func FuzzParseError(f *testing.F) {
	for _, e := range []*e2e.Error{e2e.ErrServiceUnavailable, e2e.ErrBadTimestamp, e2e.ErrSignatureUnverified, e2e.ErrDecryptionFailed} {
		f.Add(e.StanzaError())
	}
	f.Add([]byte(`<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><unverified-signature xmlns='urn:ietf:params:xml:xmpp-e2e'/></error>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := e2e.ParseError(b)
		if err != nil {
			return
		}
		// Re-encoding parses to the same value when the condition is a
		// plain XML name.
		if xml.Unmarshal([]byte("<"+e.Condition+"/>"), new(struct{})) != nil {
			return
		}
		back, err := e2e.ParseError(e.StanzaError())
		if err != nil || *back != *e {
			t.Fatalf("%s -> %#v -> %s -> %#v, %v", b, e, e.StanzaError(), back, err)
		}
	})
}

func ExampleError_StanzaError() {
	fmt.Printf("%s\n", e2e.ErrBadTimestamp.StanzaError())
	fmt.Printf("%s\n", e2e.ErrDecryptionFailed.StanzaError())
	// Output:
	// <error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><bad-timestamp xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error>
	// <error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><decryption-failed xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/></error>
}

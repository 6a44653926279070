package diag

import (
	"encoding/xml"
	"slices"
	"strings"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	for i, c := range []struct {
		raw  string
		want Features
	}{
		0: {
			raw:  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
			want: Features{StartTLS: true, StartTLSRequired: true, Dialback: true},
		},
		1: {
			raw:  "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism> <mechanism> PLAIN </mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback><bidi xmlns='urn:xmpp:features:bidi'/></stream:features>",
			want: Features{SASLMechanisms: []string{"EXTERNAL", "PLAIN"}, Dialback: true, DialbackErrors: true, Other: []string{"{urn:xmpp:features:bidi}bidi"}},
		},
		2: {
			raw:  "<stream:features/>",
			want: Features{},
		},
		3: {
			raw:  "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
			want: Features{Error: "not stream features: <starttls>"},
		},
	} {
		got := parseFeatures(c.raw)
		if got.StartTLS != c.want.StartTLS || got.StartTLSRequired != c.want.StartTLSRequired ||
			got.Dialback != c.want.Dialback || got.DialbackErrors != c.want.DialbackErrors ||
			!slices.Equal(got.SASLMechanisms, c.want.SASLMechanisms) && len(c.want.SASLMechanisms)+len(got.SASLMechanisms) > 0 ||
			!slices.Equal(got.Other, c.want.Other) || got.Error != c.want.Error || got.Raw != c.raw {
			t.Errorf("%d: parseFeatures = %+v, want %+v", i, got, c.want)
		}
	}
	if f := parseFeatures("<stream:features><starttls"); !strings.HasPrefix(f.Error, "unparsable stream features") {
		t.Errorf("bad XML: %+v", f)
	}
}

func TestSASLCondition(t *testing.T) {
	for in, want := range map[string]string{
		"SASL EXTERNAL failed: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>":         "not-authorized",
		"SASL EXTERNAL failed: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\n <invalid-authzid/><text>x</text>": "invalid-authzid",
		"SASL EXTERNAL failed: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>":                                   "",
		"SASL EXTERNAL failed: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></failure>":                          "",
		"unexpected success during SASL": "",
	} {
		if got := saslCondition(in); got != want {
			t.Errorf("saslCondition(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseFeatures: no panic, bounded raw, and every feature found is
// really in the element.
func FuzzParseFeatures(f *testing.F) {
	for _, s := range []string{
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
		"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>",
		"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
		"<features xmlns='http://etherx.jabber.org/streams'><x xmlns='y'/></features>",
		"<stream:features/>",
		"<",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := parseFeatures(raw)
		if len(got.Raw) > maxRaw+len("…") {
			t.Fatalf("raw kept %d bytes", len(got.Raw))
		}
		if got.Error != "" {
			return
		}
		if err := xml.Unmarshal([]byte(raw), new(struct{})); err != nil {
			t.Fatalf("parsed features from XML that does not parse: %v", err)
		}
		if got.StartTLSRequired && !got.StartTLS {
			t.Fatal("STARTTLS required but not offered")
		}
		if got.DialbackErrors && !got.Dialback {
			t.Fatal("dialback errors without dialback")
		}
		for _, m := range got.SASLMechanisms {
			if m == "" || !strings.Contains(raw, "mechanism") {
				t.Fatalf("mechanism %q from %q", m, raw)
			}
		}
		_ = got.summary()
	})
}

package route_test

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/route"
)

// TestParseJID: the localpart profile is UsernameCaseMapped (RFC 8265
// §3.3) with the Bidi Rule (RFC 5893 §2) applied only to strings that
// contain a right-to-left character, as its Directionality Rule says.
// Whatever mellium.im/xmpp/jid.Parse accepts parses to the same value.
func TestParseJID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when refused
	}{
		// Left-to-right localparts that start with a digit (issue 19):
		// x/text applies the Bidi Rule to them and refuses them.
		{"2ème@example.fr", "2ème@example.fr"},
		{"1é@example.org", "1é@example.org"},
		{"1e@example.org", "1e@example.org"},
		{"2ÈME@Example.FR.", "2ème@example.fr"},      // case, trailing dot
		{"2e\u0300me@example.fr", "2ème@example.fr"}, // NFC
		{"\uFF12ème@example.fr", "2ème@example.fr"},  // width
		{"2ème@example.fr/Ressource ☃", "2ème@example.fr/Ressource ☃"},
		{"2ème@xn--exmple-cua.example", "2ème@exämple.example"},
		{"2ème@[::1]", "2ème@[::1]"},
		{"Ἀχιλλεύς@example.com", "ἀχιλλεύς@example.com"},
		// Right-to-left localparts: the Bidi Rule applies.
		{"שלום@example.org", "שלום@example.org"},
		{"مرحبا@example.org", "مرحبا@example.org"},
		{"שלום1@example.org", "שלום1@example.org"}, // EN may end an RTL label (rule 3)
		{"1שלום@example.org", ""},                  // must start with L, R or AL (rule 1)
		{"١٢٣@example.org", ""},                    // AN alone is RTL, and may not start it
		{"שלוםabc@example.org", ""},                // L in an RTL label (rule 2)
		{"א1١@example.org", ""},                    // EN and AN together (rule 4)
		{"2èmeש@example.org", ""},                  // RTL somewhere: the whole rule
		// What jid.New refuses, refused here too.
		{"a'b@example.org", ""},
		{"2è&me@example.org", ""},
		{"x\u00A0y@example.org", ""},
		{"\xff@example.org", ""},
		{"2ème@example.fr/\xff", ""},
		{strings.Repeat("é", 511) + "a@example.org", strings.Repeat("é", 511) + "a@example.org"},
		{strings.Repeat("é", 512) + "@example.org", ""},
		{"2ème@example.fr/" + strings.Repeat("r", 1024), ""},
		{"@example.fr", ""},
		{"2ème@", ""},
		{"2ème@example.fr/", ""},
		{"2ème@exa..mple.fr", ""},
	} {
		j, err := route.ParseJID(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%q: parsed to %q, want an error", tc.in, j)
		case tc.want != "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && j.String() != tc.want:
			t.Errorf("%q: parsed to %q, want %q", tc.in, j, tc.want)
		}
		if mj, merr := jid.Parse(tc.in); merr == nil && !errors.Is(err, route.ErrBadDomain) && (err != nil || !j.Equal(mj)) {
			t.Errorf("%q: jid.Parse gives %q, ParseJID %q (%v)", tc.in, mj, j, err)
		}
		if err == nil {
			j2, err := route.ParseJID(j.String())
			if err != nil || !j2.Equal(j) {
				t.Errorf("%q: %q parses to %q (%v)", tc.in, j, j2, err)
			}
		}
	}
}

// TestParseJIDParts: the parts of a parsed address are those jid.New
// would give, so that Bare, Domain and the accessors work on them.
func TestParseJIDParts(t *testing.T) {
	j, err := route.ParseJID("2ÈME@Example.FR/balcon")
	if err != nil {
		t.Fatal(err)
	}
	if j.Localpart() != "2ème" || j.Domainpart() != "example.fr" || j.Resourcepart() != "balcon" {
		t.Fatalf("parts %q %q %q", j.Localpart(), j.Domainpart(), j.Resourcepart())
	}
	if j.Bare().String() != "2ème@example.fr" || j.Domain().String() != "example.fr" {
		t.Fatalf("bare %q, domain %q", j.Bare(), j.Domain())
	}
	// From the cache, the same value.
	if j2, err := route.ParseJID("2ÈME@Example.FR/balcon"); err != nil || !j2.Equal(j) {
		t.Fatalf("second parse: %q, %v", j2, err)
	}
}

package cpim

import (
	"errors"
	"testing"
)

// The (derived) address table of the digest, B.1, and more.
func TestAddressMapping(t *testing.T) {
	for i, tc := range []struct {
		jid, im, back string
	}{
		0: {"juliet@example.com", "im:juliet@example.com", "juliet@example.com"},
		1: {"romeo-montague@example.net", "im:romeo%2Dmontague@example.net", "romeo-montague@example.net"},
		2: {"o#27;malley@example.com", "im:o%27malley@example.com", "o#27;malley@example.com"},
		3: {"at#26;t@example.com", "im:at%26t@example.com", "at#26;t@example.com"},
		4: {"élise@example.com", "im:%C3%A9lise@example.com", "élise@example.com"},
		5: {"juliet@example.com/balcony", "im:juliet@example.com", "juliet@example.com"},
		6: {"a#2f;b@example.com", "im:a%2Fb@example.com", "a#2f;b@example.com"},
		7: {"Juliet@Example.COM", "im:juliet@example.com", "juliet@example.com"},
		8: {"x!$*.?_~+=@example.com", "im:x!$*.?_~+=@example.com", "x!$*.?_~+=@example.com"},
	} {
		im, err := XMPPToIM(tc.jid)
		if err != nil || im != tc.im {
			t.Errorf("%d: XMPPToIM(%q) = %q, %v; want %q", i, tc.jid, im, err, tc.im)
		}
		back, err := IMToXMPP(tc.im)
		if err != nil || back != tc.back {
			t.Errorf("%d: IMToXMPP(%q) = %q, %v; want %q", i, tc.im, back, err, tc.back)
		}
		pres, err := XMPPToPres(tc.jid)
		if err != nil || pres != "pres:"+tc.im[3:] {
			t.Errorf("%d: XMPPToPres(%q) = %q, %v", i, tc.jid, pres, err)
		}
		if back, err := PresToXMPP(pres); err != nil || back != tc.back {
			t.Errorf("%d: PresToXMPP(%q) = %q, %v", i, pres, back, err)
		}
	}
	// Decoding is case-insensitive; the scheme too.
	if j, err := IMToXMPP("IM:o%27Malley@example.com"); err != nil || j != "o#27;malley@example.com" {
		t.Errorf("IMToXMPP lower hex = %q, %v", j, err)
	}
	for i, bad := range []string{
		0: "example.com", // no localpart
		1: "@example.com",
		2: "juliet@",
		3: "a\"b@example.com",
	} {
		if _, err := XMPPToIM(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("%d: XMPPToIM(%q) error %v", i, bad, err)
		}
	}
	for i, bad := range []string{
		0: "pres:juliet@example.com", // wrong scheme
		1: "im:example.com",
		2: "im:%zzjuliet@example.com",
		3: "im:%C3@example.com",   // not UTF-8
		4: "im:a%3Cb@example.com", // '<' cannot be in a localpart
		5: "im:juliet@",
		6: "im:juliet%4",
	} {
		if _, err := IMToXMPP(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("%d: IMToXMPP(%q) error %v", i, bad, err)
		}
	}
}

package openpgp

import (
	"errors"
	"strings"
	"testing"
)

// The examples of XEP-0027 v1.4. Their keys are not published, so they are
// parse vectors: the armor is restored, the packets are read, and the
// verdict names the key.
const (
	// §2, "A signed presence stanza": v3 DSA/SHA-1 text signature by key
	// 7A25DDDF3CA99EFB over "Online".
	xepSignedPresence = `<presence from='pgmillard@jabber.org/wj_dev2' to='jer@jabber.org'>
  <status>Online</status>
  <x xmlns='jabber:x:signed'>
    iQA/AwUBOjU5dnol3d88qZ77EQI2JACfRngLJ045brNnaCX78ykKNUZaTIoAoPHI
    2uJxPMGR73EBIvEpcv0LRSy+
    =45f8
  </x>
</presence>`

	// §3, "An encrypted message stanza": ElGamal PKESK to 5FB8E66199E77265
	// and a symmetrically encrypted data packet without MDC.
	xepEncryptedMessage = `<message to='reatmon@jabber.org/jarl' from='pgmillard@jabber.org/wj_dev2'>
  <body>This message is encrypted.</body>
  <x xmlns='jabber:x:encrypted'>
    qANQR1DBwU4DX7jmYZnncmUQB/9KuKBddzQH+tZ1ZywKK0yHKnq57kWq+RFtQdCJ
    WpdWpR0uQsuJe7+vh3NWn59/gTc5MDlX8dS9p0ovStmNcyLhxVgmqS8ZKhsblVeu
    IpQ0JgavABqibJolc3BKrVtVV1igKiX/N7Pi8RtY1K18toaMDhdEfhBRzO/XB0+P
    AQhYlRjNacGcslkhXqNjK5Va4tuOAPy2n1Q8UUrHbUd0g+xJ9Bm0G0LZXyvCWyKH
    kuNEHFQiLuCY6Iv0myq6iX6tjuHehZlFSh80b5BVV9tNLwNR5Eqz1klxMhoghJOA
    w7R61cCPt8KSd8Vcl8K+StqOMZ5wkhosVjUqvEu8uJ9RupdpB/4m9E3gOQZCBsmq
    OsX4/jJhn2wIsfYYWdqkbNKnuYoKCnwrlmn6I+wX72p0R8tTv8peNCwK9bEtL/XS
    mhn4bCxoUkCITv3k8a+Jdvbov9ucduKSFuCBq4/l0fpHmPhHQjkFofxmaWJveFfF
    619NXyYyCfoLTmWk2AaTHVCjtKdf1WmwcTa0vFfk8BuFHkdah6kJJiJ7w/yNwa/E
    O6CMymuZTr/LpcKKWrWCt+SErxqmq8ekPI8h7oNwMxZBYAa7OJ1rXWKNgL9pDtNI
    824Mf0mXj7q5N1eMHvX1QEoKLAda/Ae3TTEevOyeUK1DEgvxfM2KRZ11RzU+XtIE
    My/bJk7EycAw8P/QKyeNlO1fxP58VEd6Gb8NCPqKOYn/LKh1O+c20ZNVEPFM4bNV
    XA4hB4UtFF7Ao8kpdlrUqdKyw4lEtnmdemYQ6+iIIVPEarWl9PxOMY90KAnZrSAq
    bt9uRY/1rPgelRaWblMKvxgpRO8++Y8VjdEyGgMOXxOiE851Ve72ftGzkSxDH8mW
    TgY3pf2aATmBp3lagQ1COkGS/xupovT5AQPA3RzbCxDvc6s6eGYKmVVQVj5vmSj1
    WULad5MB9KT1DzCm6FOSy063nWGBYYMWiejRvGLpo1j4eAnj0qOt7rTWmgv3RkYF
    Oin0vDOhW7aC
    =CvnG</x>
</message>`
)

func TestXEPSignedPresence(t *testing.T) {
	c := config(t, "alice.sec.asc")
	_, err := c.VerifyPresence([]byte(xepSignedPresence))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "v3 signature") ||
		!strings.Contains(err.Error(), "7A25DDDF3CA99EFB") || !strings.Contains(err.Error(), "DSA") {
		t.Fatalf("VerifyPresence(XEP example) = %v, want a refusal of the v3 DSA signature by 7A25DDDF3CA99EFB", err)
	}
	// Even with every legacy option: go-crypto does not read v3 signatures.
	c.AllowDSA, c.AllowSHA1 = true, true
	if _, err := c.VerifyPresence([]byte(xepSignedPresence)); !errors.Is(err, ErrRefused) {
		t.Fatalf("with legacy options: %v", err)
	}
}

func TestXEPEncryptedMessage(t *testing.T) {
	c := config(t, "alice.sec.asc")
	_, _, err := c.DecryptMessage([]byte(xepEncryptedMessage))
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "5FB8E66199E77265") {
		t.Fatalf("DecryptMessage(XEP example) = %v, want ErrNoKey naming 5FB8E66199E77265", err)
	}
}

func TestXEPArmor(t *testing.T) {
	const want = `-----BEGIN PGP SIGNATURE-----

iQA/AwUBOjU5dnol3d88qZ77EQI2JACfRngLJ045brNnaCX78ykKNUZaTIoAoPHI
2uJxPMGR73EBIvEpcv0LRSy+
=45f8
-----END PGP SIGNATURE-----
`
	wire := "\n    iQA/AwUBOjU5dnol3d88qZ77EQI2JACfRngLJ045brNnaCX78ykKNUZaTIoAoPHI\n    2uJxPMGR73EBIvEpcv0LRSy+\n    =45f8\n  "
	got, err := Armor(wire, SignatureBlock)
	if err != nil || got != want {
		t.Fatalf("Armor = %q, %v; want %q", got, err, want)
	}
	// The CRC of the example is right.
	if _, err := decodeWire(wire, SignatureBlock, 0); err != nil {
		t.Fatalf("decodeWire: %v", err)
	}
	stripped, typ, err := StripArmor(got)
	if err != nil || typ != SignatureBlock || stripped != strings.Join(strings.Fields(wire), "\n") {
		t.Fatalf("StripArmor = %q, %q, %v", stripped, typ, err)
	}
}

package openpgp

import (
	"bytes"
	"strings"
	"testing"
)

func checkErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !strings.HasPrefix(err.Error(), "openpgp: ") {
		t.Errorf("%s: error %q lacks the package prefix", what, err)
	}
}

// FuzzParseWire feeds the armor and packet parsers: no panic, errors of
// this package, and wire text that decodes re-encodes to the same data.
func FuzzParseWire(f *testing.F) {
	c := config(f, "alice.sec.asc", "legacy.pub.asc")
	c.MaxStanzaSize = 64 << 10
	alice := c.Keys.Keys()[0]
	sig, err := c.SignStatus("Online")
	if err != nil {
		f.Fatal(err)
	}
	msg, err := c.EncryptBody("secret", alice)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig)
	f.Add(msg)
	f.Add(sig[:len(sig)/2])
	f.Add(strings.Replace(sig, "=", "=A", 1))
	f.Add("iQA/AwUBOjU5dnol3d88qZ77EQI2JACfRngLJ045brNnaCX78ykKNUZaTIoAoPHI\n2uJxPMGR73EBIvEpcv0LRSy+\n=45f8")
	f.Add(xepEncryptedMessage[strings.Index(xepEncryptedMessage, "qANQ"):strings.Index(xepEncryptedMessage, "</x>")])
	f.Add(readTestdata(f, "legacy-dsa.sig.asc"))
	f.Add(readTestdata(f, "legacy-nomdc.msg.asc"))
	f.Add("-----BEGIN PGP SIGNATURE-----\nVersion: x\n\nAAAA\n-----END PGP SIGNATURE-----")
	f.Add("")
	f.Add("=")
	f.Fuzz(func(t *testing.T, wire string) {
		if data, err := decodeWire(wire, SignatureBlock, c.maxSize()); err == nil {
			again, err := decodeWire(encodeWire(data), SignatureBlock, 0)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("re-encoded wire does not decode to the same data: %v", err)
			}
		} else {
			checkErr(t, "decodeWire", err)
		}
		_, err := c.VerifyStatus("Online", wire)
		checkErr(t, "VerifyStatus", err)
		_, err = c.DecryptBody(wire)
		checkErr(t, "DecryptBody", err)
		if a, err := Armor(wire, MessageBlock); err == nil {
			w, typ, err := StripArmor(a)
			if err != nil || typ != MessageBlock {
				t.Fatalf("StripArmor(Armor(wire)) = %q, %v", typ, err)
			}
			if a2, _ := Armor(w, MessageBlock); a2 != a {
				t.Fatalf("Armor(StripArmor(Armor(wire))) differs:\n%q\n%q", a2, a)
			}
		}
		_, _, err = StripArmor(wire)
		checkErr(t, "StripArmor", err)
		_, err = ReadKeyRing(strings.NewReader(wire), nil)
		checkErr(t, "ReadKeyRing", err)
	})
}

// FuzzParseStanza feeds the stanza parser: no panic, and what SignPresence
// and EncryptMessage accept, VerifyPresence and DecryptMessage undo.
func FuzzParseStanza(f *testing.F) {
	c := config(f, "alice.sec.asc")
	c.MaxStanzaSize = 16 << 10
	alice := c.Keys.Keys()[0]
	signed, err := c.SignPresence([]byte(`<presence xmlns='jabber:client'><status>Online</status></presence>`))
	if err != nil {
		f.Fatal(err)
	}
	encrypted, err := c.EncryptMessage([]byte(`<message><body>hi</body></message>`), alice)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(signed), string(encrypted), xepSignedPresence, xepEncryptedMessage,
		`<presence/>`, `<message><body>a&amp;b</body><body xml:lang='x'/></message>`,
		`<c:presence xmlns:c='jabber:client'><c:status>x</c:status></c:presence>`,
		`<!DOCTYPE x><presence/>`, `<presence><status>&#xD;</status></presence>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := c.VerifyPresence(b)
		checkErr(t, "VerifyPresence", err)
		_, _, err = c.DecryptMessage(b)
		checkErr(t, "DecryptMessage", err)
		if out, err := c.SignPresence(b); err == nil {
			if _, err := c.VerifyPresence(out); err != nil {
				t.Fatalf("VerifyPresence(SignPresence(%q)) = %v", b, err)
			}
		} else {
			checkErr(t, "SignPresence", err)
		}
		if out, err := c.EncryptMessage(b, alice); err == nil {
			st, _ := c.parse(b, "message")
			want, _ := st.find(st.name.Space, "body")[0].chars()
			_, m, err := c.DecryptMessage(out)
			if err != nil || m.Body != want {
				t.Fatalf("DecryptMessage(EncryptMessage(%q)) = %v, %v", b, m, err)
			}
		} else {
			checkErr(t, "EncryptMessage", err)
		}
	})
}

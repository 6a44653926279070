package openpgp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gpgHome is a GnuPG 2.2 home of its own for one test.
type gpgHome struct {
	t   *testing.T
	dir string
}

// newGPG returns an empty GnuPG home, or skips the test when gpg is not
// installed; with CI=true a missing gpg fails the test instead.
func newGPG(t *testing.T) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		const msg = "gpg is missing: install GnuPG (apt-get install gnupg; ./test.sh does it) to run the XEP-0027 interop tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A short directory: gpg-agent's socket path must fit in sun_path.
	dir, err := os.MkdirTemp("/tmp", "s2sd-gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Cheap passphrase protection in gpg-agent: Bob's key is unlocked often.
	if err := os.WriteFile(filepath.Join(dir, "gpg-agent.conf"), []byte("s2k-count 65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gpgHome{t: t, dir: dir}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+dir)
		_ = cmd.Run()
		os.RemoveAll(dir)
	})
	return g
}

// run runs gpg in the home and returns its standard output.
func (g *gpgHome) run(stdin string, args ...string) (string, error) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args = append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--trust-model", "always"}, args...)
	cmd := exec.CommandContext(ctx, "gpg", args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.dir, "LC_ALL=C")
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}

func (g *gpgHome) must(stdin string, args ...string) string {
	g.t.Helper()
	out, err := g.run(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// file writes content to a file in the home and returns its path.
func (g *gpgHome) file(name, content string) string {
	g.t.Helper()
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// genKey makes an Ed25519 + Curve25519 key in the home and returns our view
// of it: the public key only, or with its secret parts.
func (g *gpgHome) genKey(uid string, secret bool) *Key {
	g.t.Helper()
	g.must("", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign,cert", "never")
	fpr := ""
	for _, l := range strings.Split(g.must("", "--with-colons", "--list-keys", uid), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			fpr = f[9]
			break
		}
	}
	g.must("", "--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", "never")
	var armored string
	if secret {
		armored = g.must("", "--passphrase", "", "--armor", "--export-secret-keys", fpr)
	} else {
		armored = g.must("", "--armor", "--export", fpr)
	}
	kr, err := ReadKeyRing(strings.NewReader(armored), nil)
	if err != nil {
		g.t.Fatalf("reading the key gpg made: %v", err)
	}
	k, err := kr.Lookup(fpr)
	if err != nil {
		g.t.Fatal(err)
	}
	return k
}

// importTestdata imports testdata key files into the home.
func (g *gpgHome) importTestdata(names ...string) {
	g.t.Helper()
	for _, n := range names {
		g.must("", "--passphrase", bobPassphrase, "--import", testdata(n))
	}
}

// Status texts for round trips: empty, multi-line, non-ASCII, CRLF, with
// trailing white space and characters XML escapes.
var statusTexts = []string{
	"",
	"Online",
	"Away\nback at five\n",
	"Ünïcödé ☃ 日本語 🎉",
	"line one\r\nline two\r\n",
	"lone\rCR",
	"trailing spaces   \n\ttab",
	"<b>&amp; 'quotes' \"too\"</b>",
}

func hasLoneCR(s string) bool {
	return strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\r")
}

// xmlRoundTrip puts text into a stanza the way a client would (raw, with
// the CRLF of the source), parses it back with encoding/xml and returns the
// character data a receiver sees.
func xmlRoundTrip(t *testing.T, text string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("<presence xmlns='jabber:client'><status>")
	// Escape markup but write CR and LF raw, as they travel on the wire.
	b.WriteString(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(text))
	b.WriteString("</status></presence>")
	var p struct {
		Status string `xml:"status"`
	}
	if err := xml.Unmarshal([]byte(b.String()), &p); err != nil {
		t.Fatal(err)
	}
	return p.Status
}

// TestGPGVerifiesOurSignatures: what SignStatus and SignPresence make,
// `gpg --verify` accepts, over the text the receiver sees after XML parsing.
func TestGPGVerifiesOurSignatures(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	g.importTestdata("alice.pub.asc", "bob.pub.asc")
	for _, signer := range []string{aliceFP, bobFP} {
		c := config(t, "alice.sec.asc", "bob.sec.asc")
		c.Time = nil // gpg checks the signature against its own clock
		c.Signer = signer
		for i, text := range statusTexts {
			// String level: the sender signs the text as it has it.
			wire, err := c.SignStatus(text)
			if err != nil {
				t.Fatal(err)
			}
			armored, err := Armor(wire, SignatureBlock)
			if err != nil {
				t.Fatal(err)
			}
			sig := g.file("sig.asc", armored)
			seen := xmlRoundTrip(t, text)
			signedTexts := []string{seen}
			if text != seen && !hasLoneCR(text) {
				// Text signatures make CRLF and LF the same.
				signedTexts = append(signedTexts, text)
			}
			for _, signed := range signedTexts {
				if _, err := g.run("", "--verify", sig, g.file("text", signed)); err != nil {
					t.Errorf("%s case %d %q: gpg --verify: %v", signer[:8], i, signed, err)
				}
			}
			if signer != aliceFP {
				continue
			}
			// Stanza level.
			stanza := []byte("<presence xmlns='jabber:client'><status>" + escapeText(text) + "</status></presence>")
			out, err := c.SignPresence(stanza)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Status string `xml:"status"`
				X      []struct {
					Space string `xml:"xmlns,attr"`
					Text  string `xml:",chardata"`
				} `xml:"x"`
			}
			if err := xml.Unmarshal(out, &p); err != nil || len(p.X) != 1 {
				t.Fatalf("case %d: signed stanza %s: %v", i, out, err)
			}
			armored, err = Armor(p.X[0].Text, SignatureBlock)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.run("", "--verify", g.file("sig.asc", armored), g.file("text", p.Status)); err != nil {
				t.Errorf("%s case %d: gpg --verify of the stanza's signature: %v", signer[:8], i, err)
			}
		}
	}
}

// TestGPGDecryptsOurMessages: what EncryptBody and EncryptMessage make,
// `gpg --decrypt` opens, for an Ed25519/Curve25519 key gpg made and for an
// RSA key.
func TestGPGDecryptsOurMessages(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	g.importTestdata("bob.sec.asc")
	fresh := g.genKey("Gpg User <gpg@example.com>", false)
	c := &Config{Keys: NewKeyRing(append(ring(t, "bob.pub.asc").Keys(), fresh)...)}
	bob, err := c.Keys.Lookup(bobFP)
	if err != nil {
		t.Fatal(err)
	}
	bodies := append(statusTexts, strings.Repeat("long body ", 2000))
	for _, to := range []*Key{fresh, bob} {
		// One gpg run decrypts every case: --decrypt-files writes caseN
		// for caseN.asc.
		var files []string
		for i, body := range bodies {
			wire, err := c.EncryptBody(body, to)
			if err != nil {
				t.Fatal(err)
			}
			armored, err := Armor(wire, MessageBlock)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, g.file(fmt.Sprintf("case%d.asc", i), armored))
		}
		g.must("", append([]string{"--passphrase", bobPassphrase, "--yes", "--decrypt-files"}, files...)...)
		for i, body := range bodies {
			got, err := os.ReadFile(strings.TrimSuffix(files[i], ".asc"))
			if err != nil {
				t.Errorf("%s case %d: gpg did not decrypt: %v", to.Algorithm, i, err)
				continue
			}
			if string(got) != body {
				t.Errorf("%s case %d: gpg decrypted %q, want %q", to.Algorithm, i, clip(string(got)), clip(body))
			}
		}
		out, err := c.EncryptMessage([]byte("<message xmlns='jabber:server' from='a@example.com/r' to='b@example.net'><body>Wherefore art thou?</body></message>"), to)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Body string `xml:"body"`
			X    string `xml:"jabber:x:encrypted x"`
		}
		if err := xml.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		if m.Body != DefaultFallbackBody {
			t.Errorf("fallback body %q", m.Body)
		}
		armored, err := Armor(m.X, MessageBlock)
		if err != nil {
			t.Fatal(err)
		}
		got := g.must("", "--passphrase", bobPassphrase, "--decrypt", g.file("msg.asc", armored))
		if got != "Wherefore art thou?" {
			t.Errorf("gpg decrypted the stanza's body to %q", got)
		}
	}
}

// TestGPGSignaturesVerifyHere: `gpg --armor --textmode --detach-sign`
// signatures verify here after the XML round trip; binary signatures verify
// over the exact text; tampered text and unknown signers are errors.
func TestGPGSignaturesVerifyHere(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	signer := g.genKey("Signer <signer@example.com>", false)
	c := &Config{Keys: NewKeyRing(signer)}
	for i, text := range statusTexts {
		armored := g.must("", "--armor", "--textmode", "--detach-sign", "-o", "-", g.file("text", text))
		wire, typ, err := StripArmor(armored)
		if err != nil || typ != SignatureBlock {
			t.Fatalf("StripArmor: %q, %v", typ, err)
		}
		seen := xmlRoundTrip(t, text)
		if hasLoneCR(text) {
			// XML parsing turns the CR gpg signed into LF: only the
			// original text verifies.
			if _, err := c.VerifyStatus(text, wire); err != nil {
				t.Errorf("case %d %q: %v", i, text, err)
			}
			if _, err := c.VerifyStatus(seen, wire); !errors.Is(err, ErrBadSignature) {
				t.Errorf("case %d %q: after XML: %v, want ErrBadSignature", i, text, err)
			}
			continue
		}
		sig, err := c.VerifyStatus(seen, wire)
		if err != nil {
			t.Errorf("case %d %q: %v", i, text, err)
			continue
		}
		if sig.Signer != signer || !sig.Text || sig.Signer.UserIDs[0] != "Signer <signer@example.com>" {
			t.Errorf("case %d: signature %+v", i, sig)
		}
		// In a stanza, indented as the XEP shows it.
		stanza := "<presence from='signer@example.com/pda'>\n  <status>" + escapeText(text) + "</status>\n  <x xmlns='jabber:x:signed'>\n    " +
			strings.ReplaceAll(wire, "\n", "\n    ") + "\n  </x>\n</presence>"
		if _, err := c.VerifyPresence([]byte(stanza)); err != nil {
			t.Errorf("case %d: VerifyPresence: %v", i, err)
		}
		// The full armored block is accepted too (some clients send it).
		if _, err := c.VerifyStatus(seen, armored); err != nil {
			t.Errorf("case %d: full armor: %v", i, err)
		}
		if _, err := c.VerifyStatus(seen+"!", wire); !errors.Is(err, ErrBadSignature) {
			t.Errorf("case %d: tampered text: %v, want ErrBadSignature", i, err)
		}
	}
	// A binary signature covers the exact bytes.
	armored := g.must("", "--armor", "--detach-sign", "-o", "-", g.file("text", "Online\n"))
	sig, err := c.VerifyStatus("Online\n", armored)
	if err != nil || sig.Text {
		t.Errorf("binary signature: %+v, %v", sig, err)
	}
	if _, err := c.VerifyStatus("Online\r\n", armored); !errors.Is(err, ErrBadSignature) {
		t.Errorf("binary signature over CRLF text: %v, want ErrBadSignature", err)
	}
	// A signer not in the key ring.
	other := g.genKey("Other <other@example.com>", false)
	armored = g.must("", "--armor", "--textmode", "-u", other.Fingerprint, "--detach-sign", "-o", "-", g.file("text", "Online"))
	_, err = c.VerifyStatus("Online", armored)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || !errors.Is(err, ErrUnknownKey) || !other.hasKeyID(uk.KeyID) || uk.Fingerprint != other.Fingerprint {
		t.Errorf("unknown signer: %v", err)
	}
}

// TestGPGMessagesOpenHere: `gpg --armor --encrypt` and `--sign --encrypt`
// messages decrypt here, and the signature of the latter is checked.
func TestGPGMessagesOpenHere(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	g.importTestdata("alice.pub.asc", "bob.pub.asc")
	signer := g.genKey("Signer <signer@example.com>", false)
	c := config(t, "alice.sec.asc", "bob.sec.asc")
	c.Time = nil
	c.Keys = NewKeyRing(append(c.Keys.Keys(), signer)...)
	for _, to := range []string{"alice@example.com", "bob@example.net"} {
		// One gpg run encrypts every case: --encrypt-files writes
		// caseN.asc for caseN.
		var files []string
		for i, body := range statusTexts {
			files = append(files, g.file(fmt.Sprintf("case%d", i), body))
		}
		g.must("", append([]string{"--armor", "--yes", "-r", to, "--encrypt-files"}, files...)...)
		for i, body := range statusTexts {
			armored, err := os.ReadFile(files[i] + ".asc")
			if err != nil {
				t.Fatal(err)
			}
			wire, typ, err := StripArmor(string(armored))
			if err != nil || typ != MessageBlock {
				t.Fatalf("StripArmor: %q, %v", typ, err)
			}
			m, err := c.DecryptBody(wire)
			if err != nil {
				t.Errorf("%s case %d: %v", to, i, err)
				continue
			}
			if m.Body != body || m.Signature != nil || m.Recipient == nil || m.Unprotected {
				t.Errorf("%s case %d: %+v", to, i, m)
			}
			// In a stanza with the fallback body.
			stanza := "<message xmlns='jabber:client' to='" + to + "'>\n  <body>This message is encrypted.</body>\n  <x xmlns='jabber:x:encrypted'>\n" + wire + "</x>\n</message>"
			out, m2, err := c.DecryptMessage([]byte(stanza))
			if err != nil {
				t.Fatalf("DecryptMessage: %v", err)
			}
			var got struct {
				Body []string `xml:"body"`
			}
			if err := xml.Unmarshal(out, &got); err != nil || len(got.Body) != 1 || got.Body[0] != body || m2.Body != body {
				t.Errorf("%s case %d: decrypted stanza %s (%v)", to, i, out, err)
			}
		}
		// Signed and encrypted, a few cases.
		for _, i := range []int{1, 3, 4} {
			armored := g.must("", "--armor", "-u", signer.Fingerprint, "-r", to, "--sign", "--encrypt", "-o", "-", files[i])
			m, err := c.DecryptBody(armored)
			if err != nil {
				t.Errorf("%s case %d signed: %v", to, i, err)
				continue
			}
			if m.Body != statusTexts[i] || m.Signature == nil || m.Signature.Signer != signer {
				t.Errorf("%s case %d signed: %+v", to, i, m)
			}
		}
	}
	// Signed by a key we do not know.
	other := g.genKey("Other <other@example.com>", false)
	armored := g.must("", "--armor", "-u", other.Fingerprint, "-r", "alice@example.com", "--sign", "--encrypt", "-o", "-", g.file("body", "hi"))
	if _, err := c.DecryptBody(armored); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown signer: %v, want ErrUnknownKey", err)
	}
	// Encrypted to someone else.
	armored = g.must("", "--armor", "-r", other.Fingerprint, "--encrypt", "-o", "-", g.file("body", "hi"))
	if _, err := c.DecryptBody(armored); !errors.Is(err, ErrNoKey) {
		t.Errorf("not for us: %v, want ErrNoKey", err)
	}
}

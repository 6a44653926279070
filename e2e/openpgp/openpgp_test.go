package openpgp

import (
	"errors"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	c := config(t, "alice.sec.asc", "bob.sec.asc")
	for _, signer := range []string{aliceFP, bobFP} {
		c.Signer = signer
		for i, text := range statusTexts {
			wire, err := c.SignStatus(text)
			if err != nil {
				t.Fatalf("%s case %d: %v", signer[:8], i, err)
			}
			sig, err := c.VerifyStatus(text, wire)
			if err != nil {
				t.Fatalf("%s case %d: %v", signer[:8], i, err)
			}
			if sig.Signer.Fingerprint != signer || !sig.Text || sig.Hash != "SHA-256" || !sig.Created.Equal(testNow) || !sig.Signer.hasKeyID(sig.KeyID) {
				t.Errorf("%s case %d: %+v", signer[:8], i, sig)
			}
			// Line endings do not matter to a text signature.
			if _, err := c.VerifyStatus(normalizeNewlines(text), wire); err != nil {
				t.Errorf("%s case %d, normalised: %v", signer[:8], i, err)
			}
			if _, err := c.VerifyStatus(text+"x", wire); !errors.Is(err, ErrBadSignature) {
				t.Errorf("%s case %d, tampered: %v, want ErrBadSignature", signer[:8], i, err)
			}
		}
	}
	if sig, _ := c.VerifyStatus("", mustSign(t, c, "")); sig.Algorithm != "RSA" {
		t.Errorf("Bob's signature algorithm %q", sig.Algorithm)
	}
}

func mustSign(t *testing.T, c *Config, text string) string {
	t.Helper()
	w, err := c.SignStatus(text)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestVerifyErrors(t *testing.T) {
	alice := config(t, "alice.sec.asc")
	wire := mustSign(t, alice, "Online")

	// A verifier that does not know Alice.
	bob := config(t, "bob.pub.asc")
	_, err := bob.VerifyStatus("Online", wire)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || !errors.Is(err, ErrUnknownKey) || uk.Fingerprint != aliceFP || uk.KeyID != alice.Keys.Keys()[0].KeyID {
		t.Errorf("unknown signer: %v", err)
	}

	// Bob's SHA-1 signature.
	sha1 := config(t, "bob.pub.asc")
	_, err = sha1.VerifyStatus("Online", readTestdata(t, "bob-sha1.sig.asc"))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowSHA1") {
		t.Errorf("SHA-1: %v, want a refusal naming AllowSHA1", err)
	}
	sha1.AllowSHA1 = true
	if sig, err := sha1.VerifyStatus("Online", readTestdata(t, "bob-sha1.sig.asc")); err != nil || sig.Hash != "SHA-1" {
		t.Errorf("SHA-1 allowed: %+v, %v", sig, err)
	}

	// A DSA signature.
	dsa := config(t, "legacy.pub.asc")
	_, err = dsa.VerifyStatus("Online", readTestdata(t, "legacy-dsa.sig.asc"))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowDSA") {
		t.Errorf("DSA: %v, want a refusal naming AllowDSA", err)
	}
	dsa.AllowDSA = true
	if sig, err := dsa.VerifyStatus("Online", readTestdata(t, "legacy-dsa.sig.asc")); err != nil || sig.Signer.Fingerprint != legacyFP || sig.Algorithm != "DSA" {
		t.Errorf("DSA allowed: %+v, %v", sig, err)
	}
	if _, err := dsa.VerifyStatus("Offline", readTestdata(t, "legacy-dsa.sig.asc")); !errors.Is(err, ErrBadSignature) {
		t.Errorf("DSA, wrong text: %v", err)
	}

	// Not a signature.
	enc, err := alice.EncryptBody("hi", alice.Keys.Keys()[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.VerifyStatus("hi", enc); !errors.Is(err, ErrMalformed) {
		t.Errorf("message as signature: %v, want ErrMalformed", err)
	}
	// Two signatures.
	data, _ := decodeWire(wire, SignatureBlock, 0)
	if _, err := alice.VerifyStatus("Online", encodeWire(append(data, data...))); !errors.Is(err, ErrMalformed) {
		t.Errorf("two signatures: %v, want ErrMalformed", err)
	}
	// Truncated packet with a matching CRC.
	if _, err := alice.VerifyStatus("Online", encodeWire(data[:len(data)-10])); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: %v, want ErrMalformed", err)
	}
	// A flipped bit in the signature value, CRC recomputed.
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)-5] ^= 1
	if _, err := alice.VerifyStatus("Online", encodeWire(flipped)); !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
		t.Errorf("flipped bit: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	pub := config(t, "alice.pub.asc")
	if _, err := pub.SignStatus("x"); !errors.Is(err, ErrNoKey) {
		t.Errorf("no secret key: %v", err)
	}
	c := config(t, "alice.sec.asc", "bob.pub.asc")
	c.Signer = bobFP
	if _, err := c.SignStatus("x"); !errors.Is(err, ErrNoKey) {
		t.Errorf("signer without secret: %v", err)
	}
	c.Signer = "nobody@example.com"
	if _, err := c.SignStatus("x"); !errors.Is(err, ErrNoKey) {
		t.Errorf("unknown signer: %v", err)
	}
	legacy := config(t, "legacy.sec.asc")
	if _, err := legacy.SignStatus("x"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowDSA") {
		t.Errorf("DSA signer: %v", err)
	}
	legacy.AllowDSA = true
	wire, err := legacy.SignStatus("x")
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := legacy.VerifyStatus("x", wire); err != nil || sig.Algorithm != "DSA" {
		t.Errorf("DSA round trip: %v", err)
	}
	big := &Config{Keys: c.Keys, MaxStanzaSize: 10}
	if _, err := big.SignStatus(strings.Repeat("x", 11)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := (&Config{}).SignStatus("x"); !errors.Is(err, ErrNoKey) {
		t.Errorf("no keys: %v", err)
	}
}

func TestEncryptDecrypt(t *testing.T) {
	c := config(t, "alice.sec.asc", "bob.sec.asc")
	alice, _ := c.Keys.Lookup(aliceFP)
	bob, _ := c.Keys.Lookup(bobFP)
	for i, body := range statusTexts {
		for _, to := range [][]*Key{{alice}, {bob}, {alice, bob}} {
			wire, err := c.EncryptBody(body, to...)
			if err != nil {
				t.Fatal(err)
			}
			// Each recipient alone can decrypt.
			for _, r := range to {
				own := &Config{Keys: NewKeyRing(r), Time: c.Time}
				m, err := own.DecryptBody(wire)
				if err != nil {
					t.Fatalf("case %d to %s: %v", i, r, err)
				}
				if m.Body != body || m.Recipient != r || !r.hasKeyID(m.RecipientKeyID) || m.Signature != nil || m.Unprotected {
					t.Errorf("case %d to %s: %+v", i, r, m)
				}
			}
		}
	}
}

func TestDecryptErrors(t *testing.T) {
	c := config(t, "alice.sec.asc", "bob.pub.asc")
	bob, _ := c.Keys.Lookup(bobFP)
	alice, _ := c.Keys.Lookup(aliceFP)
	toBob, err := c.EncryptBody("for Bob", bob)
	if err != nil {
		t.Fatal(err)
	}
	// Wrong key: encrypted to Bob, we are Alice.
	if _, err := c.DecryptBody(toBob); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "no secret key") {
		t.Errorf("not for us: %v", err)
	}
	// Tampered ciphertext with a recomputed CRC: the MDC check fails.
	toAlice, err := c.EncryptBody("for Alice, long enough to have a few blocks of ciphertext", alice)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := decodeWire(toAlice, MessageBlock, 0)
	for _, pos := range []int{len(data) - 1, len(data) - 30, len(data) / 2} {
		bad := append([]byte(nil), data...)
		bad[pos] ^= 0x40
		if _, err := c.DecryptBody(encodeWire(bad)); !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
			t.Errorf("flipped byte %d: %v, want ErrDecrypt", pos, err)
		}
	}
	// Truncated.
	if _, err := c.DecryptBody(encodeWire(data[:len(data)-20])); err == nil {
		t.Error("truncated: no error")
	}
	// A signature is not a message.
	if _, err := c.DecryptBody(mustSign(t, c, "x")); !errors.Is(err, ErrMalformed) {
		t.Errorf("signature as message: %v", err)
	}
}

func TestLegacyMessage(t *testing.T) {
	c := config(t, "legacy.sec.asc")
	wire := readTestdata(t, "legacy-nomdc.msg.asc")
	_, err := c.DecryptBody(wire)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowElGamal") {
		t.Errorf("ElGamal: %v, want a refusal naming AllowElGamal", err)
	}
	c.AllowElGamal = true
	_, err = c.DecryptBody(wire)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowNoMDC") {
		t.Errorf("no MDC: %v, want a refusal naming AllowNoMDC", err)
	}
	c.AllowNoMDC = true
	m, err := c.DecryptBody(wire)
	if err != nil || m.Body != "Meet me at the orchard." || !m.Unprotected || m.Recipient.Fingerprint != legacyFP {
		t.Errorf("legacy allowed: %+v, %v", m, err)
	}

	// Encrypting to the legacy key.
	legacy, _ := c.Keys.Lookup(legacyFP)
	strict := config(t, "legacy.pub.asc")
	if _, err := strict.EncryptBody("x", legacy); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowDSA") {
		t.Errorf("encrypt to DSA/ElGamal key: %v", err)
	}
	strict.AllowDSA = true
	if _, err := strict.EncryptBody("x", legacy); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowElGamal") {
		t.Errorf("encrypt to ElGamal key: %v", err)
	}
	c.AllowDSA = true // go-crypto checks the primary key of a recipient too
	wire, err = c.EncryptBody("to an old client", legacy)
	if err != nil {
		t.Fatal(err)
	}
	m, err = c.DecryptBody(wire)
	if err != nil || m.Body != "to an old client" || m.Unprotected {
		t.Errorf("ElGamal round trip: %+v, %v", m, err)
	}
}

package openpgp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	pgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

func TestReadKeyRing(t *testing.T) {
	kr := ring(t, "alice.pub.asc", "alice.sec.asc", "bob.sec.asc", "legacy.pub.asc")
	keys := kr.Keys()
	if len(keys) != 3 {
		t.Fatalf("%d keys, want 3 (public and secret Alice merged)", len(keys))
	}
	want := []struct {
		fp, algo string
		bits     int
		secret   bool
		uid      string
	}{
		{aliceFP, "EdDSA", 0, true, "Alice <alice@example.com>"},
		{bobFP, "RSA", 3072, true, "Bob <bob@example.net>"},
		{legacyFP, "DSA", 2048, false, "Legacy <legacy@example.org>"},
	}
	for i, w := range want {
		k := keys[i]
		if k.Fingerprint != w.fp || k.Algorithm != w.algo || k.Bits != w.bits || k.Secret != w.secret ||
			len(k.UserIDs) != 1 || k.UserIDs[0] != w.uid || k.Created.Year() != 2020 {
			t.Errorf("key %d = %+v", i, k)
		}
	}
	for _, id := range []string{aliceFP, strings.ToLower(aliceFP), "0x" + aliceFP[24:], aliceFP[24:], "Alice <alice@example.com>", "alice@example.com", "ALICE@example.com"} {
		if k, err := kr.Lookup(id); err != nil || k.Fingerprint != aliceFP {
			t.Errorf("Lookup(%q) = %v, %v", id, k, err)
		}
	}
	// A subkey ID finds its key.
	sub := keys[0].entity.Subkeys[0].PublicKey.KeyIdString()
	if k, err := kr.Lookup(sub); err != nil || k.Fingerprint != aliceFP {
		t.Errorf("Lookup(subkey %s) = %v, %v", sub, k, err)
	}
	for _, id := range []string{"", "nobody@example.com", "0123456789ABCDEF", "Alice"} {
		if _, err := kr.Lookup(id); !errors.Is(err, ErrNoKey) {
			t.Errorf("Lookup(%q) = %v, want ErrNoKey", id, err)
		}
	}
}

func TestReadKeyRingConcatenated(t *testing.T) {
	all := readTestdata(t, "alice.pub.asc") + "\nsome text between blocks\n" + readTestdata(t, "bob.pub.asc")
	kr, err := ReadKeyRing(strings.NewReader(all), nil)
	if err != nil || len(kr.Keys()) != 2 {
		t.Fatalf("ReadKeyRing = %v, %v", kr.Keys(), err)
	}
	// Binary, as `gpg --export` without --armor writes.
	var bin bytes.Buffer
	for _, k := range kr.Keys() {
		if err := k.entity.Serialize(&bin); err != nil {
			t.Fatal(err)
		}
	}
	kr2, err := ReadKeyRing(&bin, nil)
	if err != nil || len(kr2.Keys()) != 2 || kr2.Keys()[1].Fingerprint != bobFP {
		t.Fatalf("binary ReadKeyRing = %v, %v", kr2.Keys(), err)
	}
	// Key.Armor reads back.
	a, err := kr.Keys()[0].Armor()
	if err != nil {
		t.Fatal(err)
	}
	kr3, err := ReadKeyRing(strings.NewReader(a), nil)
	if err != nil || kr3.Keys()[0].Fingerprint != aliceFP {
		t.Fatalf("ReadKeyRing(Key.Armor) = %v, %v", kr3.Keys(), err)
	}
}

func TestReadKeyRingPassphrase(t *testing.T) {
	sec := readTestdata(t, "bob.sec.asc")
	for _, pass := range [][]byte{nil, []byte("wrong"), {}} {
		_, err := ReadKeyRing(strings.NewReader(sec), pass)
		if !errors.Is(err, ErrPassphrase) || !strings.Contains(err.Error(), bobFP) {
			t.Errorf("passphrase %q: %v, want ErrPassphrase naming the key", pass, err)
		}
	}
	kr, err := ReadKeyRing(strings.NewReader(sec), []byte(bobPassphrase))
	if err != nil || !kr.Keys()[0].Secret {
		t.Fatalf("right passphrase: %v", err)
	}
	// A key without passphrase ignores one.
	if _, err := ReadKeyRing(strings.NewReader(readTestdata(t, "alice.sec.asc")), []byte("unused")); err != nil {
		t.Errorf("unprotected key with a passphrase: %v", err)
	}
}

func TestReadKeyRingErrors(t *testing.T) {
	pub := readTestdata(t, "alice.pub.asc")
	lines := strings.Split(pub, "\n")
	tests := map[string]string{
		"empty":        "",
		"text":         "no key here",
		"truncated":    strings.Join(lines[:len(lines)/2], "\n"),
		"bad CRC":      strings.Replace(pub, lines[3], "A"+lines[3][1:], 1),
		"not a key":    readTestdata(t, "legacy-dsa.sig.asc"),
		"binary junk":  "\x99\x01\x02\x03",
		"cut in half":  strings.Join(append(append([]string{}, lines[:4]...), lines[len(lines)-3:]...), "\n"),
		"only a BEGIN": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
	}
	for name, in := range tests {
		_, err := ReadKeyRing(strings.NewReader(in), nil)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestReadKeyRingRefusesV6(t *testing.T) {
	e, err := pgp.NewEntity("V6", "", "v6@example.com", &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	_, err = ReadKeyRing(&buf, nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "v6") {
		t.Fatalf("v6 key: %v, want ErrRefused", err)
	}
}

func TestCheckKey(t *testing.T) {
	kr := ring(t, "alice.pub.asc", "legacy.pub.asc")
	alice, _ := kr.Lookup(aliceFP)
	legacy, _ := kr.Lookup(legacyFP)
	c := &Config{}
	if err := c.CheckKey(alice); err != nil {
		t.Errorf("Alice: %v", err)
	}
	err := c.CheckKey(legacy)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowDSA") {
		t.Errorf("Legacy: %v, want a refusal naming AllowDSA", err)
	}
	c.AllowDSA = true
	if err := c.CheckKey(legacy); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "AllowElGamal") {
		t.Errorf("Legacy with AllowDSA: %v, want a refusal naming AllowElGamal", err)
	}
	c.AllowElGamal = true
	if err := c.CheckKey(legacy); err != nil {
		t.Errorf("Legacy allowed: %v", err)
	}
}

func TestReadKeyRingTooLarge(t *testing.T) {
	r := strings.NewReader(strings.Repeat(" ", MaxKeyRingSize+1))
	if _, err := ReadKeyRing(r, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized key ring: %v", err)
	}
}

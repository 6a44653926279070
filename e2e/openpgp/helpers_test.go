package openpgp

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Fingerprints of the keys in testdata/openpgp (see its README).
const (
	aliceFP  = "EF631AEBE700496169DFBDA1521B5124086780CA"
	bobFP    = "1604A8ED64151137D43CD70197B990188000D1FA"
	legacyFP = "AAEF5468B3E68692B3988942DE23F3284157367A"

	bobPassphrase = "bob passphrase"
)

// testNow is after the creation of the testdata keys (2020-01-01).
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func testdata(name string) string {
	return filepath.Join("..", "..", "testdata", "openpgp", name)
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ring reads testdata key files, unlocking Bob's with his passphrase.
func ring(t testing.TB, names ...string) *KeyRing {
	t.Helper()
	var keys []*Key
	for _, n := range names {
		f, err := os.Open(testdata(n))
		if err != nil {
			t.Fatal(err)
		}
		var pass []byte
		if n == "bob.sec.asc" {
			pass = []byte(bobPassphrase)
		}
		kr, err := ReadKeyRing(f, pass)
		f.Close()
		if err != nil {
			t.Fatalf("ReadKeyRing(%s): %v", n, err)
		}
		keys = append(keys, kr.Keys()...)
	}
	return NewKeyRing(keys...)
}

// config returns a Config at testNow with the given testdata key files.
func config(t testing.TB, names ...string) *Config {
	t.Helper()
	return &Config{Keys: ring(t, names...), Time: func() time.Time { return testNow }}
}

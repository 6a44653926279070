package openpgp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCRC24(t *testing.T) {
	// RFC 4880 §6.1: the CRC of no data is the initial value.
	if got := crc24(nil); got != 0xB704CE {
		t.Errorf("crc24(nil) = %06X", got)
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 3, 47, 48, 49, 100, 1000} {
		data := bytes.Repeat([]byte{0xA5, 0x00, 0xFF}, n)[:n]
		wire := encodeWire(data)
		for _, l := range strings.Split(wire, "\n") {
			if len(l) > wireLineSize {
				t.Errorf("n=%d: line of %d characters", n, len(l))
			}
		}
		got, err := decodeWire(wire, MessageBlock, 0)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("n=%d: decodeWire = %x, %v", n, got, err)
		}
		// Indented, as in a pretty-printed stanza.
		indented := "\n    " + strings.ReplaceAll(wire, "\n", "\n    ") + "\n  "
		if got, err := decodeWire(indented, MessageBlock, 0); err != nil || !bytes.Equal(got, data) {
			t.Errorf("n=%d indented: %v", n, err)
		}
		armored, err := Armor(indented, MessageBlock)
		if err != nil {
			t.Fatal(err)
		}
		stripped, typ, err := StripArmor(armored)
		if err != nil || typ != MessageBlock || stripped != wire {
			t.Errorf("n=%d: StripArmor(Armor) = %q, %q, %v", n, stripped, typ, err)
		}
	}
}

func TestStripArmorHeaders(t *testing.T) {
	armored := "garbage before\r\n-----BEGIN PGP MESSAGE-----\r\nVersion: GnuPG v1.4.11 (GNU/Linux)\r\nComment: an old client\r\n\r\nhQEMA/8=\r\n=aaaa\r\n-----END PGP MESSAGE-----\r\ngarbage after\r\n"
	wire, typ, err := StripArmor(armored)
	if err != nil || typ != MessageBlock || wire != "hQEMA/8=\n=aaaa" {
		t.Errorf("StripArmor = %q, %q, %v", wire, typ, err)
	}
	// No blank line after BEGIN (lenient).
	wire, _, err = StripArmor("-----BEGIN PGP SIGNATURE-----\nhQEMA/8=\n-----END PGP SIGNATURE-----")
	if err != nil || wire != "hQEMA/8=" {
		t.Errorf("no blank line: %q, %v", wire, err)
	}
}

func TestDecodeWireErrors(t *testing.T) {
	good := encodeWire([]byte("some OpenPGP bytes, more than one line of them, to have two lines of base64 text"))
	lines := strings.Split(good, "\n")
	tests := []struct {
		name string
		wire string
		is   []error
	}{
		{"empty", "", []error{ErrMalformed}},
		{"blank", " \n\t ", []error{ErrMalformed}},
		{"garbage", "this is not base64!", []error{ErrMalformed}},
		{"bad CRC", strings.Join(lines[:len(lines)-1], "\n") + "\n=AAAA", []error{ErrMalformed, ErrBadCRC}},
		{"truncated", strings.Join(lines[1:], "\n"), []error{ErrMalformed}},
		{"CRC only", "=45f8", []error{ErrMalformed}},
		{"short CRC", "AAAA\n=45f", []error{ErrMalformed}},
		{"CRC not base64", "AAAA\n=4!f8", []error{ErrMalformed}},
		{"altered data", "B" + good[1:], []error{ErrMalformed, ErrBadCRC}},
		{"wrong block", "-----BEGIN PGP MESSAGE-----\n\n" + good + "\n-----END PGP MESSAGE-----", []error{ErrMalformed}},
		{"no END", "-----BEGIN PGP SIGNATURE-----\n\n" + good, []error{ErrMalformed}},
		{"END mismatch", "-----BEGIN PGP SIGNATURE-----\n\n" + good + "\n-----END PGP MESSAGE-----", []error{ErrMalformed}},
		{"too large", strings.Repeat("AAAA", 100), []error{ErrTooLarge}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeWire(tc.wire, SignatureBlock, 300)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("error %q is not %q", err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "openpgp: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// A missing CRC line is accepted, as GnuPG does.
	if _, err := decodeWire(strings.Join(lines[:len(lines)-1], "\n"), SignatureBlock, 0); err != nil {
		t.Errorf("no CRC: %v", err)
	}
}

package omemo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F, golden []byte, files ...string) {
	f.Add(golden)
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", "xml", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/><device id='1'/><x><y/></x></list>`))
	f.Add([]byte(`<!DOCTYPE a><a/>`))
	f.Add([]byte(`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='1' prekey='1'>Mw==</key><iv></iv></header><payload/></encrypted>`))
}

// checkParse: no panic; a parsed value re-encodes to XML that parses to the
// same value; every error is ErrCorrupt.
func checkParse[T any](t *testing.T, in []byte, parse func([]byte) (*T, error), enc func(*T) []byte) {
	v, err := parse(in)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
		return
	}
	out := enc(v)
	v2, err := parse(out)
	if err != nil {
		t.Fatalf("re-encoded %s: %v", out, err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("re-encoding changed the value:\n%+v\n%+v", v, v2)
	}
}

func FuzzParseDeviceList(f *testing.F) {
	addSeeds(f, goldenList.AppendXML(nil), "devicelist-python.xml")
	f.Fuzz(func(t *testing.T, in []byte) {
		checkParse(t, in, ParseDeviceList, func(v *DeviceList) []byte { return v.AppendXML(nil) })
	})
}

func FuzzParseBundle(f *testing.F) {
	addSeeds(f, goldenBundle.AppendXML(nil), "bundle-conversations.xml")
	f.Fuzz(func(t *testing.T, in []byte) {
		checkParse(t, in, ParseBundle, func(v *Bundle) []byte { return v.AppendXML(nil) })
	})
}

func FuzzParseEncrypted(f *testing.F) {
	addSeeds(f, goldenEncrypted.AppendXML(nil), "encrypted-python.xml")
	f.Fuzz(func(t *testing.T, in []byte) {
		checkParse(t, in, ParseEncrypted, func(v *Encrypted) []byte { return v.AppendXML(nil) })
		if _, err := FindEncrypted(in); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("FindEncrypted: %v is not ErrCorrupt", err)
		}
	})
}

// FuzzDecrypt: whatever key data and payload a peer with a session sends,
// Decrypt returns a typed error or a message, never panics, and a failure
// leaves the session usable.
func FuzzDecrypt(f *testing.F) {
	ctx := context.Background()
	n := net{}
	alice, err := Open(ctx, Config{JID: "alice@example.org", Store: &MemStore{}, FetchBundle: n.fetch, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	b, _ := alice.Bundle(ctx)
	n["alice@example.org"] = map[uint32]*Bundle{alice.ID(): b}
	bob, _ := Open(ctx, Config{JID: "bob@example.net", Store: &MemStore{}, FetchBundle: n.fetch, Logger: quiet})
	bob.SetDeviceList(ctx, alice.JID(), &DeviceList{Devices: []uint32{alice.ID()}})
	first, err := bob.Encrypt(ctx, []byte("first"), alice.JID())
	if err != nil {
		f.Fatal(err)
	}
	second, _ := bob.Encrypt(ctx, []byte("second"), alice.JID())
	f.Add(first.Keys[0].Data, true, first.Payload, first.IV)
	f.Add(second.Keys[0].Data, true, second.Payload, second.IV)
	f.Add([]byte{0x33}, false, []byte{}, []byte{})
	f.Add([]byte{0x33, 0x0a, 0x00}, true, []byte(nil), make([]byte, 12))
	f.Fuzz(func(t *testing.T, data []byte, prekey bool, payload, iv []byte) {
		e := &Encrypted{SID: bob.ID(), Keys: []Key{{RID: alice.ID(), PreKey: prekey, Data: data}}, IV: iv, Payload: payload}
		_, err := alice.Decrypt(ctx, bob.JID(), e)
		var oe *Error
		if err != nil && !errors.As(err, &oe) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

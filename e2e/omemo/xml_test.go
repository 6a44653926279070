package omemo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func key33(b byte) []byte {
	k := bytes.Repeat([]byte{b}, KeySize)
	k[0] = 0x05
	return k
}

var (
	goldenList   = &DeviceList{Devices: []uint32{1, 2147483647}}
	goldenBundle = &Bundle{
		SignedPreKeyID:        7,
		SignedPreKey:          key33(1),
		SignedPreKeySignature: bytes.Repeat([]byte{2}, 64),
		IdentityKey:           key33(3),
		PreKeys:               []PreKey{{ID: 1, Key: key33(4)}, {ID: 2, Key: key33(5)}},
	}
	goldenEncrypted = &Encrypted{
		SID:     27183,
		Keys:    []Key{{RID: 31415, Data: []byte("signal")}, {RID: 12321, PreKey: true, Data: []byte("prekey")}},
		IV:      bytes.Repeat([]byte{9}, 12),
		Payload: []byte("ciphertext"),
	}
)

func TestGolden(t *testing.T) {
	for i, tc := range []struct {
		v     interface{ AppendXML([]byte) []byte }
		want  string
		parse func([]byte) (any, error)
	}{
		0: {goldenList, `<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/><device id='2147483647'/></list>`,
			func(b []byte) (any, error) { return ParseDeviceList(b) }},
		1: {goldenBundle, `<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='7'>BQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB</signedPreKeyPublic><signedPreKeySignature>AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==</signedPreKeySignature><identityKey>BQMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMD</identityKey><prekeys><preKeyPublic preKeyId='1'>BQQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE</preKeyPublic><preKeyPublic preKeyId='2'>BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUF</preKeyPublic></prekeys></bundle>`,
			func(b []byte) (any, error) { return ParseBundle(b) }},
		2: {goldenEncrypted, `<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='27183'><key rid='31415'>c2lnbmFs</key><key prekey='true' rid='12321'>cHJla2V5</key><iv>CQkJCQkJCQkJCQkJ</iv></header><payload>Y2lwaGVydGV4dA==</payload></encrypted>`,
			func(b []byte) (any, error) { return ParseEncrypted(b) }},
	} {
		got := string(tc.v.AppendXML(nil))
		if got != tc.want {
			t.Errorf("%d: AppendXML\n got %s\nwant %s", i, got, tc.want)
		}
		back, err := tc.parse([]byte(got))
		if err != nil {
			t.Errorf("%d: parse: %v", i, err)
		} else if !reflect.DeepEqual(back, tc.v) {
			t.Errorf("%d: round trip\n got %+v\nwant %+v", i, back, tc.v)
		}
		// MarshalXML writes the same element; UnmarshalXML reads it back.
		m, err := xml.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%d: Marshal: %v", i, err)
		}
		v2 := reflect.New(reflect.TypeOf(tc.v).Elem()).Interface()
		if err := xml.Unmarshal(m, v2); err != nil {
			t.Errorf("%d: Unmarshal %s: %v", i, m, err)
		} else if !reflect.DeepEqual(v2, tc.v) {
			t.Errorf("%d: Marshal/Unmarshal\n got %+v\nwant %+v\n xml %s", i, v2, tc.v, m)
		}
	}
}

// Elements as other implementations write them: python-oldmemo through
// ElementTree (prefixed namespace), Conversations (indented, wrapped).
func TestParseForeign(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "xml", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	l, err := ParseDeviceList(read("devicelist-python.xml"))
	if err != nil || !reflect.DeepEqual(l.Devices, []uint32{1254716001, 85024631}) {
		t.Errorf("device list %+v, %v", l, err)
	}
	b, err := ParseBundle(read("bundle-conversations.xml"))
	if err != nil || b.SignedPreKeyID != 1 || len(b.PreKeys) != 2 || b.PreKeys[1].ID != 2 || len(b.IdentityKey) != KeySize {
		t.Errorf("bundle %+v, %v", b, err)
	}
	e, err := ParseEncrypted(read("encrypted-python.xml"))
	if err != nil || e.SID != 85024631 || len(e.Keys) != 2 || !e.Keys[0].PreKey || e.Keys[1].PreKey ||
		e.KeyFor(42) == nil || len(e.IV) != 12 || string(e.Payload) != "hello" {
		t.Errorf("encrypted %+v, %v", e, err)
	}
	// Inside a message stanza.
	stanza := `<message xmlns='jabber:client' to='a@b' from='c@d/e'><body>I sent you an OMEMO message</body>` +
		string(read("encrypted-python.xml")) + `<store xmlns='urn:xmpp:hints'/></message>`
	e2, err := FindEncrypted([]byte(stanza))
	if err != nil || !reflect.DeepEqual(e2, e) {
		t.Errorf("FindEncrypted: %+v, %v", e2, err)
	}
	if e3, err := FindEncrypted([]byte(`<message><body>plain</body></message>`)); e3 != nil || err != nil {
		t.Errorf("FindEncrypted in a plain message: %+v, %v", e3, err)
	}
}

func TestParseErrors(t *testing.T) {
	const ns = "xmlns='eu.siacs.conversations.axolotl'"
	for i, tc := range []struct {
		parse func([]byte) error
		in    string
	}{
		{parseList, ``},
		{parseList, `<list xmlns='urn:xmpp:omemo:2'><device id='1'/></list>`},
		{parseList, `<list ` + ns + `><device id='x'/></list>`},
		{parseList, `<list ` + ns + `><device/></list>`},
		{parseList, `<list ` + ns + `><device id='4294967296'/></list>`},
		{parseList, `<!DOCTYPE list [<!ENTITY a 'b'>]><list ` + ns + `/>`},
		{parseList, `<list ` + ns + `>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</list>`},
		{parseList, `<list ` + ns + `><device id='1'>`},
		{parseBundle, `<bundle ` + ns + `/>`},
		{parseBundle, `<bundle ` + ns + `><signedPreKeyPublic>BQE=</signedPreKeyPublic><signedPreKeySignature/><identityKey/></bundle>`},
		{parseBundle, strings.Replace(string(goldenBundle.AppendXML(nil)), "BQMD", "BgMD", 1)},   // identity key type
		{parseBundle, strings.Replace(string(goldenBundle.AppendXML(nil)), "AgICAgIC", "", 1)},   // short signature
		{parseBundle, strings.Replace(string(goldenBundle.AppendXML(nil)), "BQQEBAQE", "!!", 1)}, // base64
		{parseEnc, `<encrypted ` + ns + `><payload>AA==</payload></encrypted>`},
		{parseEnc, `<encrypted ` + ns + `><header sid='1'><key rid='2'>AA==</key></header></encrypted>`},
		{parseEnc, `<encrypted ` + ns + `><header><iv>AA==</iv></header></encrypted>`},
		{parseEnc, `<encrypted ` + ns + `><header sid='1'><key prekey='maybe' rid='2'>AA==</key><iv>AA==</iv></header></encrypted>`},
		{parseEnc, `<encrypted ` + ns + `><header sid='1'><key>AA==</key><iv>AA==</iv></header></encrypted>`},
		{parseEnc, `<encrypted ` + ns + `><header sid='-1'><iv>AA==</iv></header></encrypted>`},
		{parseEnc, `<encrypted ` + ns + `><header sid='1'><iv>AA==</iv></header><payload>`},
		{parseEnc, strings.Repeat("a", MaxElementSize+1)},
	} {
		err := tc.parse([]byte(tc.in))
		if err == nil {
			t.Errorf("%d: %.80s: no error", i, tc.in)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d: %.80s: %v is not ErrCorrupt", i, tc.in, err)
		}
	}
}

func parseList(b []byte) error   { _, err := ParseDeviceList(b); return err }
func parseBundle(b []byte) error { _, err := ParseBundle(b); return err }
func parseEnc(b []byte) error    { _, err := ParseEncrypted(b); return err }

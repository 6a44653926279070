package omemo

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// NS is the namespace of OMEMO 0.3 (XEP-0384 version 0.3, "legacy OMEMO"):
// its device list, bundle and encrypted elements, and the prefix of its PEP
// node names.
const NS = "eu.siacs.conversations.axolotl"

// NodeDeviceList is the PEP node that holds an account's device list
// (XEP-0384 0.3 §4.2).
const NodeDeviceList = NS + ".devicelist"

// NodeBundle returns the PEP node that holds the bundle of a device
// (XEP-0384 0.3 §4.3): eu.siacs.conversations.axolotl.bundles:DEVICEID.
func NodeBundle(device uint32) string {
	return NS + ".bundles:" + strconv.FormatUint(uint64(device), 10)
}

// Limits of the decoders. An element past them is refused as corrupt.
const (
	// MaxElementSize is the largest element ParseDeviceList, ParseBundle
	// and ParseEncrypted accept, in bytes.
	MaxElementSize = 1 << 20
	// MaxDevices is the most devices a device list may name.
	MaxDevices = 1000
	// MaxPreKeys is the most pre-keys a bundle may carry.
	MaxPreKeys = 1000
	// MaxKeys is the most <key/> elements an encrypted element may carry.
	MaxKeys = 1000
	// maxDepth bounds nesting inside an element (unknown children are
	// skipped, but not at any depth).
	maxDepth = 32
)

// KeySize is the length of a public key on the wire: the type byte 0x05
// (Curve25519, as libsignal serializes it) followed by 32 bytes.
const KeySize = 33

// DeviceList is the payload of the device list node: the ids of an
// account's OMEMO devices.
//
//	<list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/></list>
type DeviceList struct {
	Devices []uint32
}

// Contains reports whether the list names device id.
func (l *DeviceList) Contains(id uint32) bool {
	if l == nil {
		return false
	}
	for _, d := range l.Devices {
		if d == id {
			return true
		}
	}
	return false
}

// PreKey is one public one-time pre-key of a bundle.
type PreKey struct {
	ID  uint32
	Key []byte // KeySize bytes
}

// Bundle is the payload of a device's bundle node: what another device
// needs to start a session with it without it being online (X3DH).
//
//	<bundle xmlns='eu.siacs.conversations.axolotl'>
//	  <signedPreKeyPublic signedPreKeyId='1'>BASE64</signedPreKeyPublic>
//	  <signedPreKeySignature>BASE64</signedPreKeySignature>
//	  <identityKey>BASE64</identityKey>
//	  <prekeys><preKeyPublic preKeyId='1'>BASE64</preKeyPublic>…</prekeys>
//	</bundle>
//
// The keys are Curve25519 public keys of KeySize bytes. The signature is an
// XEdDSA-style signature by the identity key over the serialized signed
// pre-key; its last byte carries the sign bit of the identity key's
// Ed25519 form, as libsignal and python-oldmemo write it.
type Bundle struct {
	SignedPreKeyID        uint32
	SignedPreKey          []byte // KeySize bytes
	SignedPreKeySignature []byte // 64 bytes
	IdentityKey           []byte // KeySize bytes
	PreKeys               []PreKey
}

// Key is one <key/> of an encrypted element: the message key material
// encrypted with the Signal session to device RID. PreKey marks a
// PreKeySignalMessage, which starts a session; otherwise Data is a
// SignalMessage.
type Key struct {
	RID    uint32
	PreKey bool
	Data   []byte
}

// Encrypted is an OMEMO 0.3 encrypted element: a message (Payload set) or a
// key transport element (Payload nil), from device SID.
//
//	<encrypted xmlns='eu.siacs.conversations.axolotl'>
//	  <header sid='27183'>
//	    <key rid='31415'>BASE64</key>
//	    <key prekey='true' rid='12321'>BASE64</key>
//	    <iv>BASE64</iv>
//	  </header>
//	  <payload>BASE64</payload>
//	</encrypted>
//
// The payload is the AES-128-GCM ciphertext of the message body without its
// tag; each key carries the 16-byte AES key followed by the 16-byte tag.
type Encrypted struct {
	SID     uint32
	Keys    []Key
	IV      []byte
	Payload []byte
}

// KeyFor returns the key for device rid, or nil.
func (e *Encrypted) KeyFor(rid uint32) *Key {
	for i := range e.Keys {
		if e.Keys[i].RID == rid {
			return &e.Keys[i]
		}
	}
	return nil
}

var b64 = base64.StdEncoding

func appendUint(b []byte, v uint32) []byte { return strconv.AppendUint(b, uint64(v), 10) }

func appendB64(b []byte, v []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, b64.EncodedLen(len(v)))...)
	b64.Encode(b[n:], v)
	return b
}

// AppendXML appends the element to b.
func (l *DeviceList) AppendXML(b []byte) []byte {
	b = append(b, "<list xmlns='"+NS+"'>"...)
	for _, d := range l.Devices {
		b = append(b, "<device id='"...)
		b = appendUint(b, d)
		b = append(b, "'/>"...)
	}
	return append(b, "</list>"...)
}

// AppendXML appends the element to b.
func (bu *Bundle) AppendXML(b []byte) []byte {
	b = append(b, "<bundle xmlns='"+NS+"'><signedPreKeyPublic signedPreKeyId='"...)
	b = appendUint(b, bu.SignedPreKeyID)
	b = append(b, "'>"...)
	b = appendB64(b, bu.SignedPreKey)
	b = append(b, "</signedPreKeyPublic><signedPreKeySignature>"...)
	b = appendB64(b, bu.SignedPreKeySignature)
	b = append(b, "</signedPreKeySignature><identityKey>"...)
	b = appendB64(b, bu.IdentityKey)
	b = append(b, "</identityKey><prekeys>"...)
	for _, p := range bu.PreKeys {
		b = append(b, "<preKeyPublic preKeyId='"...)
		b = appendUint(b, p.ID)
		b = append(b, "'>"...)
		b = appendB64(b, p.Key)
		b = append(b, "</preKeyPublic>"...)
	}
	return append(b, "</prekeys></bundle>"...)
}

// AppendXML appends the element to b. A key that is not a pre-key message
// carries no prekey attribute at all: python-oldmemo reads any value of it,
// "false" included, as true.
func (e *Encrypted) AppendXML(b []byte) []byte {
	b = append(b, "<encrypted xmlns='"+NS+"'><header sid='"...)
	b = appendUint(b, e.SID)
	b = append(b, "'>"...)
	for _, k := range e.Keys {
		b = append(b, "<key"...)
		if k.PreKey {
			b = append(b, " prekey='true'"...)
		}
		b = append(b, " rid='"...)
		b = appendUint(b, k.RID)
		b = append(b, "'>"...)
		b = appendB64(b, k.Data)
		b = append(b, "</key>"...)
	}
	b = append(b, "<iv>"...)
	b = appendB64(b, e.IV)
	b = append(b, "</iv></header>"...)
	if e.Payload != nil {
		b = append(b, "<payload>"...)
		b = appendB64(b, e.Payload)
		b = append(b, "</payload>"...)
	}
	return append(b, "</encrypted>"...)
}

// MarshalXML implements xml.Marshaler.
func (l *DeviceList) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	return encodeRaw(enc, l.AppendXML(nil))
}

// MarshalXML implements xml.Marshaler.
func (bu *Bundle) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	return encodeRaw(enc, bu.AppendXML(nil))
}

// MarshalXML implements xml.Marshaler.
func (e *Encrypted) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	return encodeRaw(enc, e.AppendXML(nil))
}

// encodeRaw re-emits the tokens of an element built by AppendXML.
func encodeRaw(enc *xml.Encoder, raw []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return enc.Flush()
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			// The decoder resolved the namespace into Name.Space and
			// keeps the xmlns attribute: drop the attribute so the
			// encoder declares the namespace once.
			attrs := se.Attr[:0]
			for _, a := range se.Attr {
				if a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				attrs = append(attrs, a)
			}
			se.Attr = attrs
			tok = se
		}
		if err := enc.EncodeToken(tok); err != nil {
			return err
		}
	}
}

// UnmarshalXML implements xml.Unmarshaler.
func (l *DeviceList) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	v, err := decodeDeviceList(&guard{src: dec}, start)
	if err != nil {
		return err
	}
	*l = *v
	return nil
}

// UnmarshalXML implements xml.Unmarshaler.
func (bu *Bundle) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	v, err := decodeBundle(&guard{src: dec}, start)
	if err != nil {
		return err
	}
	*bu = *v
	return nil
}

// UnmarshalXML implements xml.Unmarshaler.
func (e *Encrypted) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	v, err := decodeEncrypted(&guard{src: dec}, start)
	if err != nil {
		return err
	}
	*e = *v
	return nil
}

// ParseDeviceList parses a <list/> element in NS. Errors match ErrCorrupt.
func ParseDeviceList(b []byte) (*DeviceList, error) {
	g, start, err := root(b, "list")
	if err != nil {
		return nil, err
	}
	return decodeDeviceList(g, start)
}

// ParseBundle parses a <bundle/> element in NS. Errors match ErrCorrupt.
func ParseBundle(b []byte) (*Bundle, error) {
	g, start, err := root(b, "bundle")
	if err != nil {
		return nil, err
	}
	return decodeBundle(g, start)
}

// ParseEncrypted parses an <encrypted/> element in NS. Errors match
// ErrCorrupt.
func ParseEncrypted(b []byte) (*Encrypted, error) {
	g, start, err := root(b, "encrypted")
	if err != nil {
		return nil, err
	}
	return decodeEncrypted(g, start)
}

// FindEncrypted returns the <encrypted/> child in NS of a stanza (such as a
// <message/>), or nil and no error when it has none.
func FindEncrypted(stanza []byte) (*Encrypted, error) {
	if len(stanza) > MaxElementSize {
		return nil, corrupt("stanza of %d bytes is over MaxElementSize", len(stanza))
	}
	g := newGuard(stanza)
	depth := 0
	for {
		tok, err := g.Token()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Space == NS && t.Name.Local == "encrypted" {
				return decodeEncrypted(g, t)
			}
			if depth >= 2 {
				if err := g.skip(); err != nil {
					return nil, err
				}
				depth--
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				return nil, nil
			}
		}
	}
}

// tokenSource is what xml.Decoder offers to the decoders.
type tokenSource interface {
	Token() (xml.Token, error)
}

// guard reads tokens, refusing DTDs and deep nesting; its errors are
// corrupt-payload errors.
type guard struct {
	src   tokenSource
	depth int
}

func newGuard(b []byte) *guard {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	return &guard{src: d}
}

func (g *guard) Token() (xml.Token, error) {
	tok, err := g.src.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		return nil, corrupt("%v", err)
	}
	switch tok.(type) {
	case xml.Directive:
		return nil, corrupt("DTDs and other directives are not allowed")
	case xml.StartElement:
		g.depth++
		if g.depth > maxDepth {
			return nil, corrupt("elements nested over %d deep", maxDepth)
		}
	case xml.EndElement:
		g.depth--
	}
	return tok, nil
}

// skip consumes the rest of the element whose start was just read.
func (g *guard) skip() error {
	for n := 1; n > 0; {
		tok, err := g.Token()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			n++
		case xml.EndElement:
			n--
		}
	}
	return nil
}

// text reads the character data of the element whose start was just read,
// skipping (and ignoring the text of) any children.
func (g *guard) text(limit int) (string, error) {
	var sb strings.Builder
	for depth := 1; ; {
		tok, err := g.Token()
		if err != nil {
			return "", unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				return sb.String(), nil
			}
		case xml.CharData:
			if depth == 1 {
				if sb.Len()+len(t) > limit {
					return "", corrupt("element text over %d bytes", limit)
				}
				sb.Write(t)
			}
		}
	}
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return corrupt("unexpected end of element")
	}
	return err
}

// root opens b and reads the start of its root element, which must be
// local in NS.
func root(b []byte, local string) (*guard, xml.StartElement, error) {
	if len(b) > MaxElementSize {
		return nil, xml.StartElement{}, corrupt("element of %d bytes is over MaxElementSize", len(b))
	}
	g := newGuard(b)
	for {
		tok, err := g.Token()
		if err != nil {
			return nil, xml.StartElement{}, unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != NS || t.Name.Local != local {
				return nil, xml.StartElement{}, corrupt("element {%s}%s is not {%s}%s", t.Name.Space, t.Name.Local, NS, local)
			}
			return g, t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, xml.StartElement{}, corrupt("text before the element")
			}
		}
	}
}

func attr(se xml.StartElement, name string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func uintAttr(se xml.StartElement, name string, required bool) (uint32, error) {
	v, ok := attr(se, name)
	if !ok {
		if required {
			return 0, corrupt("<%s/> without %s", se.Name.Local, name)
		}
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, corrupt("<%s %s='%.20s'/>: not a 32-bit unsigned integer", se.Name.Local, name, v)
	}
	return uint32(n), nil
}

// decodeB64 decodes base64 that may be wrapped or indented, with or without
// padding.
func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	v, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, corrupt("bad base64: %v", err)
	}
	return v, nil
}

func b64Text(g *guard, se xml.StartElement, limit int) ([]byte, error) {
	s, err := g.text(limit)
	if err != nil {
		return nil, err
	}
	v, err := decodeB64(s)
	if err != nil {
		return nil, fmt.Errorf("<%s/>: %w", se.Name.Local, err)
	}
	return v, nil
}

// publicKey checks a serialized public key: KeySize bytes with the type
// byte 0x05. A bare 32-byte key is accepted and given its type byte.
func publicKey(name string, k []byte) ([]byte, error) {
	switch {
	case len(k) == KeySize && k[0] == 0x05:
		return k, nil
	case len(k) == 32:
		return append([]byte{0x05}, k...), nil
	}
	return nil, corrupt("%s: not a Curve25519 public key (%d bytes)", name, len(k))
}

func decodeDeviceList(g *guard, start xml.StartElement) (*DeviceList, error) {
	l := &DeviceList{}
	seen := make(map[uint32]bool)
	for {
		tok, err := g.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == NS && t.Name.Local == "device" {
				id, err := uintAttr(t, "id", true)
				if err != nil {
					return nil, err
				}
				if id != 0 && !seen[id] {
					if len(l.Devices) >= MaxDevices {
						return nil, corrupt("device list over %d devices", MaxDevices)
					}
					seen[id] = true
					l.Devices = append(l.Devices, id)
				}
			}
			if err := g.skip(); err != nil {
				return nil, err
			}
		case xml.EndElement:
			return l, nil
		}
	}
}

func decodeBundle(g *guard, start xml.StartElement) (*Bundle, error) {
	bu := &Bundle{}
	var haveSPK, haveSig, haveIK bool
	for {
		tok, err := g.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != NS {
				if err := g.skip(); err != nil {
					return nil, err
				}
				continue
			}
			switch t.Name.Local {
			case "signedPreKeyPublic":
				if bu.SignedPreKeyID, err = uintAttr(t, "signedPreKeyId", false); err != nil {
					return nil, err
				}
				k, err := b64Text(g, t, 256)
				if err != nil {
					return nil, err
				}
				if bu.SignedPreKey, err = publicKey("signedPreKeyPublic", k); err != nil {
					return nil, err
				}
				haveSPK = true
			case "signedPreKeySignature":
				if bu.SignedPreKeySignature, err = b64Text(g, t, 256); err != nil {
					return nil, err
				}
				if len(bu.SignedPreKeySignature) != 64 {
					return nil, corrupt("signedPreKeySignature of %d bytes, not 64", len(bu.SignedPreKeySignature))
				}
				haveSig = true
			case "identityKey":
				k, err := b64Text(g, t, 256)
				if err != nil {
					return nil, err
				}
				if bu.IdentityKey, err = publicKey("identityKey", k); err != nil {
					return nil, err
				}
				haveIK = true
			case "prekeys":
				if err := decodePreKeys(g, bu); err != nil {
					return nil, err
				}
			default:
				if err := g.skip(); err != nil {
					return nil, err
				}
			}
		case xml.EndElement:
			if !haveSPK || !haveSig || !haveIK {
				return nil, corrupt("bundle without signedPreKeyPublic, signedPreKeySignature or identityKey")
			}
			return bu, nil
		}
	}
}

func decodePreKeys(g *guard, bu *Bundle) error {
	for {
		tok, err := g.Token()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != NS || t.Name.Local != "preKeyPublic" {
				if err := g.skip(); err != nil {
					return err
				}
				continue
			}
			id, err := uintAttr(t, "preKeyId", true)
			if err != nil {
				return err
			}
			k, err := b64Text(g, t, 256)
			if err != nil {
				return err
			}
			if k, err = publicKey("preKeyPublic", k); err != nil {
				return err
			}
			if len(bu.PreKeys) >= MaxPreKeys {
				return corrupt("bundle over %d pre-keys", MaxPreKeys)
			}
			bu.PreKeys = append(bu.PreKeys, PreKey{ID: id, Key: k})
		case xml.EndElement:
			return nil
		}
	}
}

func decodeEncrypted(g *guard, start xml.StartElement) (*Encrypted, error) {
	e := &Encrypted{}
	var haveHeader bool
	for {
		tok, err := g.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Space == NS && t.Name.Local == "header":
				if err := decodeHeader(g, t, e); err != nil {
					return nil, err
				}
				haveHeader = true
			case t.Name.Space == NS && t.Name.Local == "payload":
				if e.Payload, err = b64Text(g, t, MaxElementSize); err != nil {
					return nil, err
				}
			default:
				if err := g.skip(); err != nil {
					return nil, err
				}
			}
		case xml.EndElement:
			if !haveHeader {
				return nil, corrupt("encrypted element without header")
			}
			if e.IV == nil {
				return nil, corrupt("encrypted element without iv")
			}
			return e, nil
		}
	}
}

func decodeHeader(g *guard, start xml.StartElement, e *Encrypted) error {
	var err error
	if e.SID, err = uintAttr(start, "sid", true); err != nil {
		return err
	}
	for {
		tok, err := g.Token()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Space == NS && t.Name.Local == "key":
				k := Key{}
				if k.RID, err = uintAttr(t, "rid", true); err != nil {
					return err
				}
				if v, ok := attr(t, "prekey"); ok {
					switch strings.TrimSpace(v) {
					case "true", "1":
						k.PreKey = true
					case "false", "0":
					default:
						return corrupt("<key prekey='%.20s'/>: not a boolean", v)
					}
				}
				if k.Data, err = b64Text(g, t, 64<<10); err != nil {
					return err
				}
				if len(e.Keys) >= MaxKeys {
					return corrupt("encrypted element over %d keys", MaxKeys)
				}
				e.Keys = append(e.Keys, k)
			case t.Name.Space == NS && t.Name.Local == "iv":
				if e.IV, err = b64Text(g, t, 256); err != nil {
					return err
				}
				if e.IV == nil {
					e.IV = []byte{}
				}
			default:
				if err := g.skip(); err != nil {
					return err
				}
			}
		case xml.EndElement:
			return nil
		}
	}
}

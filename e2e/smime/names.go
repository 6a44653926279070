package smime

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/s2sd/s2sd/route"
)

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

	// oidXmppAddr is id-on-xmppAddr (RFC 3920 §5.1.1, RFC 6120 §13.7.1.4).
	oidXmppAddr = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
)

// SenderMismatchError is the cause of an e2e.ErrSignatureUnverified when
// the signature is good but the certificate does not name the sender
// (RFC 3923 §6.6). Addresses are the ones the certificate names, for the
// "explicit alternate processing" the RFC suggests, such as showing them
// to the user.
type SenderMismatchError struct {
	Sender    string
	Addresses []string
}

func (e *SenderMismatchError) Error() string {
	return fmt.Sprintf("smime: certificate names %q, not the sender %q", e.Addresses, e.Sender)
}

// Addresses returns the XMPP addresses that cert names in its
// subjectAltName, each once, in order of appearance: id-on-xmppAddr otherNames (RFC 3923 §6.6,
// RFC 6120 §13.7.1.4) and uniformResourceIdentifier names with the im:,
// pres: or xmpp: scheme. crypto/x509 does not expose otherName, so the
// extension is read with encoding/asn1. The subject DN is ignored, as
// RFC 3923 §6.6 says.
func Addresses(cert *x509.Certificate) ([]string, error) {
	var out []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &seq)
		if err != nil || len(rest) > 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence {
			return nil, errors.New("smime: malformed subjectAltName")
		}
		for names := seq.Bytes; len(names) > 0; {
			var gn asn1.RawValue
			if names, err = asn1.Unmarshal(names, &gn); err != nil {
				return nil, fmt.Errorf("smime: malformed subjectAltName: %w", err)
			}
			if gn.Class != asn1.ClassContextSpecific {
				continue
			}
			switch gn.Tag {
			case 0: // otherName [0] IMPLICIT SEQUENCE { type-id, [0] EXPLICIT value }
				if a, ok := xmppAddr(gn.Bytes); ok && !slices.Contains(out, a) {
					out = append(out, a)
				}
			case 6: // uniformResourceIdentifier [6] IMPLICIT IA5String
				if a, ok := uriAddress(string(gn.Bytes)); ok && !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	return out, nil
}

// xmppAddr returns the address of an otherName whose type-id is
// id-on-xmppAddr and whose value is a UTF8String.
func xmppAddr(b []byte) (string, bool) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(b, &oid)
	if err != nil || !oid.Equal(oidXmppAddr) {
		return "", false
	}
	var explicit asn1.RawValue
	if _, err := asn1.Unmarshal(rest, &explicit); err != nil ||
		explicit.Class != asn1.ClassContextSpecific || explicit.Tag != 0 || !explicit.IsCompound {
		return "", false
	}
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(explicit.Bytes, &v); err != nil ||
		v.Class != asn1.ClassUniversal || v.Tag != asn1.TagUTF8String || !utf8.Valid(v.Bytes) {
		return "", false
	}
	return string(v.Bytes), true
}

// uriAddress returns the address of an im: or pres: URI (RFC 3860,
// RFC 3859) or an xmpp: URI (RFC 5122).
func uriAddress(u string) (string, bool) {
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok {
		return "", false
	}
	switch strings.ToLower(scheme) {
	case "im", "pres":
		rest, _, _ = strings.Cut(rest, "?")
	case "xmpp":
		// xmpp:[//authority/]address[?query][#fragment]
		rest, _, _ = strings.Cut(rest, "#")
		rest, _, _ = strings.Cut(rest, "?")
		if strings.HasPrefix(rest, "//") {
			_, rest, ok = strings.Cut(rest[2:], "/")
			if !ok {
				return "", false
			}
		}
		var err error
		if rest, err = url.PathUnescape(rest); err != nil {
			return "", false
		}
	default:
		return "", false
	}
	if rest == "" {
		return "", false
	}
	return rest, true
}

// namesSender reports whether one of addrs names sender; resource parts
// are ignored on both sides (RFC 3923 §6.6).
func namesSender(addrs []string, sender jid.JID) bool {
	for _, a := range addrs {
		j, err := route.ParseJID(a)
		if err == nil && j.Bare().Equal(sender.Bare()) {
			return true
		}
	}
	return false
}

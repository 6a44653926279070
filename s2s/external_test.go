package s2s_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/s2sd/s2sd/s2s"
)

// certWithOtherName makes a certificate whose only names are an otherName
// SAN (XmppAddr or SRVName) with the given value.
func certWithOtherName(t *testing.T, oid asn1.ObjectIdentifier, value string) *x509.Certificate {
	t.Helper()
	v, _ := asn1.MarshalWithParams(value, "utf8")
	// OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }, as
	// GeneralName's [0] IMPLICIT.
	wrapped, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: v})
	oidDER, _ := asn1.Marshal(oid)
	gn, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oidDER, wrapped...)})
	san, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: gn})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "not a domain"},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestNamesDomain(t *testing.T) {
	tests := []struct {
		oid    asn1.ObjectIdentifier
		value  string
		domain string
		want   bool
	}{
		0: {s2s.OIDXmppAddr, "example.net", "example.net", true},
		1: {s2s.OIDXmppAddr, "example.net", "other.net", false},
		2: {s2s.OIDXmppAddr, "Bücher.example", "xn--bcher-kva.example", true},
		3: {s2s.OIDSRVName, "_xmpp-server.example.net", "example.net", true},
		4: {s2s.OIDSRVName, "_xmpps-server.example.net", "example.net", true},
		5: {s2s.OIDSRVName, "_imap.example.net", "example.net", false},
	}
	for i, tc := range tests {
		c := certWithOtherName(t, tc.oid, tc.value)
		if got := s2s.NamesDomain(c, tc.domain); got != tc.want {
			t.Errorf("%d: NamesDomain(%s=%q, %q) = %v", i, tc.oid, tc.value, tc.domain, got)
		}
		if ons := s2s.OtherNames(c); len(ons) != 1 || ons[0].Value != tc.value {
			t.Errorf("%d: OtherNames = %v", i, ons)
		}
	}
}

package smime

import (
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/s2sd/s2sd/e2e"
)

// ocspPKI is a CA and a signer whose certificate names an OCSP responder
// at url.
type ocspPKI struct {
	ca     *x509.Certificate
	caKey  crypto.Signer
	signer party
	roots  *x509.CertPool
}

func newOCSPPKI(url string) *ocspPKI {
	now := time.Now()
	p := &ocspPKI{caKey: rsaKey()}
	p.ca = issue(caTemplate("s2sd OCSP test CA"), nil, p.caKey, p.caKey, now.Add(-time.Hour), now.Add(24*time.Hour))
	tmpl := eeTemplate("nurse@example.com")
	tmpl.OCSPServer = []string{url}
	key := rsaKey()
	p.signer = party{cert: issue(tmpl, p.ca, p.caKey, key, now.Add(-time.Hour), now.Add(24*time.Hour)), key: key}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.ca)
	return p
}

const fromNurse = `<message from='nurse@example.com/kitchen' to='juliet@example.com' type='chat' id='n1'><body>Madam!</body></message>`

// TestOCSP: the responder's answer decides, a forged or stale one counts
// as no answer, and no answer fails only with Require.
func TestOCSP(t *testing.T) {
	var answer atomic.Value // func(req *ocsp.Request) []byte
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f := answer.Load().(func(*ocsp.Request) []byte)
		if b := f(req); b != nil {
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Write(b)
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	p := newOCSPPKI(srv.URL)
	signed, err := (&Agent{Certificate: p.signer.cert, PrivateKey: p.signer.key, Roots: p.roots}).Sign([]byte(fromNurse))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	respond := func(status int, signer *x509.Certificate, key crypto.Signer, thisUpdate, nextUpdate time.Time) func(*ocsp.Request) []byte {
		return func(req *ocsp.Request) []byte {
			tmpl := ocsp.Response{Status: status, SerialNumber: req.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedAt: now.Add(-time.Minute)}
			if signer != p.ca {
				tmpl.Certificate = signer
			}
			b, err := ocsp.CreateResponse(p.ca, signer, tmpl, key)
			if err != nil {
				t.Error(err)
			}
			return b
		}
	}
	// A responder the CA delegated to, and one it signed for something else.
	delegate := func(eku x509.ExtKeyUsage) (*x509.Certificate, crypto.Signer) {
		k := rsaKey()
		tmpl := eeTemplate("ocsp.example.com")
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{eku}
		return issue(tmpl, p.ca, p.caKey, k, now.Add(-time.Hour), now.Add(time.Hour)), k
	}
	goodDelegate, goodKey := delegate(x509.ExtKeyUsageOCSPSigning)
	badDelegate, badKey := delegate(x509.ExtKeyUsageEmailProtection)
	forger := rsaKey()
	fresh, later := now.Add(-time.Minute), now.Add(time.Hour)

	for _, tc := range []struct {
		name    string
		answer  func(*ocsp.Request) []byte
		require bool
		want    error // nil, ErrRevoked or ErrRevocationUnknown
	}{
		{"good", respond(ocsp.Good, p.ca, p.caKey, fresh, later), true, nil},
		{"revoked", respond(ocsp.Revoked, p.ca, p.caKey, fresh, later), false, ErrRevoked},
		{"revoked, delegated responder", respond(ocsp.Revoked, goodDelegate, goodKey, fresh, later), false, ErrRevoked},
		{"unknown", respond(ocsp.Unknown, p.ca, p.caKey, fresh, later), false, nil},
		{"unknown, required", respond(ocsp.Unknown, p.ca, p.caKey, fresh, later), true, ErrRevocationUnknown},
		{"down", func(*ocsp.Request) []byte { return nil }, false, nil},
		{"down, required", func(*ocsp.Request) []byte { return nil }, true, ErrRevocationUnknown},
		{"forged revocation, required", respond(ocsp.Revoked, p.ca, forger, fresh, later), true, ErrRevocationUnknown},
		{"responder not for OCSP, required", respond(ocsp.Revoked, badDelegate, badKey, fresh, later), true, ErrRevocationUnknown},
		{"stale, required", respond(ocsp.Good, p.ca, p.caKey, now.Add(-2*time.Hour), now.Add(-time.Hour)), true, ErrRevocationUnknown},
		{"from the future, required", respond(ocsp.Good, p.ca, p.caKey, now.Add(time.Hour), now.Add(2*time.Hour)), true, ErrRevocationUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer.Store(tc.answer)
			a := &Agent{Certificate: p.signer.cert, PrivateKey: p.signer.key, Roots: p.roots, OCSP: &OCSP{Require: tc.require}}
			_, err := a.Open(signed)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if !errors.Is(err, e2e.ErrSignatureUnverified) || !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("cached until next update", func(t *testing.T) {
		answer.Store(respond(ocsp.Good, p.ca, p.caKey, fresh, later))
		o := &OCSP{}
		n := asked.Load()
		for i := range 3 {
			a := &Agent{Certificate: p.signer.cert, PrivateKey: p.signer.key, Roots: p.roots, OCSP: o}
			if _, err := a.Open(signed); err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
		}
		if got := asked.Load() - n; got != 1 {
			t.Errorf("asked the responder %d times, want 1", got)
		}
	})
	t.Run("no responder named", func(t *testing.T) {
		p2 := newOCSPPKI("")
		p2.signer.cert.OCSPServer = nil
		s, err := (&Agent{Certificate: p2.signer.cert, PrivateKey: p2.signer.key, Roots: p2.roots}).Sign([]byte(fromNurse))
		if err != nil {
			t.Fatal(err)
		}
		for _, require := range []bool{false, true} {
			a := &Agent{Certificate: p2.signer.cert, PrivateKey: p2.signer.key, Roots: p2.roots, OCSP: &OCSP{Require: require}}
			_, err := a.Open(s)
			if got, want := err != nil, require; got != want || err != nil && !errors.Is(err, ErrRevocationUnknown) {
				t.Errorf("require=%v: Open: %v", require, err)
			}
		}
	})
}

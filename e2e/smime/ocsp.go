package smime

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP asks certificates' OCSP responders (RFC 6960) whether they are
// revoked: those of every certificate of a signer's chain below its root
// that names one (Authority Information Access). A certificate the
// responder says is revoked fails the signature with ErrRevoked. An
// OCSP value is safe for concurrent use and may be shared by Agents; its
// fields must not change after first use.
type OCSP struct {
	// Client makes the requests (HTTP POST). Nil means one with a 5 s
	// timeout.
	Client *http.Client

	// Require fails a signature when a certificate's status cannot be
	// learned (the responder does not answer, answers unknown, or no
	// responder is named) with ErrRevocationUnknown. Without it such a
	// certificate passes, as most mail clients have it.
	Require bool

	mu    sync.Mutex
	cache map[ocspKey]ocspEntry
}

// ErrRevocationUnknown is wrapped by the error of a signature whose
// signer's revocation status could not be learned while OCSP.Require is
// set.
var ErrRevocationUnknown = errors.New("smime: revocation status unknown")

type ocspKey struct {
	issuer string // the issuer's raw subject public key info
	serial string
}

type ocspEntry struct {
	status int // ocsp.Good, ocsp.Revoked, ocsp.Unknown
	until  time.Time
}

// maxOCSPResponse bounds what is read of a response.
const maxOCSPResponse = 64 << 10

// check asks about cert, issued by issuer: nil when it is good, or unknown
// without Require.
func (o *OCSP) check(cert, issuer *x509.Certificate, now time.Time) error {
	status, err := o.status(cert, issuer, now)
	switch {
	case err == nil && status == ocsp.Good:
		return nil
	case err == nil && status == ocsp.Revoked:
		return fmt.Errorf("%w: %s (serial %s), says its OCSP responder", ErrRevoked, cert.Subject, cert.SerialNumber)
	case !o.Require:
		return nil
	case err == nil:
		err = errors.New("the responder does not know it")
	}
	return fmt.Errorf("%w: %s (serial %s): %v", ErrRevocationUnknown, cert.Subject, cert.SerialNumber, err)
}

func (o *OCSP) status(cert, issuer *x509.Certificate, now time.Time) (int, error) {
	key := ocspKey{string(issuer.RawSubjectPublicKeyInfo), cert.SerialNumber.String()}
	o.mu.Lock()
	e, ok := o.cache[key]
	o.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.status, nil
	}
	if len(cert.OCSPServer) == 0 {
		return ocsp.Unknown, errors.New("no OCSP responder named")
	}
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return ocsp.Unknown, err
	}
	var last error
	for _, url := range cert.OCSPServer {
		resp, err := o.ask(url, req, cert, issuer)
		if err == nil && (resp.ThisUpdate.After(now.Add(MaxClockSkew)) || !resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate)) {
			err = fmt.Errorf("OCSP responder %s: response not current (this update %s, next %s)", url, resp.ThisUpdate, resp.NextUpdate)
		}
		if err != nil {
			last = err
			continue
		}
		// RFC 6960 §4.2.2.1: a response is good until its nextUpdate;
		// without one it is not kept.
		if resp.NextUpdate.After(now) {
			o.mu.Lock()
			if o.cache == nil || len(o.cache) >= 4096 {
				o.cache = map[ocspKey]ocspEntry{}
			}
			o.cache[key] = ocspEntry{resp.Status, resp.NextUpdate}
			o.mu.Unlock()
		}
		return resp.Status, nil
	}
	return ocsp.Unknown, last
}

// ask posts req to url and checks the response: signed by issuer or a
// responder it delegated to, and about cert.
func (o *OCSP) ask(url string, req []byte, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
	c := o.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Close = true // responders are asked seldom; keep no connection
	hres, err := c.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hres.Body.Close()
	if hres.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OCSP responder %s: %s", url, hres.Status)
	}
	der, err := io.ReadAll(io.LimitReader(hres.Body, maxOCSPResponse))
	if err != nil {
		return nil, err
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	// A delegated responder must be one for OCSP (RFC 6960 §4.2.2.2);
	// the library checks that the issuer signed it, not what for.
	if rc := resp.Certificate; rc != nil && !bytes.Equal(rc.Raw, issuer.Raw) && !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return nil, fmt.Errorf("OCSP responder %s: signed by %s, which is not an OCSP signer", url, rc.Subject)
	}
	return resp, nil
}

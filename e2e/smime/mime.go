package smime

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// Media types of the S/MIME layer (RFC 5751 §3.2). OpenSSL's smime command
// writes the legacy x- forms; both are accepted (digest A.12 item 4).
const (
	typeSigned       = "multipart/signed"
	typePKCS7Sig     = "application/pkcs7-signature"
	typePKCS7SigX    = "application/x-pkcs7-signature"
	typePKCS7MIME    = "application/pkcs7-mime"
	typePKCS7MIMEX   = "application/x-pkcs7-mime"
	typeCPIM         = "message/cpim"
	typePIDF         = "application/pidf+xml"
	typeXMPP         = "application/xmpp+xml"
	base64LineLength = 76
)

// entity is a parsed MIME entity (RFC 2045 §2.4): its header and the raw
// bytes of its body.
type entity struct {
	header    textproto.MIMEHeader
	mediaType string            // lower case; text/plain when absent
	params    map[string]string // keys lower case
	body      []byte
}

// parseEntity splits b into header and body. The header ends at the first
// empty line, LF or CRLF: OpenSSL mixes both (digest A.12 item 6).
func parseEntity(b []byte) (*entity, error) {
	var hdr bytes.Buffer
	rest := b
	for {
		if len(rest) == 0 {
			return nil, errors.New("smime: MIME header not terminated by an empty line")
		}
		line := rest
		next := []byte(nil)
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, next = rest[:i], rest[i+1:]
		} else {
			next = rest[len(rest):]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		rest = next
		if len(line) == 0 {
			break
		}
		hdr.Write(line)
		hdr.WriteString("\r\n")
	}
	hdr.WriteString("\r\n")
	h, err := textproto.NewReader(bufio.NewReader(&hdr)).ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("smime: MIME header: %w", err)
	}
	e := &entity{header: h, body: rest, mediaType: "text/plain", params: map[string]string{}}
	if ct := h.Get("Content-Type"); ct != "" {
		e.mediaType, e.params = parseMediaType(ct)
		if e.mediaType == "" {
			return nil, fmt.Errorf("smime: bad Content-Type %q", ct)
		}
	}
	return e, nil
}

// parseMediaType is mime.ParseMediaType made lenient: RFC 3923's examples
// leave protocol=application/pkcs7-signature unquoted, which has a
// tspecial and which OpenSSL accepts (digest A.12 item 5).
func parseMediaType(v string) (string, map[string]string) {
	if mt, params, err := mime.ParseMediaType(v); err == nil {
		return mt, params
	}
	fields := strings.Split(v, ";")
	mt := strings.ToLower(strings.TrimSpace(fields[0]))
	if !strings.Contains(mt, "/") || strings.ContainsAny(mt, " \t\"") {
		return "", nil
	}
	params := map[string]string{}
	for _, f := range fields[1:] {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if k != "" {
			params[k] = val
		}
	}
	return mt, params
}

// canonical returns b with every line break as CRLF (RFC 5751 §3.1.1):
// XML parsing turns the CRLF of the signed part into LF (digest A.12
// item 1), so a receiver restores it before checking the digest.
func canonical(b []byte) []byte {
	out := make([]byte, 0, len(b)+bytes.Count(b, []byte{'\n'}))
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// writeBase64 writes b in base64 lines of 76 characters ending in CRLF
// (RFC 2045 §6.8).
func writeBase64(w io.Writer, b []byte) {
	s := base64.StdEncoding.EncodeToString(b)
	for len(s) > base64LineLength {
		io.WriteString(w, s[:base64LineLength]+"\r\n")
		s = s[base64LineLength:]
	}
	io.WriteString(w, s+"\r\n")
}

// decodeBody returns the decoded body of a pkcs7 part. XML cannot carry
// DER (digest A.12 item 2), so base64 is expected; a body that is not
// base64 and does not claim to be is taken as raw DER, which happens for
// the inner entity of an EnvelopedData.
func decodeBody(e *entity) ([]byte, error) {
	cte := strings.ToLower(strings.TrimSpace(e.header.Get("Content-Transfer-Encoding")))
	switch cte {
	case "binary", "8bit", "7bit":
		return e.body, nil
	case "", "base64":
	default:
		return nil, fmt.Errorf("smime: Content-Transfer-Encoding %q", cte)
	}
	b, err := decodeBase64(e.body)
	if err != nil {
		if cte == "" && len(e.body) > 0 && e.body[0] == 0x30 {
			return e.body, nil
		}
		return nil, err
	}
	return b, nil
}

// decodeBase64 decodes base64 with line breaks and other white space.
func decodeBase64(b []byte) ([]byte, error) {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, fmt.Errorf("smime: base64: %w", err)
	}
	if n == 0 {
		return nil, errors.New("smime: empty base64 body")
	}
	return out[:n], nil
}

// buildSigned returns a multipart/signed entity (RFC 1847 §2.1, RFC 5751
// §3.5.3) whose first part is inner, canonicalised to CRLF, and whose
// second part is the application/pkcs7-signature that sign returns for
// the exact bytes of the first part.
func buildSigned(inner *entity, micalg string, sign func([]byte) ([]byte, error)) ([]byte, error) {
	var parts bytes.Buffer
	mw := multipart.NewWriter(&parts)
	w, err := mw.CreatePart(inner.header)
	if err != nil {
		return nil, err
	}
	w.Write(canonical(inner.body))
	// The first part is everything after the first delimiter line; the
	// CRLF written before the next delimiter belongs to that delimiter
	// (RFC 2046 §5.1.1).
	signed := bytes.Clone(parts.Bytes()[len("--"+mw.Boundary()+"\r\n"):])
	sig, err := sign(signed)
	if err != nil {
		return nil, err
	}
	sh := textproto.MIMEHeader{}
	sh.Set("Content-Type", typePKCS7Sig+"; name=smime.p7s")
	sh.Set("Content-Transfer-Encoding", "base64")
	sh.Set("Content-Disposition", "attachment; handling=required; filename=smime.p7s")
	w, err = mw.CreatePart(sh)
	if err != nil {
		return nil, err
	}
	writeBase64(w, sig)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("Content-Type: " + mime.FormatMediaType(typeSigned, map[string]string{
		"protocol": typePKCS7Sig,
		"micalg":   micalg,
		"boundary": mw.Boundary(),
	}) + "\r\n\r\n")
	out.Write(parts.Bytes())
	return out.Bytes(), nil
}

// buildPKCS7MIME returns the application/pkcs7-mime entity for DER
// EnvelopedData (smimeType enveloped-data, RFC 8551 §3.3) or
// AuthEnvelopedData (authEnveloped-data, RFC 8551 §3.4), as `openssl cms
// -encrypt` writes them.
func buildPKCS7MIME(smimeType string, der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: " + typePKCS7MIME + "; smime-type=" + smimeType + "; name=smime.p7m\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=smime.p7m\r\n")
	b.WriteString("\r\n")
	writeBase64(&b, der)
	return b.Bytes()
}

// buildEnveloped returns the application/pkcs7-mime entity for DER
// EnvelopedData.
func buildEnveloped(der []byte) []byte { return buildPKCS7MIME("enveloped-data", der) }

// splitSigned returns the raw bytes of the first part of a multipart/signed
// entity and the decoded signature of its second part. The first part is
// taken byte for byte (digest A.12 item 7); mime/multipart reads the
// second.
func splitSigned(e *entity) (signed, sig []byte, err error) {
	boundary := e.params["boundary"]
	if boundary == "" || len(boundary) > 70 {
		return nil, nil, errors.New("smime: multipart/signed without a valid boundary")
	}
	switch p := strings.ToLower(e.params["protocol"]); p {
	case typePKCS7Sig, typePKCS7SigX:
	default:
		return nil, nil, fmt.Errorf("smime: multipart/signed protocol %q", p)
	}
	signed, err = firstPart(e.body, boundary)
	if err != nil {
		return nil, nil, err
	}
	mr := multipart.NewReader(bytes.NewReader(e.body), boundary)
	if _, err := mr.NextRawPart(); err != nil {
		return nil, nil, fmt.Errorf("smime: multipart/signed: %w", err)
	}
	p, err := mr.NextRawPart()
	if err != nil {
		return nil, nil, fmt.Errorf("smime: multipart/signed has no signature part: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(p, int64(len(e.body))))
	if err != nil {
		return nil, nil, fmt.Errorf("smime: multipart/signed: %w", err)
	}
	mt, _ := parseMediaType(p.Header.Get("Content-Type"))
	if mt != typePKCS7Sig && mt != typePKCS7SigX {
		return nil, nil, fmt.Errorf("smime: signature part is %q", mt)
	}
	sig, err = decodeBody(&entity{header: p.Header, body: raw})
	if err != nil {
		return nil, nil, err
	}
	return signed, sig, nil
}

// firstPart returns the bytes of the first body part of a multipart body:
// from after the first delimiter line up to, not including, the line break
// before the next delimiter (RFC 2046 §5.1.1).
func firstPart(body []byte, boundary string) ([]byte, error) {
	dash := []byte("--" + boundary)
	start := -1
	for off := 0; off < len(body); {
		if isDelimiter(body[off:], dash) {
			nl := bytes.IndexByte(body[off:], '\n')
			if nl < 0 {
				return nil, errors.New("smime: multipart body ends after its first delimiter")
			}
			start = off + nl + 1
			break
		}
		nl := bytes.IndexByte(body[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	if start < 0 {
		return nil, errors.New("smime: multipart body has no delimiter")
	}
	for off := start; off < len(body); {
		nl := bytes.IndexByte(body[off:], '\n')
		if nl < 0 {
			break
		}
		next := off + nl + 1
		if isDelimiter(body[next:], dash) {
			end := off + nl
			if end > start && body[end-1] == '\r' {
				end--
			}
			if end < start {
				end = start
			}
			return body[start:end], nil
		}
		off = next
	}
	return nil, errors.New("smime: multipart body has only one part")
}

// isDelimiter reports whether line starts with the dash-boundary followed
// by the end of the line, white space, or the closing "--".
func isDelimiter(line, dash []byte) bool {
	if !bytes.HasPrefix(line, dash) {
		return false
	}
	rest := line[len(dash):]
	if len(rest) == 0 {
		return true
	}
	switch rest[0] {
	case '\r', '\n', ' ', '\t', '-':
		return true
	}
	return false
}

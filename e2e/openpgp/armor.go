package openpgp

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Armor block types (RFC 4880 §6.2) used by XEP-0027.
const (
	// SignatureBlock is the block type of jabber:x:signed data.
	SignatureBlock = "PGP SIGNATURE"
	// MessageBlock is the block type of jabber:x:encrypted data.
	MessageBlock = "PGP MESSAGE"
)

const (
	armorBegin   = "-----BEGIN "
	armorEnd     = "-----END "
	armorDashes  = "-----"
	wireLineSize = 64 // base64 characters per line, as GnuPG writes them
)

// crc24 computes the OpenPGP armor checksum (RFC 4880 §6.1).
func crc24(data []byte) uint32 {
	const (
		init = 0xB704CE
		poly = 0x1864CFB
	)
	crc := uint32(init)
	for _, b := range data {
		crc ^= uint32(b) << 16
		for range 8 {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= poly
			}
		}
	}
	return crc & 0xFFFFFF
}

// encodeWire returns data in the XEP-0027 wire form: the base64 lines and the
// CRC line of an armored block, without the BEGIN line, the headers, the
// blank line and the END line (§1). Lines are separated by LF.
func encodeWire(data []byte) string {
	b64 := base64.StdEncoding.EncodeToString(data)
	var sb strings.Builder
	for len(b64) > wireLineSize {
		sb.WriteString(b64[:wireLineSize])
		sb.WriteByte('\n')
		b64 = b64[wireLineSize:]
	}
	sb.WriteString(b64)
	if sb.Len() > 0 {
		sb.WriteByte('\n')
	}
	c := crc24(data)
	sb.WriteByte('=')
	sb.WriteString(base64.StdEncoding.EncodeToString([]byte{byte(c >> 16), byte(c >> 8), byte(c)}))
	return sb.String()
}

// wireFields splits wire text into its base64 fields and the optional CRC
// field. Any white space separates fields, so indentation and the newlines
// around the text of an <x/> element do not matter.
func wireFields(wire string) (data []string, crc string, err error) {
	data = strings.Fields(wire)
	if len(data) == 0 {
		return nil, "", malformed("empty armor")
	}
	if last := data[len(data)-1]; strings.HasPrefix(last, "=") {
		if len(last) != 5 {
			return nil, "", malformed("armor checksum line %q is not '=' and 4 base64 characters", clip(last))
		}
		crc, data = last, data[:len(data)-1]
		if len(data) == 0 {
			return nil, "", malformed("armor has a checksum but no data")
		}
	}
	return data, crc, nil
}

// decodeWire decodes XEP-0027 wire text (or, leniently, a complete armored
// block of the expected type) to the binary OpenPGP data. A CRC line, when
// present, must match.
func decodeWire(wire, blockType string, max int) ([]byte, error) {
	if max > 0 && len(wire) > max {
		return nil, fmt.Errorf("%w: armored data is %d bytes, limit %d", ErrTooLarge, len(wire), max)
	}
	if strings.Contains(wire, armorBegin) {
		stripped, got, err := StripArmor(wire)
		if err != nil {
			return nil, err
		}
		if got != blockType {
			return nil, malformed("armor block is %q, want %q", got, blockType)
		}
		wire = stripped
	}
	fields, crc, err := wireFields(wire)
	if err != nil {
		return nil, err
	}
	b64 := strings.Join(fields, "")
	data, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, malformed("armor base64: %v", err)
	}
	if crc != "" {
		sum, err := base64.StdEncoding.Strict().DecodeString(crc[1:])
		if err != nil || len(sum) != 3 {
			return nil, malformed("armor checksum line %q is not base64", crc)
		}
		want := uint32(sum[0])<<16 | uint32(sum[1])<<8 | uint32(sum[2])
		if got := crc24(data); got != want {
			return nil, fmt.Errorf("%w: %w: data has CRC %06X, checksum line says %06X (altered or truncated)",
				ErrMalformed, ErrBadCRC, got, want)
		}
	}
	if len(data) == 0 {
		return nil, malformed("armor holds no data")
	}
	return data, nil
}

// Armor restores the armor that XEP-0027 §1 strips from wire text: the
// BEGIN line of blockType (SignatureBlock or MessageBlock), the blank line
// that must follow it, the data and checksum lines and the END line. White
// space around and inside wire is normalised; the data is not decoded, so
// Armor does not check the CRC (an OpenPGP program reading the result will).
// The result is what `gpg --verify` or `gpg --decrypt` reads.
func Armor(wire, blockType string) (string, error) {
	if strings.Contains(wire, armorBegin) {
		stripped, got, err := StripArmor(wire)
		if err != nil {
			return "", err
		}
		if got != blockType {
			return "", malformed("armor block is %q, want %q", got, blockType)
		}
		wire = stripped
	}
	data, crc, err := wireFields(wire)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString(armorBegin + blockType + armorDashes + "\n\n")
	for _, f := range data {
		sb.WriteString(f)
		sb.WriteByte('\n')
	}
	if crc != "" {
		sb.WriteString(crc)
		sb.WriteByte('\n')
	}
	sb.WriteString(armorEnd + blockType + armorDashes + "\n")
	return sb.String(), nil
}

// StripArmor removes what XEP-0027 §1 says is not sent: the BEGIN line, the
// armor headers (Version:, Comment:, ...) with the blank line after them, and
// the END line. It keeps the base64 lines and the CRC line and returns them
// with the block type named by the BEGIN line. Text before the BEGIN line and
// after the END line is ignored; CRLF line endings are accepted.
func StripArmor(armored string) (wire, blockType string, err error) {
	lines := strings.Split(strings.ReplaceAll(armored, "\r\n", "\n"), "\n")
	i := 0
	for i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), armorBegin) {
		i++
	}
	if i == len(lines) {
		return "", "", malformed("no armor BEGIN line")
	}
	begin := strings.TrimSpace(lines[i])
	if !strings.HasSuffix(begin, armorDashes) || len(begin) <= len(armorBegin)+len(armorDashes) {
		return "", "", malformed("bad armor BEGIN line %q", clip(begin))
	}
	blockType = begin[len(armorBegin) : len(begin)-len(armorDashes)]
	i++
	// Armor headers: "Key: value" lines up to the blank line (RFC 4880
	// §6.2). GnuPG 2.2 writes none by default, only the blank line.
	for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
		if !strings.Contains(lines[i], ": ") {
			// No blank line: the data starts here (lenient).
			break
		}
		i++
	}
	var out []string
	end := false
	for ; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, armorEnd) {
			if l != armorEnd+blockType+armorDashes {
				return "", "", malformed("armor END line %q does not match BEGIN %q", clip(l), blockType)
			}
			end = true
			break
		}
		out = append(out, l)
	}
	if !end {
		return "", "", malformed("no armor END line (truncated?)")
	}
	if len(out) == 0 {
		return "", "", malformed("empty armor")
	}
	return strings.Join(out, "\n"), blockType, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 40
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

package xmlstream

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchStream is a realistic s2s stream: chat messages with a body and a
// few payloads, presence, and iq.
func benchStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString(hdr)
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0, 1:
			b.WriteString(`<message from='juliet@capulet.example/balcony' to='romeo@montague.example' type='chat' id='m1' xml:lang='en'><body>` + strings.Repeat("Art thou not Romeo, and a Montague? ", 3) + `</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='a9f1b2'/></message>`)
		case 2:
			b.WriteString(`<presence from='juliet@capulet.example/balcony' to='romeo@montague.example'><show>away</show><status>be right back</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`)
		case 3:
			b.WriteString(`<iq from='capulet.example' to='montague.example' id='p1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// readStream reads the stream in, header and elements, once per
// iteration.
func readStream(b *testing.B, in []byte) { readStreamBorrow(b, in, false) }

// readStreamBorrow is readStream with the elements lent (SetBorrow) or
// not.
func readStreamBorrow(b *testing.B, in []byte, borrow bool) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(in), Limits{})
		r.SetBorrow(borrow)
		r.ReadHeader()
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkReader(b *testing.B) {
	in := benchStream(1000)
	readStream(b, in)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/stanza")
}

// BenchmarkEncodingXML is the same input through a plain encoding/xml token
// pass, the baseline the reader must beat.
func BenchmarkEncodingXML(b *testing.B) {
	in := benchStream(1000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d := xml.NewDecoder(bytes.NewReader(in))
		for {
			if _, err := d.RawToken(); err == io.EOF || err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/stanza")
}

// BenchmarkReaderLargeBody reads messages with 4 KiB bodies, where the
// time goes to scanning character data.
func BenchmarkReaderLargeBody(b *testing.B) {
	readStream(b, bodyStream(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.\n", 64)))
}

// BenchmarkReaderUTF8Body is BenchmarkReaderLargeBody with bodies of
// accented Latin and Japanese: non-ASCII text, checked as UTF-8.
func BenchmarkReaderUTF8Body(b *testing.B) {
	readStream(b, bodyStream(strings.Repeat("Größe, façade, naïve; 日本語のテキスト. ", 100)))
}

// BenchmarkReaderASCIIBodyLent is BenchmarkReaderASCIIBody with the
// elements lent, as an s2s stream that lends its stanzas reads them.
func BenchmarkReaderASCIIBodyLent(b *testing.B) {
	readStreamBorrow(b, bodyStream(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ. ", 64)), true)
}

// BenchmarkReaderLent is BenchmarkReader with the elements lent.
func BenchmarkReaderLent(b *testing.B) {
	readStreamBorrow(b, benchStream(1000), true)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/stanza")
}

// bodyStream is a stream of 100 messages with the given body.
func bodyStream(body string) []byte {
	var s bytes.Buffer
	s.WriteString(hdr)
	for range 100 {
		s.WriteString(`<message from='juliet@capulet.example/balcony' to='romeo@montague.example' type='chat' id='m1'><body>` + body + `</body></message>`)
	}
	return s.Bytes()
}

// BenchmarkReaderASCIIBody is BenchmarkReaderLargeBody with bodies of
// ASCII letters and spaces only, as bench/run.sh's driver sends: the
// text scanner's fast path, uninterrupted.
func BenchmarkReaderASCIIBody(b *testing.B) {
	readStream(b, bodyStream(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ. ", 64)))
}

// BenchmarkReaderRelay reads, lent, the messages bench/run.sh's driver
// sends: four attributes and a 100-byte body, the relay's hot path.
func BenchmarkReaderRelay(b *testing.B) {
	var s bytes.Buffer
	s.WriteString(hdr)
	body := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ. ", 2)[:100]
	for i := range 1000 {
		fmt.Fprintf(&s, "<message from='send@send.a.test' to='recv@recv.b.test' type='normal' id='m0-%d'><body>%s</body></message>", i, body)
	}
	readStreamBorrow(b, s.Bytes(), true)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/stanza")
}

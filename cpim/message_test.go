package cpim

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEscape(t *testing.T) {
	for i, tc := range []struct {
		text, wire string
	}{
		0: {"plain text", "plain text"},
		1: {`C:\dir`, `C:\\dir`},
		2: {"a\tb\nc\rd\be", `a\tb\nc\rd\be`},
		3: {"\x00\x01\x1f\x7f", `\u0000\u0001\u001F\u007F`},
		4: {`"quoted" 'single'`, `"quoted" 'single'`},
		5: {"héllo €😀", "héllo €😀"},
	} {
		if got := escapeValue(tc.text); got != tc.wire {
			t.Errorf("%d: escapeValue(%q) = %q, want %q", i, tc.text, got, tc.wire)
		}
		if got := unescape(tc.wire); got != tc.text {
			t.Errorf("%d: unescape(%q) = %q, want %q", i, tc.wire, got, tc.text)
		}
	}
	if got := escapeQuoted(`say "hi"`, '"'); got != `say \"hi\"` {
		t.Errorf("escapeQuoted = %q", got)
	}
}

// RFC 3862 §2.3 parsing rules.
func TestUnescape(t *testing.T) {
	for i, tc := range []struct{ wire, text string }{
		0: {`\"\'\\`, `"'\`},
		1: {`\q\é`, `qé`},         // unknown escape: the next character
		2: {`end\`, `end`},        // lone backslash at the end: ignored
		3: {`\u00e9\u00C9`, `éÉ`}, // hex in either case
		4: {`\u12`, `u12`},        // short \u: unknown escape
		5: {`\uD83D\uDE00`, "😀"},  // surrogate pair joined
		6: {`\uD83Dx`, "\uFFFDx"}, // lone surrogate
		7: {`\uDE00\uD83D`, "\uFFFD\uFFFD"},
	} {
		if got := unescape(tc.wire); got != tc.text {
			t.Errorf("%d: unescape(%q) = %q, want %q", i, tc.wire, got, tc.text)
		}
	}
}

func TestAddress(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want Address
		err  bool
	}{
		0: {in: "Juliet Capulet <im:juliet@example.com>", want: Address{"Juliet Capulet", "im:juliet@example.com"}},
		1: {in: "<im:juliet@example.com>", want: Address{"", "im:juliet@example.com"}},
		2: {in: `"Capulet, Juliet" <im:juliet@example.com>`, want: Address{"Capulet, Juliet", "im:juliet@example.com"}},
		3: {in: `"A \"B\""<im:a@b>`, want: Address{`A "B"`, "im:a@b"}},
		4: {in: "im:juliet@example.com", want: Address{"", "im:juliet@example.com"}},
		5: {in: "Juliet <juliet@example.com>", err: true}, // not an absolute URI
		6: {in: "Juliet <im:a b>", err: true},
		7: {in: `"open <im:a@b>`, err: true},
		8: {in: "Juliet im:a@b>", err: true},
		9: {in: "Ju\x01liet <im:a@b>", err: true},
	} {
		got, err := ParseAddress(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%d: ParseAddress(%q) = %#v, %v", i, tc.in, got, err)
		}
		if err == nil && strings.HasSuffix(tc.in, ">") {
			if back, err := ParseAddress(got.String()); err != nil || back != got {
				t.Errorf("%d: String() = %q does not parse back: %#v %v", i, got.String(), back, err)
			}
		}
	}
}

const minimal = "From: <im:a@example.com>\r\n\r\nContent-type: text/plain\r\n\r\nhi"

func TestParseErrors(t *testing.T) {
	long := "Subject: " + strings.Repeat("x", DefaultMaxLineLength)
	many := strings.Repeat("Subject: x\r\n", DefaultMaxHeaders+1)
	for i, tc := range []struct {
		in  string
		err error
	}{
		0:  {"", ErrSyntax},
		1:  {"From: <im:a@b>\r\n", ErrSyntax},                                    // no blank line
		2:  {"From: <im:a@b>\r\n\r\n\r\nhi", ErrSyntax},                          // no Content-Type
		3:  {"Fr om: x\r\n\r\nContent-type: text/plain\r\n\r\n", ErrSyntax},      // bad name
		4:  {"From <im:a@b>\r\n\r\nContent-type: text/plain\r\n\r\n", ErrSyntax}, // no colon
		5:  {"From: <im:a@b>\r\nFrom: <im:c@d>\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		6:  {"DateTime: yesterday\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		7:  {"Subject:;lang=!! x\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		8:  {"NS: <urn:x#frag>\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		9:  {"Require: a,,b\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		10: {"Content-Type: text/plain\r\n\r\nFrom: <im:a@b>\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax}, // outer not Message/CPIM
		11: {"Content-Type: message/cpim\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		12: {long + "\r\n\r\nContent-type: t/p\r\n\r\n", ErrTooLarge},
		13: {many + "\r\nContent-type: t/p\r\n\r\n", ErrTooLarge},
		14: {"Subject: \xff\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax},
		15: {"NS: <urn:a>\r\nFrom: x\r\nNS: <" + NamespaceCPIM + ">\r\n\r\nContent-type: t/p\r\n\r\n", ErrSyntax}, // extension would turn into From
		16: {"\r\nContent-type: t/p\r\nContent-Type: t/q\r\n\r\n", ErrSyntax},
	} {
		_, err := Parse([]byte(tc.in))
		if !errors.Is(err, tc.err) {
			t.Errorf("%d: Parse error %v, want %v", i, err, tc.err)
		}
	}
	if _, err := (Parser{MaxSize: 10}).Parse([]byte(minimal)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxSize: %v", err)
	}
}

// Tolerated input forms, each equal to the canonical object.
func TestParseTolerant(t *testing.T) {
	canon, err := Parse([]byte("From: Juliet <im:j@example.com>\r\nSubject: hi\r\n\r\nContent-type: text/plain\r\nContent-ID: <x@y>\r\n\r\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range []string{
		0: "From: Juliet <im:j@example.com>\nSubject: hi\n\nContent-type: text/plain\nContent-ID: <x@y>\n\nbody",
		1: "Content-Type: Message/CPIM\r\n\r\nFrom: Juliet <im:j@example.com>\r\nSubject: hi\r\n\r\nContent-type: text/plain\r\nContent-ID: <x@y>\r\n\r\nbody",
		2: "From:Juliet <im:j@example.com>\r\nSubject:   hi  \r\n\r\nCONTENT-TYPE:text/plain\r\nContent-ID:\r\n <x@y>\r\n\r\nbody",
		3: "NS: cpim <" + NamespaceCPIM + ">\r\ncpim.From: Juliet <im:j@example.com>\r\ncpim.Subject: hi\r\n\r\nContent-type: text/plain\r\nContent-ID: <x@y>\r\n\r\nbody",
	} {
		m, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		m.NS = nil
		if strings.HasPrefix(in, "CONTENT") || i == 2 {
			m.ContentHeaders[0].Name = "Content-ID"
		}
		if !sameMessage(m, canon) {
			t.Errorf("%d: got %#v\nwant %#v", i, m, canon)
		}
	}
}

func TestMarshal(t *testing.T) {
	m := &Message{
		FromURI:     "im:juliet@example.com",
		ToURI:       "im:romeo@example.net",
		DateTime:    mustTime("2003-12-09T23:45:36.66Z"),
		Subjects:    []Subject{{Text: "Line\none \\ two"}, {Lang: "cz", Text: "Ahoj!"}},
		Extensions:  []Header{{Name: "X-Note", Params: `;q="a b"`, Value: "tab\there"}},
		ContentType: "text/plain; charset=utf-8",
		Body:        []byte("Wherefore art thou, Romeo?"),
	}
	const want = "From: <im:juliet@example.com>\r\nTo: <im:romeo@example.net>\r\n" +
		"DateTime: 2003-12-09T23:45:36.66Z\r\nSubject: Line\\none \\\\ two\r\nSubject:;lang=cz Ahoj!\r\n" +
		"X-Note:;q=\"a b\" tab\\there\r\n\r\nContent-type: text/plain; charset=utf-8\r\n\r\nWherefore art thou, Romeo?"
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("got  %q\nwant %q", b, want)
	}
	m2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if m2.From != "<im:juliet@example.com>" || m2.Subjects[0] != m.Subjects[0] || m2.Extensions[0] != m.Extensions[0] {
		t.Errorf("parsed back %#v", m2)
	}
	mime, _ := m.MarshalMIME()
	if !bytes.HasPrefix(mime, []byte("Content-type: Message/CPIM\r\n\r\nFrom:")) {
		t.Errorf("MarshalMIME = %q", mime)
	}

	for i, bad := range []*Message{
		0: {},                                     // no Content-Type
		1: {From: "x", ContentType: "text/plain"}, // not an address
		2: {From: "<im:a@b>", FromURI: "im:c@d", ContentType: "text/plain"},
		3: {Subjects: []Subject{{Text: " lead"}}, ContentType: "text/plain"},
		4: {Extensions: []Header{{Name: "From", Value: "x"}}, ContentType: "text/plain"},
		5: {Extensions: []Header{{Name: "a.b.c", Value: "x"}}, ContentType: "text/plain"},
		6: {ContentType: "text/plain\r\nX: y"},
		7: {NS: []Namespace{{"p q", "urn:a"}}, ContentType: "text/plain"},
		8: {Subjects: []Subject{{Text: "\xff"}}, ContentType: "text/plain"},
	} {
		if _, err := bad.Marshal(); !errors.Is(err, ErrSyntax) {
			t.Errorf("%d: Marshal error %v, want ErrSyntax", i, err)
		}
	}
}

// RFC 3862 §4.4's DateTime is an RFC 3339 date-time: every form of it is
// read (issue 19); Marshal writes time.RFC3339Nano.
func TestDateTime(t *testing.T) {
	for i, tc := range []struct {
		in, out string
		utc     time.Time
	}{
		// The inputs: RFC 3339 §5.8's leap second, and §5.6's
		// lower-case t and z.
		0: {"1990-12-31T15:59:60-08:00", "1990-12-31T15:59:59-08:00", time.Date(1990, 12, 31, 23, 59, 59, 0, time.UTC)},
		1: {"2001-02-01t12:16:49z", "2001-02-01T12:16:49Z", time.Date(2001, 2, 1, 12, 16, 49, 0, time.UTC)},
		// The other RFC 3339 §5.8 examples.
		2: {"1985-04-12T23:20:50.52Z", "1985-04-12T23:20:50.52Z", time.Date(1985, 4, 12, 23, 20, 50, 520e6, time.UTC)},
		3: {"1996-12-19T16:39:57-08:00", "1996-12-19T16:39:57-08:00", time.Date(1996, 12, 20, 0, 39, 57, 0, time.UTC)},
		4: {"1990-12-31T23:59:60Z", "1990-12-31T23:59:59Z", time.Date(1990, 12, 31, 23, 59, 59, 0, time.UTC)},
		5: {"1937-01-01T12:00:27.87+00:20", "1937-01-01T12:00:27.87+00:20", time.Date(1937, 1, 1, 11, 40, 27, 870e6, time.UTC)},
		// Fractions to the nanosecond, more digits dropped; zero offsets,
		// §4.3's -00:00 too, are written Z.
		6:  {"2003-12-09T23:45:36.660000000Z", "2003-12-09T23:45:36.66Z", time.Date(2003, 12, 9, 23, 45, 36, 660e6, time.UTC)},
		7:  {"2003-12-09t23:45:36.1234567891234+05:45", "2003-12-09T23:45:36.123456789+05:45", time.Date(2003, 12, 9, 18, 0, 36, 123456789, time.UTC)},
		8:  {"2000-02-29T00:00:00+00:00", "2000-02-29T00:00:00Z", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		9:  {"2000-02-29T00:00:00-00:00", "2000-02-29T00:00:00Z", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		10: {"2016-12-31T23:59:60.5Z", "2016-12-31T23:59:59.5Z", time.Date(2016, 12, 31, 23, 59, 59, 500e6, time.UTC)},
		11: {"2017-01-01T05:44:60+05:45", "2017-01-01T05:44:59+05:45", time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC)},
		12: {"0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		obj := "From: <im:a@example.com>\r\nDateTime: " + tc.in + "\r\n\r\nContent-type: text/plain\r\n\r\nhi"
		m, err := Parse([]byte(obj))
		if err != nil {
			t.Errorf("%d: Parse: %v", i, err)
			continue
		}
		if !m.DateTime.Equal(tc.utc) {
			t.Errorf("%d: DateTime %v, want %v", i, m.DateTime, tc.utc)
		}
		b := checkReencode(t, m)
		if want := "\r\nDateTime: " + tc.out + "\r\n"; !strings.Contains(string(b), want) {
			t.Errorf("%d: Marshal = %q, want %q", i, b, want)
		}
	}
	for i, bad := range []string{
		0:  "2001-02-01T12:16:60Z", // second 60 where no leap second can be
		1:  "1990-12-31T15:59:60Z", // 15:59 UTC
		21: "2001-02-01T23:59:60Z", // not the end of a month
		22: "1990-12-31T23:59:60-08:00",
		2:  "2001-02-29T00:00:00Z", // not a leap year
		3:  "2001-04-31T00:00:00Z", // April has 30 days
		4:  "2001-13-01T00:00:00Z",
		5:  "2001-02-01T24:00:00Z", // RFC 3339 has no hour 24
		6:  "2001-02-01T12:60:00Z",
		7:  "2001-02-01T12:16:61Z",
		8:  "2001-02-01T12:16:49",   // no offset
		9:  "2001-02-01 12:16:49Z",  // a space is an application's choice (§5.6 note), not date-time
		10: "2001-02-01T12:16:49.Z", // no fraction digit
		11: "2001-02-01T12:16:49+0500",
		12: "2001-02-01T12:16:49+24:00",
		13: "2001-02-01T12:16:49+05:60",
		14: "01-02-01T12:16:49Z",
		15: "2001-2-01T12:16:49Z",
		16: "2001-02-01T12:16:49Zjunk",
		17: "+001-02-01T12:16:49Z",
		18: "2001-02-01T12:16:49+-5:00",
		19: "2001-02-01T12:16:49+05:+0",
		20: "",
	} {
		obj := "DateTime: " + bad + "\r\n\r\nContent-type: t/p\r\n\r\n"
		if _, err := Parse([]byte(obj)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%d: Parse(DateTime %q) error %v, want ErrSyntax", i, bad, err)
		}
	}
}

// No header line ends in whitespace (RFC 3862 §2.2): a Subject or
// extension header cannot be empty, an empty MIME header is written
// without the space (issue 19).
func TestEmptyHeaders(t *testing.T) {
	for i, m := range []*Message{
		0: {Subjects: []Subject{{Text: ""}}, ContentType: "text/plain"},
		1: {Subjects: []Subject{{Lang: "fr", Text: ""}}, ContentType: "text/plain"},
		2: {NS: []Namespace{{"XMPP", NamespaceXMPP}}, Extensions: []Header{{Name: "XMPP.Body", Params: ";lang=fr"}}, ContentType: "text/plain"},
		3: {Extensions: []Header{{Name: "X-Note"}}, ContentType: "text/plain"},
	} {
		if b, err := m.Marshal(); !errors.Is(err, ErrSyntax) {
			t.Errorf("%d: Marshal = %q, %v; want ErrSyntax", i, b, err)
		}
	}
	for i, in := range []string{
		0: "Subject: \r\n\r\nContent-type: t/p\r\n\r\n",
		1: "Subject:;lang=fr \r\n\r\nContent-type: t/p\r\n\r\n",
		2: "NS: XMPP <" + NamespaceXMPP + ">\r\nXMPP.Body:;lang=fr \r\n\r\nContent-type: t/p\r\n\r\n",
		3: "X-Note:\r\n\r\nContent-type: t/p\r\n\r\n",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%d: Parse(%q) error %v, want ErrSyntax", i, in, err)
		}
	}
	m, err := Parse([]byte("\r\nContent-type: text/plain\r\nContent-Description: \r\n\r\nhi"))
	if err != nil {
		t.Fatal(err)
	}
	b := checkReencode(t, m)
	if want := "\r\nContent-type: text/plain\r\nContent-Description:\r\n\r\nhi"; string(b) != want {
		t.Errorf("Marshal = %q, want %q", b, want)
	}
	checkHeaderLines(t, b)
}

// checkHeaderLines fails t if a header line of a marshalled object ends in
// whitespace.
func checkHeaderLines(t *testing.T, b []byte) {
	t.Helper()
	// The message headers and the content's MIME headers, each block
	// ended by an empty line; the content follows.
	rest, blocks := string(b), 0
	for blocks < 2 {
		line, r, ok := strings.Cut(rest, "\r\n")
		if !ok {
			t.Errorf("header block not ended by an empty line: %q", rest)
			return
		}
		if line == "" {
			blocks++
		} else if strings.TrimRight(line, " \t") != line {
			t.Errorf("header line %q ends in whitespace", line)
		}
		rest = r
	}
}

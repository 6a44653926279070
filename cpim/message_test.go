package cpim

import (
	"bytes"
	"errors"
	"strings"
	"testing"
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

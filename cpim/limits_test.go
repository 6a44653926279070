package cpim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Oversized and hostile inputs end in an error, quickly.
func TestXMLLimits(t *testing.T) {
	for i, tc := range []struct {
		in  string
		err error
	}{
		0: {"<message xmlns='jabber:client'>" + strings.Repeat("x", maxXMLSize) + "</message>", ErrTooLarge},
		1: {strings.Repeat("<a>", maxXMLDepth+1) + strings.Repeat("</a>", maxXMLDepth+1), ErrTooLarge},
		2: {"<message xmlns='jabber:client'>" + strings.Repeat("<a/>", maxXMLToken) + "</message>", ErrTooLarge},
		3: {"<message xmlns='jabber:client'" + strings.Repeat(" a=''", 0) + func() string {
			var b strings.Builder
			for j := 0; j <= maxXMLAttrs; j++ {
				b.WriteString(" a" + strings.Repeat("b", j) + "=''")
			}
			return b.String()
		}() + "/>", ErrTooLarge},
		4: {`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>&lol2;</presence>`, ErrSyntax},
		5: {`<?xml version='1.0' encoding='ISO-8859-1'?><message xmlns='jabber:client'/>`, ErrSyntax},
	} {
		if _, err := parseXML([]byte(tc.in)); !errors.Is(err, tc.err) {
			t.Errorf("%d: error %v, want %v", i, err, tc.err)
		}
	}
	// Text split by many comments is joined in linear time.
	in := "<message xmlns='jabber:client'><body>" + strings.Repeat("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa<!---->", 4000) + "</body></message>"
	start := time.Now()
	m, err := FromStanza([]byte(in))
	if err != nil || len(m.Body) != 34*4000 {
		t.Fatalf("FromStanza: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, DefaultMaxSize+1)
	if _, err := Parse(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size: %v", err)
	}
	p := Parser{MaxHeaders: 2}
	if _, err := p.Parse([]byte("Subject: a\r\nSubject: b\r\nSubject: c\r\n\r\nContent-type: t/p\r\n\r\n")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("headers: %v", err)
	}
	if _, err := p.Parse([]byte("\r\nContent-type: t/p\r\n a\r\n b\r\n\r\n")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("content headers: %v", err)
	}
	p = Parser{MaxLineLength: 10}
	if _, err := p.Parse([]byte("Subject: abcdefghijk\r\n\r\nContent-type: t/p\r\n\r\n")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("line: %v", err)
	}
}

func BenchmarkParse(b *testing.B) {
	in := crlf(readVector(b, "c6-rfc3862-s5.1.cpim"))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromStanza(b *testing.B) {
	in := []byte(`<message xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net' type='chat'><body>Wherefore art thou, Romeo?</body></message>`)
	for b.Loop() {
		if _, err := FromStanza(in); err != nil {
			b.Fatal(err)
		}
	}
}

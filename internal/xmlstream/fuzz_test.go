package xmlstream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/s2sd/s2sd/stream"
)

// FuzzReader: no input panics the reader, every error is a stream error or
// an I/O end, and every element it accepts is well-formed XML to
// encoding/xml too.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		hdr + "<message to='b.test'><body>hi</body></message></stream:stream>",
		hdr + "<db:result from='a' to='b'>k</db:result>",
		hdr + "<iq><q xmlns:p='u'><p:x p:y='&amp;'/></q></iq>",
		hdr + "<message><![CDATA[x]]></message>",
		hdr + "<!DOCTYPE x>",
		hdr + "<message>&ent;</message>",
		"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='c.test'>",
		hdr + "<message to='&#x1F600;'/>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), Limits{MaxStanza: 4096, MaxDepth: 16})
		if _, err := r.ReadHeader(); err != nil {
			checkErr(t, err)
			return
		}
		for range 100 {
			el, err := r.Next()
			if err != nil {
				checkErr(t, err)
				return
			}
			if len(el.Raw) > 4096 {
				t.Fatalf("element of %d bytes passed a 4096 limit", len(el.Raw))
			}
			d := el.Decoder()
			d.Strict = true
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("accepted %q but encoding/xml says %v", el.Raw, err)
				}
			}
			_ = el.Attr("to")
		}
	})
}

// FuzzBorrow: a Reader whose elements borrow its buffer returns the same
// elements as one that copies them, each intact until the next read.
func FuzzBorrow(f *testing.F) {
	f.Add([]byte(hdr + "<message to='b.test'><body>hi</body></message> <iq/>\n<presence/></stream:stream>"))
	f.Add([]byte(hdr + "<a>" + string(bytes.Repeat([]byte("x"), 5000)) + "</a><b/>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		lim := Limits{MaxStanza: 4096, MaxDepth: 16}
		own := NewReader(bytes.NewReader(in), lim)
		lent := NewReader(iotestHalf(in), lim)
		lent.SetBorrow(true)
		_, err1 := own.ReadHeader()
		_, err2 := lent.ReadHeader()
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("header: %v, borrowing %v", err1, err2)
		}
		for err1 == nil {
			var a, b *Element
			a, err1 = own.Next()
			b, err2 = lent.Next()
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("%v, borrowing %v", err1, err2)
			}
			if err1 == nil && (!bytes.Equal(a.Raw, b.Raw) || a.Attr("id") != b.Attr("id") ||
				a.Name() != b.Name() || !bytes.Equal(a.Inner(), b.Inner())) {
				t.Fatalf("%q, borrowing %q", a.Raw, b.Raw)
			}
		}
	})
}

// iotestHalf reads in as iotest.HalfReader would: elements then span reads.
func iotestHalf(in []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(in)) }

func checkErr(t *testing.T, err error) {
	var se *stream.Error
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, ErrStreamEnd) {
		return
	}
	t.Fatalf("unexpected error type %T: %v", err, err)
}

var _ = xml.Name{}

// FuzzStartTag: where the fast scan of a start tag takes it, it finds
// exactly what the byte-by-byte scan finds: name, attributes, end.
func FuzzStartTag(f *testing.F) {
	for _, s := range []string{
		"<message from='a@b.test/r' to='c.test' type='chat' id='m1'>",
		"<body/>",
		`<x:y xmlns:x="u" a = 'v' b='&amp;'>`,
		"<iq\tid='1'\n/>",
		"<a b='1' b='2'>",
		"<é a='1'>",
		"<a b='>'c='2'>",
	} {
		f.Add([]byte(s), 4)
	}
	f.Fuzz(func(t *testing.T, in []byte, maxAttrs int) {
		if len(in) == 0 || in[0] != '<' || maxAttrs < 0 || maxAttrs > 64 {
			return
		}
		name, prefixed, attrs, empty, special, end, ok := startTagFast(in, 0, nil, maxAttrs)
		if !ok {
			return
		}
		r := NewReader(nil, Limits{MaxAttrs: maxAttrs})
		r.buf, r.w, r.eof, r.alias = in, len(in), true, true
		s := scanner{r: r, limit: len(in)}
		name2, prefixed2, attrs2, empty2, err := s.startTagSlow(nil)
		if err != nil {
			t.Fatalf("%q: fast scan took it, byte by byte: %v", in, err)
		}
		if name != name2 || prefixed != prefixed2 || empty != empty2 || special != s.special || end != s.pos || !slices.Equal(attrs, attrs2) {
			t.Fatalf("%q: fast %v %v %v %v %v %d, byte by byte %v %v %v %v %v %d", in, name, prefixed, attrs, empty, special, end, name2, prefixed2, attrs2, empty2, s.special, s.pos)
		}
	})
}

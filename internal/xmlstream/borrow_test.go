package xmlstream

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestBorrow: with SetBorrow, elements are the bytes the peer sent, in
// the Reader's buffer; Own keeps them through later reads; appending to a
// borrowed Raw never changes the element after it; and PoisonBorrowed
// shows at once an element kept without Own.
func TestBorrow(t *testing.T) {
	var want []string
	var in strings.Builder
	in.WriteString(hdr)
	for i := range 200 {
		el := fmt.Sprintf("<message to='b.test' id='m%d'><body>%s</body></message>", i, strings.Repeat("x", i*37%5000))
		want = append(want, el)
		in.WriteString(el)
		in.WriteString("\n")
	}
	for _, src := range []struct {
		name string
		wrap func([]byte) *Reader
	}{
		{"whole", func(b []byte) *Reader { return NewReader(bytes.NewReader(b), Limits{}) }},
		{"halves", func(b []byte) *Reader { return NewReader(iotest.HalfReader(bytes.NewReader(b)), Limits{}) }},
		{"bytes", func(b []byte) *Reader { return NewReader(iotest.OneByteReader(bytes.NewReader(b)), Limits{}) }},
	} {
		t.Run(src.name, func(t *testing.T) {
			r := src.wrap([]byte(in.String()))
			r.SetBorrow(true)
			if _, err := r.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			var kept []*Element
			for i := range want {
				el, err := r.Next()
				if err != nil {
					t.Fatalf("element %d: %v", i, err)
				}
				if !el.Borrowed() || string(el.Raw) != want[i] {
					t.Fatalf("element %d: borrowed %v, %q", i, el.Borrowed(), el.Raw)
				}
				_ = append(el.Raw, "<garbage/>"...)
				if i%2 == 0 {
					el.Own()
					if el.Borrowed() {
						t.Fatal("borrowed after Own")
					}
					kept = append(kept, el)
				}
			}
			for i, el := range kept {
				if string(el.Raw) != want[2*i] || el.Attr("id") != fmt.Sprintf("m%d", 2*i) || el.Local != "message" {
					t.Fatalf("kept element %d changed: %q", 2*i, el.Raw)
				}
			}
		})
	}

	PoisonBorrowed(true)
	defer PoisonBorrowed(false)
	r := NewReader(strings.NewReader(in.String()), Limits{})
	r.SetBorrow(true)
	r.ReadHeader()
	first, _ := r.Next()
	second, _ := r.Next()
	if string(first.Raw) != strings.Repeat("#", len(want[0])) || first.Local != "#" || first.Attr("id") != "" {
		t.Fatalf("element kept without Own, under PoisonBorrowed: %s %q", first.Local, first.Raw)
	}
	if string(second.Raw) != want[1] {
		t.Fatalf("the element just read: %q", second.Raw)
	}
}

// TestBorrowAllocs: a stream read with SetBorrow, whose elements are
// handled and let go, allocates nothing per element: the Reader takes
// back an element not owned and reuses it.
func TestBorrowAllocs(t *testing.T) {
	var in strings.Builder
	in.WriteString(hdr)
	for i := range 300 {
		fmt.Fprintf(&in, "<message from='a@a.test/r' to='b@b.test' type='chat' id='m%d'><body>hi</body><x xmlns='urn:x' a='1'/></message>", i)
	}
	r := NewReader(strings.NewReader(in.String()), Limits{})
	r.SetBorrow(true)
	r.ReadHeader()
	for range 10 {
		r.Next()
	}
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprint("m", i))
	}
	n := 10
	allocs := testing.AllocsPerRun(200, func() {
		el, err := r.Next()
		if id, _ := el.AttrBytes("id"); err != nil || string(id) != ids[n] {
			t.Fatalf("element %d: %v", n, err)
		}
		n++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per element lent", allocs)
	}
}

// TestReadAt: ReadAt is when the bytes of the elements just returned were
// read: the same for elements that came in one read, later for the next
// read, and never before the bytes were sent.
func TestReadAt(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, Limits{})
	t0 := time.Now()
	go pw.Write([]byte(hdr + "<a/><b/>"))
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	r.Next()
	at1 := r.ReadAt()
	r.Next()
	if at2 := r.ReadAt(); at1.Before(t0) || !at2.Equal(at1) {
		t.Fatalf("read at %v then %v, sent at %v", at1, at2, t0)
	}
	time.Sleep(20 * time.Millisecond)
	t1 := time.Now()
	go pw.Write([]byte("<c/>"))
	if el, err := r.Next(); err != nil || el.Local != "c" {
		t.Fatal(el, err)
	}
	if at3 := r.ReadAt(); at3.Before(t1) {
		t.Fatalf("third element read at %v, sent at %v", at3, t1)
	}
}

// TestAttrStringAt: an attribute's value as a string is right whether the
// element's bytes are its own, lent or escaped, and a lent element's
// string stays as it was once the Reader reads on and overwrites them.
func TestAttrStringAt(t *testing.T) {
	in := hdr + "<message id='first' to='a&amp;b'/><message id='second'/>"
	for _, lend := range []bool{false, true} {
		PoisonBorrowed(lend)
		r := NewReader(strings.NewReader(in), Limits{})
		r.SetBorrow(lend)
		r.ReadHeader()
		el, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		id, to := el.AttrStringAt(0), el.AttrStringAt(1)
		if id != "first" || to != "a&b" {
			t.Fatalf("lend %v: %q %q", lend, id, to)
		}
		r.Next() // a lent element is poisoned now
		if id != "first" || to != "a&b" {
			t.Fatalf("lend %v, after the next read: %q %q", lend, id, to)
		}
	}
	PoisonBorrowed(false)
}

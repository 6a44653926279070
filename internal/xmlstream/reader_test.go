package xmlstream

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/s2sd/s2sd/stream"
)

const hdr = `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.test' to='b.test' id='s1' version='1.0' xml:lang='en'>`

func readAll(t testing.TB, in string, lim Limits) ([]*Element, error) {
	t.Helper()
	r := NewReader(strings.NewReader(in), lim)
	if _, err := r.ReadHeader(); err != nil {
		return nil, err
	}
	var els []*Element
	for {
		el, err := r.Next()
		if err != nil {
			return els, err
		}
		els = append(els, el)
	}
}

func TestHeader(t *testing.T) {
	r := NewReader(strings.NewReader(hdr), Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	want := Header{NS: NSServer, From: "a.test", To: "b.test", ID: "s1", Version: "1.0", Lang: "en"}
	if h.NS != want.NS || h.From != want.From || h.To != want.To || h.ID != want.ID || h.Version != want.Version || h.Lang != want.Lang {
		t.Fatalf("header = %+v, want %+v", h, want)
	}
	if !h.Dialback() {
		t.Error("dialback namespace not seen")
	}
}

func TestElements(t *testing.T) {
	in := hdr + " \n<message to='b.test' from='a.test' type='chat'><body>hi &amp; &#x263A;</body></message>\n\n " +
		"<db:result from='a.test' to='b.test'>k3y</db:result>" +
		"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><presence/>" +
		"<message><x xmlns:p='urn:p'><p:y p:a='1'/><![CDATA[<raw>]]></x></message>" +
		"<message xmlns='jabber:client' xml:lang='en'/><iq xmlns:x='urn:x' xmlns='urn:y'><q/></iq><x:iq xmlns:x='urn:z'/></stream:stream>"
	els, err := readAll(t, in, Limits{})
	if !errors.Is(err, ErrStreamEnd) {
		t.Fatalf("err = %v, want ErrStreamEnd", err)
	}
	want := []struct{ local, space, raw string }{
		{"message", NSServer, "<message to='b.test' from='a.test' type='chat'><body>hi &amp; &#x263A;</body></message>"},
		{"result", NSDialback, "<db:result from='a.test' to='b.test'>k3y</db:result>"},
		{"iq", NSServer, "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"},
		{"presence", NSServer, "<presence/>"},
		{"message", NSServer, "<message><x xmlns:p='urn:p'><p:y p:a='1'/><![CDATA[<raw>]]></x></message>"},
		{"message", NSClient, "<message xmlns='jabber:client' xml:lang='en'/>"},
		{"iq", "urn:y", "<iq xmlns:x='urn:x' xmlns='urn:y'><q/></iq>"},
		{"iq", "urn:z", "<x:iq xmlns:x='urn:z'/>"},
	}
	if len(els) != len(want) {
		t.Fatalf("got %d elements, want %d", len(els), len(want))
	}
	for i, w := range want {
		if els[i].Local != w.local || els[i].Space != w.space || string(els[i].Raw) != w.raw {
			t.Errorf("%d: got {%s}%s %q, want {%s}%s %q", i, els[i].Space, els[i].Local, els[i].Raw, w.space, w.local, w.raw)
		}
	}
	if got := els[0].Attr("type"); got != "chat" {
		t.Errorf("type = %q", got)
	}
}

func TestAttrUnescape(t *testing.T) {
	els, _ := readAll(t, hdr+`<message to="a&amp;b&#39;c&lt;" id='x&quot;y'/>`, Limits{})
	if len(els) != 1 {
		t.Fatal("no element")
	}
	if got := els[0].Attr("to"); got != "a&b'c<" {
		t.Errorf("to = %q", got)
	}
	if got := els[0].Attr("id"); got != `x"y` {
		t.Errorf("id = %q", got)
	}
	if _, ok := els[0].LookupAttr("from"); ok {
		t.Error("from reported present")
	}
}

// TestAttrBytes: AttrBytes agrees with LookupAttr, escaped or not, and an
// append to what it returns never writes into Raw.
func TestAttrBytes(t *testing.T) {
	els, _ := readAll(t, hdr+`<message to="a&amp;b&#39;c&lt;" from='x@y' id='' type="chat"><body/></message>`, Limits{})
	if len(els) != 1 {
		t.Fatal("no element")
	}
	el := els[0]
	raw := string(el.Raw)
	for _, name := range []string{"to", "from", "id", "type", "xml:lang"} {
		want, wok := el.LookupAttr(name)
		got, ok := el.AttrBytes(name)
		if string(got) != want || ok != wok {
			t.Errorf("%s: AttrBytes = %q, %v; LookupAttr = %q, %v", name, got, ok, want, wok)
		}
		_ = append(got, "!!!!"...)
	}
	if string(el.Raw) != raw {
		t.Errorf("Raw changed: %q", el.Raw)
	}
}

// TestHostile: each input gets the named stream error.
func TestHostile(t *testing.T) {
	deep := strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000)
	big := "<message><body>" + strings.Repeat("x", 10<<20) + "</body></message>"
	manyAttrs := "<message"
	for i := range 100 {
		manyAttrs += " a" + string(rune('a'+i%26)) + strings.Repeat("z", i) + "='1'"
	}
	manyAttrs += "/>"
	tests := []struct {
		name string
		in   string
		want stream.Condition
	}{
		{"billion laughs", `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><stream:stream/>`, stream.RestrictedXML},
		{"doctype after header", hdr + `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`, stream.RestrictedXML},
		{"external entity ref", hdr + `<message><body>&xxe;</body></message>`, stream.RestrictedXML},
		{"entity in attribute", hdr + `<message to='&e;'/>`, stream.RestrictedXML},
		{"comment", hdr + `<message><!-- c --></message>`, stream.RestrictedXML},
		{"comment at top", hdr + `<!-- c -->`, stream.RestrictedXML},
		{"processing instruction", hdr + `<message><?php x?></message>`, stream.RestrictedXML},
		{"deep nesting", hdr + deep, stream.PolicyViolation},
		{"10 MiB stanza", hdr + big, stream.PolicyViolation},
		{"too many attributes", hdr + manyAttrs, stream.PolicyViolation},
		{"invalid UTF-8", hdr + "<message><body>\xff\xfe</body></message>", stream.NotWellFormed},
		{"invalid UTF-8 in attribute", hdr + "<message to='\xc3'/>", stream.NotWellFormed},
		{"unknown stream namespace", `<stream:stream xmlns='jabber:server' xmlns:stream='urn:bad'>`, stream.InvalidNamespace},
		{"no default namespace", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`, stream.InvalidNamespace},
		{"utf-16", `<?xml version='1.0' encoding='UTF-16'?><stream:stream>`, stream.UnsupportedEncoding},
		{"mismatched tags", hdr + `<message><body></message>`, stream.NotWellFormed},
		{"]]> in text", hdr + `<message><body>a]]>b</body></message>`, stream.NotWellFormed},
		{"]]> at the start of text", hdr + `<message>]]></message>`, stream.NotWellFormed},
		{"duplicate attribute", hdr + `<message to='a' to='b'/>`, stream.NotWellFormed},
		{"unbound prefix", hdr + `<message><x:y/></message>`, stream.BadNamespacePrefix},
		{"text at top level", hdr + `hello`, stream.NotWellFormed},
		{"control character", hdr + "<message>\x01</message>", stream.NotWellFormed},
		{"bad char ref", hdr + "<message>&#0;</message>", stream.NotWellFormed},
		{"lt in attribute", hdr + "<message to='<'/>", stream.NotWellFormed},
		{"wrong stream end", hdr + "</stream:streamx>", stream.NotWellFormed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, tc.in, Limits{})
			var se *stream.Error
			if !errors.As(err, &se) || se.Condition != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

// TestBoundedMemory: a reader never buffers more than MaxBuffered, however
// large the element the peer sends.
func TestBoundedMemory(t *testing.T) {
	lim := Limits{MaxStanza: 64 << 10}
	src := io.MultiReader(strings.NewReader(hdr+"<message><body>"), infinite{})
	r := NewReader(src, lim)
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	if !errors.Is(err, stream.ErrPolicyViolation) {
		t.Fatalf("err = %v", err)
	}
	if cap(r.buf) > lim.MaxBuffered() {
		t.Fatalf("buffer grew to %d, limit %d", cap(r.buf), lim.MaxBuffered())
	}
}

type infinite struct{}

func (infinite) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestOneByteReads: the scanner resumes at every byte boundary.
func TestOneByteReads(t *testing.T) {
	in := hdr + "<message to='b.test'><body>caf\u00e9 \U0001F600 &lt;</body><x xmlns='urn:x'><![CDATA[a]]b]]></x></message> <presence/></stream:stream>"
	r := NewReader(iotest.OneByteReader(strings.NewReader(in)), Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(el.Raw), "</message>") || !strings.Contains(string(el.Raw), "\U0001F600") {
		t.Fatalf("raw = %q", el.Raw)
	}
	if el, err = r.Next(); err != nil || el.Local != "presence" {
		t.Fatalf("second = %v, %v", el, err)
	}
	if _, err = r.Next(); !errors.Is(err, ErrStreamEnd) {
		t.Fatalf("end: %v", err)
	}
}

func TestUnexpectedEOF(t *testing.T) {
	_, err := readAll(t, hdr+"<message><body>hi", Limits{})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
}

// TestReset: a restart refuses bytes the peer sent ahead (STARTTLS injection).
func TestReset(t *testing.T) {
	in := hdr + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>"
	r := NewReader(strings.NewReader(in), Limits{})
	r.ReadHeader()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if err := r.Reset(strings.NewReader(hdr)); !errors.Is(err, stream.ErrPolicyViolation) {
		t.Fatalf("reset with buffered data: %v", err)
	}
	r = NewReader(strings.NewReader(hdr+"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), Limits{})
	r.ReadHeader()
	r.Next()
	if err := r.Reset(strings.NewReader(hdr + "<presence/>")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if el, err := r.Next(); err != nil || el.Local != "presence" {
		t.Fatalf("%v %v", el, err)
	}
}

// TestAppendTo: a stanza moved from a component stream to a server stream.
func TestAppendTo(t *testing.T) {
	compHdr := `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x' xml:lang='fr'>`
	tests := []struct{ in, want string }{
		{`<message to='a@b.test'><body>salut</body></message>`,
			`<message xml:lang='fr' to='a@b.test'><body>salut</body></message>`},
		{`<message xmlns='jabber:component:accept' xml:lang='de'><body>x</body></message>`,
			`<message xmlns='jabber:server' xml:lang='de'><body>x</body></message>`},
		{`<message xml:lang='de'><x:y/></message>`,
			`<message xmlns:x='urn:x' xml:lang='de'><x:y/></message>`},
		{`<message xml:lang='en'><z xmlns='jabber:client'/></message>`,
			`<message xml:lang='en'><z xmlns='jabber:client'/></message>`},
	}
	dst := StreamContext{NS: NSServer, Lang: "en"}
	for i, tc := range tests {
		els, err := readAll(t, compHdr+tc.in, Limits{})
		if len(els) != 1 {
			t.Fatalf("%d: %v", i, err)
		}
		src := StreamContext{NS: NSComponent, Lang: "fr", Decls: []Decl{{"", NSComponent}, {"stream", NSStream}, {"x", "urn:x"}}}
		got := string(els[0].AppendTo(nil, src, dst))
		if got != tc.want {
			t.Errorf("%d: got  %s\nwant %s", i, got, tc.want)
		}
		// The result parses on a server stream, with the payload intact.
		out, err := readAll(t, hdr+got, Limits{})
		if len(out) != 1 {
			t.Errorf("%d: result does not parse: %v", i, err)
		}
	}
}

func TestDecoder(t *testing.T) {
	els, _ := readAll(t, hdr+"<db:verify from='a.test' to='b.test' id='i'>key</db:verify>", Limits{})
	var v struct {
		XMLName xml.Name
		ID      string `xml:"id,attr"`
		Key     string `xml:",chardata"`
	}
	if err := els[0].Unmarshal(&v); err != nil {
		t.Fatal(err)
	}
	if v.XMLName.Space != NSDialback || v.Key != "key" || v.ID != "i" {
		t.Fatalf("%+v", v)
	}
}

func TestAppendHeaderRoundTrip(t *testing.T) {
	h := Header{NS: NSServer, From: "a.test", To: "b'.test", ID: "x", Version: "1.0", Lang: "en"}
	b := AppendHeader(nil, h, true)
	r := NewReader(bytes.NewReader(b), Limits{})
	got, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if got.To != h.To || got.From != h.From || got.ID != h.ID || !got.Dialback() {
		t.Fatalf("%+v", got)
	}
}

func TestStreamError(t *testing.T) {
	b := AppendStreamError([]byte(hdr), stream.New(stream.PolicyViolation, "too big"))
	r := NewReader(bytes.NewReader(b), Limits{})
	r.ReadHeader()
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if el.Space != stream.NS || el.Local != "error" {
		t.Fatalf("%s", el.Raw)
	}
	se, err := stream.Parse(el.Raw)
	if err != nil || se.Condition != stream.PolicyViolation || se.Text != "too big" {
		t.Fatalf("%+v %v", se, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrStreamEnd) {
		t.Fatal(err)
	}
}

// TestCloseBracket: '>' is fine in text and attribute values, and so is
// "]]>" written with a reference, or in an attribute value; only the
// literal "]]>" in content is not (XML 1.0 §2.4; see TestHostile).
func TestCloseBracket(t *testing.T) {
	for _, in := range []string{
		`<message><body>a > b ]] > ] ></body></message>`,
		`<message><body>]]&gt; ]&#93;> ]]]</body></message>`,
		`<message to=']]>'><body>` + strings.Repeat("x>", 40) + `</body></message>`,
	} {
		els, err := readAll(t, hdr+in, Limits{})
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(els) != 1 {
			t.Errorf("%s: %d elements, %v", in, len(els), err)
		}
	}
}

// TestIdleRelease: with the buffer released between elements, elements
// split across reads of any size still come out whole.
func TestIdleRelease(t *testing.T) {
	in := hdr + "<message to='b.test'><body>" + strings.Repeat("x", 5000) + "</body></message> <presence/>  <iq id='1'/></stream:stream>"
	for _, src := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
		r := NewReader(src, Limits{})
		r.SetIdleRelease(true)
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		var names []string
		for {
			el, err := r.Next()
			if err != nil {
				if !errors.Is(err, ErrStreamEnd) {
					t.Fatal(err)
				}
				break
			}
			names = append(names, el.Local)
			if el.Local == "message" && len(el.Raw) < 5000 {
				t.Fatalf("message cut: %d bytes", len(el.Raw))
			}
		}
		if strings.Join(names, ",") != "message,presence,iq" {
			t.Fatalf("got %v", names)
		}
	}
}

// TestMayStop: the eight-byte check flags exactly the words holding a byte
// that might stop a text scan, and its lowest flag is on the first such
// byte, so that the scan never passes over one.
func TestMayStop(t *testing.T) {
	special := []byte{0, '\t', '\n', '\r', 0x1f, 0x20, '<', '&', '\'', '"', '>', 0x7f, 0x80, 0xc3, 0xff, 'a', ';', '=', '%', '('}
	rng := rand.New(rand.NewPCG(1, 2))
	// As text uses them: content stops at '>' too, attribute values at
	// their quote.
	for _, q := range []byte{'>', '\'', '"'} {
		tbl := stopTable(q)
		w := q
		if q == '>' {
			w = 0 // content
		}
		pm, pc, sc := stopWords(w)
		might := func(c byte) bool { return tbl[c] || c < 0x20 }
		for n := 0; n < 200000; n++ {
			var b [8]byte
			for i := range b {
				if rng.IntN(3) == 0 {
					b[i] = special[rng.IntN(len(special))]
				} else {
					b[i] = byte(rng.IntN(256))
				}
			}
			if n < 256*8 { // every byte at every position, among harmless ones
				b = [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
				b[n%8] = byte(n / 8)
			}
			first := -1
			for i, c := range b {
				if might(c) {
					first = i
					break
				}
			}
			m := mayStop(binary.LittleEndian.Uint64(b[:]), pm, pc, sc)
			switch {
			case first < 0 && m != 0:
				t.Fatalf("q=%q %q: flagged (%#x) though no byte might stop", q, b, m)
			case first >= 0 && m == 0:
				t.Fatalf("q=%q %q: byte %d (%#x) missed", q, b, first, b[first])
			case first >= 0 && bits.TrailingZeros64(m)>>3 != first:
				t.Fatalf("q=%q %q: first flag on byte %d, want %d", q, b, bits.TrailingZeros64(m)>>3, first)
			}
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

// stalling returns its input n bytes at a time, with a timeout before each
// piece, as a connection with a read deadline on a slow link does.
type stalling struct {
	in      string
	n       int
	stalled bool
}

func (s *stalling) Read(p []byte) (int, error) {
	if s.in == "" {
		return 0, io.EOF
	}
	if !s.stalled {
		s.stalled = true
		return 0, timeoutError{}
	}
	s.stalled = false
	n := copy(p, s.in[:min(s.n, len(s.in))])
	s.in = s.in[n:]
	return n, nil
}

// TestTimeoutResumes: a timeout, between elements or in the middle of one
// (or of the header), is returned but not kept: called again, the reader
// reads on, and the elements come out whole. Other errors are kept.
func TestTimeoutResumes(t *testing.T) {
	in := hdr + "<message to='b.test'><body>" + strings.Repeat("x", 5000) + "</body></message> <presence/>  <iq id='1'/></stream:stream>"
	for _, release := range []bool{false, true} {
		for _, n := range []int{1, 7, 100, 4096} {
			r := NewReader(&stalling{in: in, n: n}, Limits{})
			r.SetIdleRelease(release)
			timeouts := 0
			for {
				_, err := r.ReadHeader()
				if err == nil {
					break
				}
				if !errors.As(err, new(timeoutError)) || timeouts > 2*len(in) {
					t.Fatal(err)
				}
				timeouts++
			}
			var names []string
			for {
				el, err := r.Next()
				if errors.As(err, new(timeoutError)) && timeouts <= 2*len(in) {
					timeouts++
					continue
				}
				if err != nil {
					if !errors.Is(err, ErrStreamEnd) {
						t.Fatalf("release %v, n %d: %v", release, n, err)
					}
					break
				}
				names = append(names, el.Local)
				if el.Local == "message" && !strings.HasSuffix(string(el.Raw), strings.Repeat("x", 5000)+"</body></message>") {
					t.Fatalf("message cut: %d bytes", len(el.Raw))
				}
			}
			if strings.Join(names, ",") != "message,presence,iq" || timeouts == 0 {
				t.Fatalf("release %v, n %d: got %v after %d timeouts", release, n, names, timeouts)
			}
		}
	}
	r := NewReader(iotest.ErrReader(io.ErrClosedPipe), Limits{})
	if _, err := r.Next(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("error not kept: %v", err)
	}
}

// records hands out one chunk per Read, as crypto/tls hands out one record:
// a chunk larger than the caller's buffer is split.
type records struct{ chunks [][]byte }

func (s *records) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if s.chunks[0] = s.chunks[0][n:]; len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

// TestIdleReleaseReuses: a stream that releases its buffer between elements
// takes it back from the pool for the next one instead of allocating a
// larger one each time (which, one element at a time, cost 12 KiB per
// stanza and a garbage collection every few hundred).
func TestIdleReleaseReuses(t *testing.T) {
	const n = 2000
	msg := []byte("<message from='alice@a.test/r' to='bob@b.test' id='m' type='chat'><body>" + strings.Repeat("x", 200) + "</body></message>")
	src := &records{chunks: [][]byte{[]byte(hdr)}}
	for range n {
		src.chunks = append(src.chunks, msg)
	}
	r := NewReader(src, Limits{})
	r.SetIdleRelease(true)
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil { // the pool's first buffer
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 1; i < n; i++ {
		el, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(el.Raw) != len(msg) {
			t.Fatalf("element %d: %d bytes, want %d", i, len(el.Raw), len(msg))
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / (n - 1); per > 2<<10 {
		t.Errorf("%d bytes allocated per element; the released buffer is not reused", per)
	}
}

// TestTextUTF8: character data and attribute values are accepted exactly
// when they are valid UTF-8 without U+FFFE and U+FFFF, however the reads
// split them: non-ASCII runs are checked in bulk, and a character cut by
// the end of what is buffered is checked whole once the rest arrives.
func TestTextUTF8(t *testing.T) {
	pieces := []string{"a", "b", " ", "\n", "é", "日", "\U0001F600", "\uFFFD", "\uFFFE", "\uFFFF", "\uFFEF",
		"\xef\xbf", "\xff", "\xc3", "\x80", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", strings.Repeat("x", 31), strings.Repeat("ü", 20)}
	valid := func(s string) bool {
		for len(s) > 0 {
			r, n := utf8.DecodeRuneInString(s)
			if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
				return false
			}
			s = s[n:]
		}
		return true
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 3000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		want := valid(text)
		for _, in := range []string{
			"<message><body>" + text + "</body></message>",
			"<message to='" + text + "'/>",
		} {
			var src io.Reader = strings.NewReader(hdr + in)
			switch n % 3 {
			case 1:
				src = iotest.OneByteReader(src)
			case 2:
				src = iotest.HalfReader(src)
			}
			r := NewReader(src, Limits{})
			if _, err := r.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			el, err := r.Next()
			if want && (err != nil || string(el.Raw) != in) {
				t.Fatalf("%q: %v, want it accepted", in, err)
			}
			if !want && !errors.Is(err, stream.ErrNotWellFormed) {
				t.Fatalf("%q: %v, want not-well-formed", in, err)
			}
		}
	}
}

// sizedReads serves b and records the size of every read asked of it.
type sizedReads struct {
	b     []byte
	sizes []int
}

func (s *sizedReads) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// TestParkedRead: with SetIdleRelease, a reader waits for the next element
// with a small buffer, and reads at most 128 bytes into it; after Park, whose
// owner waits for the socket to be readable before it reads on, it reads
// straight into a buffer of the pool.
func TestParkedRead(t *testing.T) {
	body := strings.Repeat("x", 300)
	el := `<message from='a@a.test' to='b@b.test'><body>` + body + `</body></message>`
	for _, park := range []bool{false, true} {
		src := &sizedReads{b: []byte(hdr)}
		r := NewReader(src, Limits{})
		r.SetIdleRelease(true)
		if park {
			r.Park()
		}
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		if park {
			r.Park()
		}
		src.b = []byte(el)
		src.sizes = nil
		got, err := r.Next()
		if err != nil {
			t.Fatalf("park %v: %v", park, err)
		}
		if !bytes.Contains(got.Raw, []byte(body)) {
			t.Fatalf("park %v: read %q", park, got.Raw)
		}
		switch {
		case park && (len(src.sizes) != 1 || src.sizes[0] != initialBuf):
			t.Errorf("after Park: reads of %v bytes, want one of %d", src.sizes, initialBuf)
		case !park && (len(src.sizes) < 2 || src.sizes[0] != idleSize):
			t.Errorf("without Park: reads of %v bytes, want a first one of %d", src.sizes, idleSize)
		}
	}
}

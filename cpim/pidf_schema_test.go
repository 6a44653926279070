package cpim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The PIDF documents of this package against the RFC 3863 §4.4 schema, as
// libxml2 checks them (issue 19: tuple ids that were not xs:IDs). The
// schema is in testdata/rfc3863; see its README.

// xmllintPath returns libxml2's xmllint. Without it the tests skip, or
// fail when CI=true.
func xmllintPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing: install it (apt-get install libxml2-utils); CI=true makes this a failure")
		}
		t.Skip("xmllint not found (apt-get install libxml2-utils); skipping the RFC 3863 schema test")
	}
	return path
}

// xmllint validates files against the RFC 3863 schema and returns what it
// printed; failed is true when any file did not validate.
func xmllint(t *testing.T, files ...string) (out string, failed bool) {
	t.Helper()
	args := append([]string{"--noout", "--nonet", "--schema", filepath.Join("testdata", "rfc3863", "pidf.xsd")}, files...)
	b, err := exec.Command(xmllintPath(t), args...).CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("xmllint: %v", err)
	}
	return string(b), err != nil
}

// pidfDoc is a PIDF document with one tuple per id.
func pidfDoc(ids []string) []byte {
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='UTF-8'?>\n<presence xmlns='" + NamespacePIDF + "' entity='pres:a@example.com'>\n")
	for _, id := range ids {
		b.WriteString("<tuple id=")
		writeAttrValue(&b, id)
		b.WriteString("><status><basic>open</basic></status></tuple>\n")
	}
	b.WriteString("</presence>\n")
	return []byte(b.String())
}

// xmlChars returns every character XML 1.0 allows in a document, below
// U+10000, and a few above.
func xmlChars() []rune {
	var rs []rune
	for r := rune(0); r <= 0xFFFD; r++ {
		if r == 0x9 || r == 0xA || r == 0xD || 0x20 <= r && r <= 0xD7FF || 0xE000 <= r {
			rs = append(rs, r)
		}
	}
	return append(rs, 0x10000, 0x1F600, 0x20000, 0xE0001, 0xF0000, 0x10FFFD)
}

// What PresenceToPIDF writes validates, and so do tuples whose ids TupleID
// made from each character, first in a resource and inside one.
func TestPIDFSchema(t *testing.T) {
	xmllintPath(t)
	dir := t.TempDir()
	var files []string
	write := func(name string, b []byte) {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}

	// What PresenceToPIDF writes: the resources, the RFC 3922
	// vectors, and every element it maps.
	stanzas := []string{
		`<presence xmlns='jabber:client' from='juliet@example.com/x😀'/>`,
		`<presence xmlns='jabber:client' from='juliet@example.com/a、b'/>`,
		`<presence xmlns='jabber:client' from='juliet@example.com/a⁰'/>`,
		`<presence xmlns='jabber:client' from='juliet@xn--exmple-cua.example/my phone #1' type='unavailable'><show>dnd</show><status xml:lang='en'>out</status><status>x</status><priority>13</priority></presence>`,
		`<presence xmlns='jabber:server' from='o#27;malley@exämple.example'><show>away</show><priority>127</priority></presence>`,
	}
	for _, res := range []string{"_hidden", "1st", "a_xb", ".dot", "-dash", "中文ーl·l", "é\u0301", "\u0301x", "٣a", "a/b@c:d", "ǅ", "x\U0001F600y"} {
		stanzas = append(stanzas, `<presence xmlns='jabber:client' from='juliet@example.com/`+res+`'/>`)
	}
	for _, v := range []string{"p1a-rfc3922-s5.1.4", "p1b-rfc3922-s5.1.4", "p2a-rfc3922-s5.1.5", "p2b-rfc3922-s5.1.6", "p4-rfc3922-s5.1.7"} {
		stanzas = append(stanzas, string(readVector(t, v+".xml")))
	}
	for i, s := range stanzas {
		pidf, err := PresenceToPIDF([]byte(s))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		write(fmt.Sprintf("stanza%d.pidf", i), pidf)
	}

	var ids []string
	for _, r := range xmlChars() {
		ids = append(ids, TupleID(string(r)+"a"), TupleID("a"+string(r)+"a"))
	}
	write("every-char.pidf", pidfDoc(ids))

	if out, failed := xmllint(t, files...); failed {
		t.Fatalf("PIDF fails the RFC 3863 schema:\n%s", out)
	}
}

// The character classes TupleID keeps are libxml2's for xs:ID: at both ends
// of every range of the Appendix B tables, and just outside them, a
// character TupleID keeps makes a valid id when it stands alone and one it
// escapes an invalid one. (Checking every character this way works too,
// but libxml2 takes half a minute to report 29,000 invalid ids.)
func TestPIDFSchemaNameClasses(t *testing.T) {
	xmllintPath(t)
	rs := []rune{'_', '.', '-', ':', ' ', '\t', 0x2070, 0x3001, 0x1F600, 0x10FFFD}
	for _, tab := range []*unicode.RangeTable{xmlBaseChar, xmlIdeographic, xmlCombiningChar, xmlDigit, xmlExtender} {
		for _, r16 := range tab.R16 {
			for _, r := range []rune{rune(r16.Lo) - 1, rune(r16.Lo), rune(r16.Hi), rune(r16.Hi) + 1} {
				if xmlText(string(r)) && !slices.Contains(rs, r) {
					rs = append(rs, r)
				}
			}
		}
	}
	var good, bad []string
	for _, r := range rs {
		// In the middle, where every NCNameChar may be.
		id := "a" + string(r) + "a"
		if isXSDNCNameChar(r, false) {
			good = append(good, id)
		} else {
			bad = append(bad, id)
		}
		// First.
		if id := string(r) + "a"; isXSDNCNameChar(r, true) {
			good = append(good, id)
		} else if isXSDNCNameChar(r, false) {
			bad = append(bad, id)
		}
	}
	dir := t.TempDir()
	goodFile, badFile := filepath.Join(dir, "kept.pidf"), filepath.Join(dir, "escaped.pidf")
	for f, ids := range map[string][]string{goodFile: good, badFile: bad} {
		if err := os.WriteFile(f, pidfDoc(ids), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, failed := xmllint(t, goodFile); failed {
		t.Errorf("ids of characters TupleID keeps fail the schema:\n%s", out)
	}
	out, _ := xmllint(t, badFile)
	rejected := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if _, v, ok := strings.Cut(line, "attribute 'id': '"); ok {
			if v, _, ok := strings.Cut(v, "' is not a valid value of the atomic type 'xs:ID'"); ok {
				rejected[v] = true
			}
		}
	}
	for _, id := range bad {
		// libxml2 quotes the value after attribute value normalization
		// (XML 1.0 §3.3.3), which writes a tab as a space.
		if !rejected[strings.ReplaceAll(id, "\t", " ")] {
			t.Errorf("TupleID escapes %+q, which libxml2 takes in the id %+q", []rune(strings.Trim(id, "a"))[0], id)
		}
	}
	if len(rejected) != len(bad) {
		t.Errorf("libxml2 rejected %d ids, want %d:\n%s", len(rejected), len(bad), out)
	}
}

// A <status/>'s xml:lang becomes its <note/>'s when it is a language tag
// as XML Schema has them (xs:language, or empty, which xml.xsd allows);
// any other value is left out of the note and named unmapped, so that
// the document still validates.
func TestPIDFStatusLang(t *testing.T) {
	xmllintPath(t)
	dir := t.TempDir()
	for i, tc := range []struct {
		lang string
		kept bool
	}{
		{"en", true},
		{"de-CH-1996", true},
		{"x-klingon", true},
		{"", true},
		{"1x", false},
		{"en_US", false},
		{"toolongtag", false},
		{"en-", false},
		{"é", false},
	} {
		stanza := `<presence xmlns='jabber:client' from='juliet@example.com/x'><status xml:lang='` + tc.lang + `'>out</status></presence>`
		pidf, err := PresenceToPIDF([]byte(stanza))
		var un *UnmappedError
		switch {
		case tc.kept && err != nil:
			t.Errorf("%q: %v, want it mapped", tc.lang, err)
		case !tc.kept && (!errors.As(err, &un) || !slices.Contains(un.Items, "status xml:lang "+strconv.Quote(tc.lang))):
			t.Errorf("%q: %v, want it named unmapped", tc.lang, err)
		}
		if got := strings.Contains(string(pidf), "<note xml:lang="); got != tc.kept {
			t.Errorf("%q: note with xml:lang %v, want %v:\n%s", tc.lang, got, tc.kept, pidf)
		}
		f := filepath.Join(dir, fmt.Sprintf("lang%d.pidf", i))
		if err := os.WriteFile(f, pidf, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, failed := xmllint(t, f); failed {
			t.Errorf("%q: the PIDF fails the RFC 3863 schema:\n%s", tc.lang, out)
		}
	}
}

package cpim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

const vectorDir = "../testdata/cpim"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf turns the LF line ends of a stored vector into CRLF.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// canonXML parses an element and writes it canonically: whitespace-only
// text dropped, attributes sorted, namespace dropNS treated as no
// namespace (the RFCs print stanzas without their stream namespace).
func canonXML(t testing.TB, b []byte, dropNS string) string {
	t.Helper()
	n, err := parseXML(b)
	if err != nil {
		t.Fatalf("parse %q: %v", b, err)
	}
	var walk func(*node)
	walk = func(n *node) {
		if n.name.Space == dropNS {
			n.name.Space = ""
		}
		var kids []any
		for _, k := range n.kids {
			switch k := k.(type) {
			case string:
				if strings.TrimSpace(k) != "" {
					kids = append(kids, k)
				}
			case *node:
				walk(k)
				kids = append(kids, k)
			}
		}
		n.kids = kids
		sort.SliceStable(n.attr, func(i, j int) bool { return clark(n.attr[i].Name) < clark(n.attr[j].Name) })
	}
	walk(n)
	var s strings.Builder
	writeXML(&s, n, "")
	return s.String()
}

// unmappedItems returns the items of an *UnmappedError, nil for a nil
// error, and fails the test on any other error.
func unmappedItems(t testing.TB, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ue *UnmappedError
	if !errors.As(err, &ue) {
		t.Fatalf("unexpected error: %v", err)
	}
	return ue.Items
}

// sameMessage compares two Messages: DateTime by instant and offset, the
// rest field by field.
func sameMessage(a, b *Message) bool {
	if !a.DateTime.Equal(b.DateTime) {
		return false
	}
	_, oa := a.DateTime.Zone()
	_, ob := b.DateTime.Zone()
	if oa != ob {
		return false
	}
	x, y := *a, *b
	x.DateTime = y.DateTime
	norm := func(m *Message) {
		if len(m.Body) == 0 {
			m.Body = nil
		}
	}
	norm(&x)
	norm(&y)
	return reflect.DeepEqual(x, y)
}

func containsAll(t testing.TB, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("unmapped items %q lack %q", got, w)
		}
	}
}

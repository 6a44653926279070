package s2s_test

import (
	"encoding/xml"
	"os"
	"testing"
)

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// bodyOf returns the text of a message's <body/>.
func bodyOf(t *testing.T, raw []byte) string {
	t.Helper()
	var m struct {
		Body string `xml:"body"`
	}
	if err := xml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("bad stanza %s: %v", raw, err)
	}
	return m.Body
}

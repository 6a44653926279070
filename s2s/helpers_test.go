package s2s_test

import (
	"os"
	"testing"

	"github.com/s2sd/s2sd/internal/lendtest"
)

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// bodyOf returns the text of a message's <body/>.
func bodyOf(t *testing.T, raw []byte) string { return lendtest.BodyOf(t, raw) }

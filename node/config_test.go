package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleConfig: the shipped example parses (its files do not exist
// here, so only the error about the first missing file is accepted).
func TestExampleConfig(t *testing.T) {
	_, err := LoadConfig("../dist/s2sd.example.toml")
	if err == nil || !strings.Contains(err.Error(), "certificate[0]") {
		t.Fatalf("example config: %v", err)
	}
}

// TestDANEConfig: DANE trusts the resolver's AD bit, so s2sd takes it only
// with resolvers on this host, named explicitly.
func TestDANEConfig(t *testing.T) {
	for _, tc := range []struct {
		dns  string
		want string // in the error; "" for none
	}{
		{`dns = ["127.0.0.1:53"]`, ""},
		{`dns = ["[::1]:53"]`, ""},
		{``, "s2s.dane"},
		{`dns = ["127.0.0.1:53", "192.0.2.53:53"]`, "192.0.2.53:53"},
	} {
		path := filepath.Join(t.TempDir(), "s2sd.toml")
		conf := fmt.Sprintf("[server]\ndomains = [\"a.test\"]\nstate_dir = %q\n\n[s2s]\ndane = true\n%s\n", t.TempDir(), tc.dns)
		os.WriteFile(path, []byte(conf), 0o600)
		cfg, err := LoadConfig(path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.dns, err)
		case tc.want == "" && !cfg.S2S.DANE:
			t.Errorf("%s: dane not set", tc.dns)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one naming %s", tc.dns, err, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	if _, err := ParseConfig([]byte("[server]\ndomains = [\"a.test\"]\ntypo = 1\n")); err == nil || !strings.Contains(err.Error(), "server.typo") {
		t.Errorf("unknown key: %v", err)
	}
	c, err := DefaultConfig()
	if err != nil || !c.IsDefault() || c.Path() != "" || c.AnyDomain() != "localhost" {
		t.Fatalf("default: %v %+v", err, c)
	}
	// New prepares a copy: the caller's configuration is left as it was.
	c, err = ParseConfig(fmt.Appendf(nil, "[server]\ndomains = [\"a.test\"]\nstate_dir = %q\n[queue]\nmemory = true\n[[component]]\ndomain = \"bot.a.test\"\n", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Secret("bot.a.test"); ok || c.dbSecret != nil || len(c.certs) != 0 {
		t.Errorf("New changed its argument")
	}
	if s, ok := n.Config().Secret("bot.a.test"); !ok || len(s) != 32 {
		t.Errorf("generated secret %q", s)
	}
	if got := n.Config().SelfSigned(); len(got) != 2 {
		t.Errorf("self-signed certificates for %v, want a.test and bot.a.test", got)
	}
}

func TestGCHeapFloor(t *testing.T) {
	for _, tc := range []struct {
		line string
		want uint64
		bad  bool
	}{
		{"", 16 << 20, false},
		{"gc_heap_floor_mib = 0", 0, false},
		{"gc_heap_floor_mib = 64", 64 << 20, false},
		{"gc_heap_floor_mib = -1", 0, true},
	} {
		c, err := ParseConfig([]byte("[server]\ndomains = [\"a.test\"]\n" + tc.line + "\n"))
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "server.gc_heap_floor_mib") {
				t.Errorf("%q: error %v, want one naming server.gc_heap_floor_mib", tc.line, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := c.GCHeapFloor(); got != tc.want {
			t.Errorf("%q: floor %d, want %d", tc.line, got, tc.want)
		}
	}
}

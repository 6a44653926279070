package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// statusNodes starts a.test and b.test with their components attached
// and a stream from a to b.
func statusNodes(t *testing.T) (*node.Node, *node.Node) {
	dns := s2stest.NewDNS(t)
	a := startNode(t, dns, "a.test", node.Options{Version: "test"})
	b := startNode(t, dns, "b.test", node.Options{})
	ca, cb := attach(t, a, "bot.a.test"), attach(t, b, "bot.b.test")
	ca.Send([]byte("<message from='x@bot.a.test' to='y@bot.b.test' id='m'/>"))
	expect(t, cb, "x@bot.a.test", "m")
	return a, b
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestStatusPage: /status and /status.json on the metrics listener show
// the streams and components; the page refreshes itself and allows no
// script.
func TestStatusPage(t *testing.T) {
	a, _ := statusNodes(t)
	base := "http://" + a.MetricsAddr().String()
	resp, page := fetch(t, base+"/status")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/status: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`<meta http-equiv="refresh" content="10">`, "<td>bot.b.test", "<td>bot.a.test</td>", "dialback", "TLS 1.3", "s2sd test"} {
		if !strings.Contains(page, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("/status: a script, or no CSP: %q", resp.Header.Get("Content-Security-Policy"))
	}
	if _, page := fetch(t, base+"/status?refresh=0"); strings.Contains(page, "http-equiv") {
		t.Error("/status?refresh=0 still refreshes")
	}
	if _, page := fetch(t, base+"/status?q=bot.b&rows=5"); !strings.Contains(page, "<td>bot.b.test") || !strings.Contains(page, "No component matches.") || !strings.Contains(page, `value="bot.b"`) {
		t.Errorf("/status?q=bot.b: %s", page)
	}
	resp, body := fetch(t, base+"/status.json")
	var st node.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/status.json: %v %s", err, body)
	}
	if s := findStream(&st, "bot.b.test", "out"); s == nil || s.StanzasOut != 1 || len(st.Components) != 1 {
		t.Errorf("/status.json: %s", body)
	}
	// The metrics are still there.
	if resp, _ := fetch(t, base+"/metrics"); resp.StatusCode != 200 {
		t.Errorf("/metrics: %s", resp.Status)
	}
}

// TestStatusPageBrowser renders /status in a headless Chromium (Debian's
// chromium package): the DOM it builds shows the streams and components
// of the running node. With CI=true a missing chromium fails the test. With
// S2SD_SCREENSHOT=FILE it also writes a screenshot there (docs/).
func TestStatusPageBrowser(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	a, _ := statusNodes(t)
	url := "http://" + a.MetricsAddr().String() + "/status?refresh=0"
	chrome := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		home := t.TempDir() // chromium writes its profile there
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--user-data-dir=" + filepath.Join(home, "profile")}, args...)
		cmd := exec.CommandContext(ctx, bin, append(args, url)...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return string(out)
	}
	dom := chrome("--dump-dom")
	for _, want := range []string{`<table id="streams">`, "bot.b.test", "bot.a.test", "dialback", `<table id="components">`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM chromium built lacks %q:\n%s", want, dom)
		}
	}
	if shot := os.Getenv("S2SD_SCREENSHOT"); shot != "" {
		abs, _ := filepath.Abs(shot)
		chrome("--screenshot="+abs, "--window-size=1400,900", "--hide-scrollbars")
		if fi, err := os.Stat(abs); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot: %v", err)
		}
	}
}

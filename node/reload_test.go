package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/node"
	"github.com/s2sd/s2sd/s2s/s2stest"
)

// fileConfig is a test node's configuration as a file: domain a.test, its
// component bot.a.test, loopback listeners; extra is appended to the
// sections named in it.
func fileConfig(state, dns string, extra map[string]string) string {
	sections := []string{"server", "s2s", "components", "limits", "metrics", "queue"}
	base := map[string]string{
		"server":     fmt.Sprintf("domains = [\"a.test\"]\nstate_dir = %q\nlog_level = \"debug\"\n", state),
		"s2s":        fmt.Sprintf("listen = \"127.0.0.1:0\"\ndns = [%q]\nretry_for = \"5s\"\n", dns),
		"components": "listen = \"127.0.0.1:0\"\n",
		"metrics":    "listen = \"127.0.0.1:0\"\n",
	}
	var b strings.Builder
	for _, s := range sections {
		fmt.Fprintf(&b, "[%s]\n%s%s\n", s, base[s], extra[s])
	}
	b.WriteString("[[component]]\ndomain = \"bot.a.test\"\nsecret = \"s-a\"\n")
	return b.String()
}

func get(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// tooMany reports whether a second connection to addr while a first is
// open is refused with "too many connections". The server counts a
// connection until it has seen it closed: a first connection refused
// because an earlier call's are still counted is tried again.
func tooMany(t *testing.T, addr string) bool {
	t.Helper()
	refused := func(c net.Conn, wait time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(wait))
		b, _ := io.ReadAll(c)
		return strings.Contains(string(b), "too many connections")
	}
	for range 20 {
		first, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if refused(first, 50*time.Millisecond) { // or admitted
			first.Close()
			continue
		}
		second, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r := refused(second, 300*time.Millisecond)
		first.Close()
		second.Close()
		return r
	}
	t.Fatal("first connections refused for a second")
	return false
}

// TestReloadSaysWhatItDid changes keys of every kind in a running node's
// file and reloads through the control socket: the answer names the keys
// in force and those that wait for a restart, and the ones in force are
// (max_connections_per_ip, components.conflict, metrics.pprof, limits,
// timeouts, retry_for, ca_file).
func TestReloadSaysWhatItDid(t *testing.T) {
	dns := s2stest.NewDNS(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	file := filepath.Join(dir, "s2sd.toml")
	os.WriteFile(file, []byte(fileConfig(state, dns.Addr(), nil)), 0o600)
	cfg, err := node.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(cfg, node.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	attach(t, n, "bot.a.test")
	if tooMany(t, n.S2SAddr().String()) {
		t.Fatal("connections refused before the reload")
	}
	pprof := "http://" + n.MetricsAddr().String() + "/debug/pprof/"
	if code := get(t, pprof); code != http.StatusNotFound {
		t.Errorf("pprof before the reload: %d", code)
	}

	ca := s2stest.LoadCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM, 0o644)
	os.WriteFile(file, []byte(fileConfig(state, dns.Addr(), map[string]string{
		"server":     "version = true\nlog_format = \"json\"\n",
		"s2s":        fmt.Sprintf("ca_file = %q\nmax_connections_per_ip = 1\nqueue_limit = 7\nidle_timeout = \"3m\"\nnegotiation_timeout = \"7s\"\nwrite_timeout = \"9s\"\nkeepalive = \"11s\"\nack_timeout = \"13s\"\ndirect_tls_listen = \"127.0.0.1:0\"\n", caFile),
		"components": "conflict = \"refuse\"\nwrite_timeout = \"15s\"\n",
		"limits":     "max_stanza = 10000\nstanzas_per_second = 50.5\nrate_burst = 60\n",
		"metrics":    "pprof = true\n",
		"queue":      "sync = true\n",
	})), 0o600)
	// retry_for changes too.
	b, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(b), `retry_for = "5s"`, `retry_for = "2h"`, 1)), 0o600)

	var res node.ReloadResult
	if err := ctl(t, n).Do(node.ControlRequest{Command: node.CmdReload}, &res); err != nil {
		t.Fatal(err)
	}
	wantApplied := []string{"server.version", "s2s.ca_file", "s2s.retry_for", "s2s.queue_limit", "s2s.idle_timeout", "s2s.max_connections_per_ip", "s2s.negotiation_timeout", "s2s.write_timeout", "s2s.keepalive", "s2s.ack_timeout", "components.conflict", "components.write_timeout", "limits.max_stanza", "limits.stanzas_per_second", "limits.rate_burst", "metrics.pprof"}
	wantRestart := []string{"server.log_format", "s2s.direct_tls_listen", "queue.sync"}
	slices.Sort(wantApplied)
	slices.Sort(wantRestart)
	slices.Sort(res.Applied)
	slices.Sort(res.Restart)
	if !slices.Equal(res.Applied, wantApplied) || !slices.Equal(res.Restart, wantRestart) || res.File != file {
		t.Errorf("reload answered %+v\nwant applied %v\n     restart %v", res, wantApplied, wantRestart)
	}

	// In force: observable effects...
	if !tooMany(t, n.S2SAddr().String()) {
		t.Error("max_connections_per_ip = 1 not in force")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := component.Dial(ctx, n.ComponentAddr().String(), "bot.a.test", "s-a"); err == nil {
		c.Close()
		t.Error("conflict = refuse not in force: a second component for bot.a.test was accepted")
	}
	if code := get(t, pprof); code != http.StatusOK {
		t.Errorf("pprof after the reload: %d", code)
	}
	// ...and the values the parts hold.
	s, d, p, cs := n.S2SServer(), n.Dialer(), n.Pool(), n.ComponentServer()
	if s.Roots == nil || d.Roots == nil || s.Limits.MaxStanza != 10000 || d.Limits.MaxStanza != 10000 || cs.Limits.MaxStanza != 10000 ||
		s.IdleTimeout != 3*time.Minute || p.IdleTimeout != 3*time.Minute || s.NegotiationTimeout != 7*time.Second || d.NegotiationTimeout != 7*time.Second ||
		s.WriteTimeout != 9*time.Second || d.WriteTimeout != 9*time.Second || p.KeepAlive != 11*time.Second || p.AckTimeout != 13*time.Second ||
		p.RetryFor != 2*time.Hour || p.QueueLimit != 7 || s.RateLimit != 50.5 || s.RateBurst != 60 || cs.RateLimit != 50.5 || cs.RateBurst != 60 || cs.WriteTimeout != 15*time.Second {
		t.Errorf("values after the reload: server %+v\ndialer %+v\npool %+v", s, d, p)
	}
	st := n.Status()
	if st.Process.Reloaded.IsZero() || st.Process.LastReload == nil || !slices.Equal(slices.Sorted(slices.Values(st.Process.LastReload.Restart)), wantRestart) {
		t.Errorf("status after the reload: %+v", st.Process)
	}
	// Restart keys keep their running values.
	if n.DirectTLSAddr() != nil {
		t.Error("direct_tls_listen applied without a restart")
	}

	// A file that does not load keeps the running configuration, and the
	// answer says why.
	os.WriteFile(file, []byte("[server]\ndomains = [\"a.test\"]\nbogus = 1\n"), 0o600)
	err = ctl(t, n).Do(node.ControlRequest{Command: node.CmdReload}, nil)
	if err == nil || !strings.Contains(err.Error(), "server.bogus") {
		t.Errorf("bad file: %v", err)
	}
	if n.Pool().RetryFor != 2*time.Hour {
		t.Error("a bad file changed the running configuration")
	}
}

// TestReloadKeysDocumented: docs/operating.md has a row for every key
// of the configuration file (or for its section, "cluster.*"), saying
// whether a reload applies it as ReloadApplies does; keys added to Config
// must be added there.
func TestReloadKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operating.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		key := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rows[key] = strings.TrimSpace(cells[2])
	}
	for _, k := range node.ConfigKeys() {
		how, ok := rows[k]
		if !ok {
			// A row for a whole section: "section.*".
			section, _, _ := strings.Cut(k, ".")
			how, ok = rows[section+".*"]
		}
		switch {
		case !ok:
			t.Errorf("docs/operating.md: no row for %s", k)
		case node.ReloadApplies(k) && how != "reload":
			t.Errorf("docs/operating.md: %s says %q; a reload applies it", k, how)
		case !node.ReloadApplies(k) && how != "restart":
			t.Errorf("docs/operating.md: %s says %q; it needs a restart", k, how)
		}
	}
}

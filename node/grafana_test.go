package node_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// metricRE finds the metric names in a PromQL expression: the node's own
// (s2sd_) and those of the Go and process collectors on its registry.
var metricRE = regexp.MustCompile(`\b(?:s2sd|process|go)_[a-z0-9_]+\b`)

// exprs returns every "expr" string in a Grafana dashboard.
func exprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, exprs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, exprs(x)...)
		}
	}
	return out
}

// TestGrafanaDashboard: dist/grafana-s2sd.json is valid JSON, and every
// metric its panels query is in /metrics of a running node that has
// routed, bounced, dropped and dialed.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "dist", "grafana-s2sd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dist/grafana-s2sd.json: %v", err)
	}
	queries := exprs(dash)
	if len(queries) < 10 {
		t.Fatalf("only %d queries", len(queries))
	}

	a, _ := statusNodes(t) // routed and dialed
	c := attach(t, a, "bot.a.test")
	// A bounce (no such domain), and an error stanza that cannot be
	// bounced: dropped.
	c.Send([]byte("<message from='x@bot.a.test' to='y@nowhere.test' id='b'/>"))
	c.Send([]byte("<message from='x@bot.a.test' to='y@nowhere.test' id='d' type='error'/>"))
	var exposed string
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, exposed = fetch(t, "http://"+a.MetricsAddr().String()+"/metrics")
		if strings.Contains(exposed, "s2sd_bounces_total{") && strings.Contains(exposed, "s2sd_dropped_total{") || time.Now().After(end) {
			break
		}
	}
	names := map[string]bool{}
	for _, line := range strings.Split(exposed, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	for _, q := range queries {
		found := metricRE.FindAllString(q, -1)
		if len(found) == 0 {
			t.Errorf("query %q uses no metric of s2sd", q)
		}
		for _, m := range found {
			if !names[m] {
				t.Errorf("query %q: %s is not in /metrics", q, m)
			}
		}
	}
}

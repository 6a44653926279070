package node

import (
	"fmt"
	"strings"
	"testing"
)

// TestStatusView: /status shows at most the asked number of rows of each
// table, says how many there are, finds rows by domain or address, links
// to every row, and escapes the query it shows back.
func TestStatusView(t *testing.T) {
	st := &Status{}
	for i := 1; i <= 5; i++ {
		st.Streams = append(st.Streams, StreamStatus{Direction: "in", Remote: fmt.Sprintf("d%d.test", i), Local: []string{"a.test"}, Address: fmt.Sprintf("192.0.2.%d:5269", i)})
	}
	st.Streams[4].Pairs = map[string][]string{"muc.d5.test": {"a.test"}}
	for _, d := range []string{"irc.a.test", "bot.a.test", "d3-bridge.a.test"} {
		st.Components = append(st.Components, ComponentStatus{Domain: d})
	}
	st.Queues = []QueueStatus{{Remote: "d2.test", Queued: 3}, {Remote: "gone.test", Queued: 1, LastError: "remote-server-not-found"}}
	render := func(q string, rows int) string {
		t.Helper()
		var b strings.Builder
		if err := statusPage.Execute(&b, newStatusView(st, defaultRefresh, q, rows)); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	shown := func(page string) (n int) {
		for i := 1; i <= 5; i++ {
			if strings.Contains(page, fmt.Sprintf("<td>d%d.test", i)) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		q       string
		rows    int
		streams int
		want    []string
		not     []string
	}{
		{"", 2, 2, []string{"Streams (the first 2 of 5)", "Components (the first 2 of 3)", "Queues (2)", `<a href="status?rows=0">show every row</a>`}, nil},
		{"", 0, 5, []string{"Streams (5)", "Components (3)"}, []string{"show every row"}},
		{"D3", 200, 1, []string{"Streams (1 matching, of 5)", "<td>d3-bridge.a.test</td>", "Queues (0 matching, of 2)", "No queue matches."}, []string{"<td>irc.a.test</td>"}},
		{"muc.d5", 200, 1, []string{"<td>d5.test<br>muc.d5.test</td>", "No component matches."}, nil},
		{"192.0.2.", 1, 1, []string{"Streams (the first 1 of 5 matching, of 5)", `href="status?q=192.0.2.&amp;rows=0"`}, nil},
		{"not-found", 200, 0, []string{"Queues (1 matching, of 2)", "remote-server-not-found", "No stream matches."}, nil},
		{`"><script>x</script>`, 200, 0, []string{`value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"`}, []string{"<script>"}},
	} {
		page := render(tc.q, tc.rows)
		if n := shown(page); n != tc.streams {
			t.Errorf("q=%q rows=%d: %d streams shown, want %d", tc.q, tc.rows, n, tc.streams)
		}
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("q=%q rows=%d: no %q in the page", tc.q, tc.rows, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(page, w) {
				t.Errorf("q=%q rows=%d: %q in the page", tc.q, tc.rows, w)
			}
		}
	}
}

package node

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The status page: /status (HTML, no script, refreshes itself) and
// /status.json (Status) on the metrics listener, beside /metrics, as
// nats-server serves /varz and /connz on its monitoring port. It shows
// what `s2sd status` shows, to anyone who can reach the listener: the
// remote domains this node federates with and their IP addresses, the
// attached components and theirs, what waits in the queues and why, the
// configuration file's path, the version. Keep metrics.listen on
// loopback (the default) or behind a proxy that authenticates.

// defaultRefresh is how often /status reloads itself, in seconds.
const defaultRefresh = 10

// defaultRows is how many rows of each table /status shows unless asked
// for another number (?rows=N, 0 for all): a node federating with
// thousands of domains keeps a page a browser shows at once, and ?q=
// finds the rest.
const defaultRows = 200

// withStatus serves the status page in front of h.
func (n *Node) withStatus(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /status", n.serveStatusPage)
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.Status())
	})
	return mux
}

func (n *Node) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	refresh := defaultRefresh
	if v, err := strconv.Atoi(q.Get("refresh")); err == nil && v >= 0 && v <= 3600 {
		refresh = v
	}
	rows := defaultRows
	if v, err := strconv.Atoi(q.Get("rows")); err == nil && v >= 0 {
		rows = v
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// No script, ever: the page needs none.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if err := statusPage.Execute(w, newStatusView(n.Status(), refresh, strings.TrimSpace(q.Get("q")), rows)); err != nil {
		n.log.Debug("status page", "err", err)
	}
}

// statusView is what /status shows of a Status: the rows that match the
// query, at most Rows of each table (0: all of them).
type statusView struct {
	*Status
	Refresh int
	Query   string
	Rows    int
	// The rows of each table that match, before the limit.
	StreamsMatched, ComponentsMatched, QueuesMatched int
	// The whole tables' sizes.
	StreamsTotal, ComponentsTotal, QueuesTotal int
}

func newStatusView(st *Status, refresh int, query string, rows int) statusView {
	v := statusView{Refresh: refresh, Query: query, Rows: rows, StreamsTotal: len(st.Streams), ComponentsTotal: len(st.Components), QueuesTotal: len(st.Queues)}
	lq := strings.ToLower(query)
	match := func(fields ...string) bool {
		if query == "" {
			return true
		}
		for _, f := range fields {
			if strings.Contains(strings.ToLower(f), lq) {
				return true
			}
		}
		return false
	}
	shown := *st
	shown.Streams = filterRows(st.Streams, rows, &v.StreamsMatched, func(s StreamStatus) bool {
		if match(append([]string{s.Remote, s.Address, s.StreamID}, s.Local...)...) {
			return true
		}
		for r, l := range s.Pairs {
			if match(append([]string{r}, l...)...) {
				return true
			}
		}
		return false
	})
	shown.Components = filterRows(st.Components, rows, &v.ComponentsMatched, func(c ComponentStatus) bool {
		return match(c.Domain, c.Address, c.Node)
	})
	shown.Queues = filterRows(st.Queues, rows, &v.QueuesMatched, func(q QueueStatus) bool {
		return match(q.Remote, q.LastError)
	})
	v.Status = &shown
	return v
}

// filterRows returns the rows that keep accepts, at most limit of them
// (0: all), and counts them all in matched.
func filterRows[T any](rows []T, limit int, matched *int, keep func(T) bool) []T {
	out := make([]T, 0, min(len(rows), max(limit, 0)))
	for _, r := range rows {
		if !keep(r) {
			continue
		}
		*matched++
		if limit == 0 || len(out) < limit {
			out = append(out, r)
		}
	}
	return out
}

// Heading is a table's count for /status, from the rows it shows, those
// that match and all of them: "12", "3 matching, of 12", "the first 200
// of 5000".
func (v statusView) Heading(shown, matched, total int) string {
	switch {
	case v.Query != "" && shown < matched:
		return fmt.Sprintf("the first %d of %d matching, of %d", shown, matched, total)
	case v.Query != "":
		return fmt.Sprintf("%d matching, of %d", matched, total)
	case shown < total:
		return fmt.Sprintf("the first %d of %d", shown, total)
	}
	return fmt.Sprint(total)
}

// Truncated reports whether a table shows fewer rows than match.
func (v statusView) Truncated() bool {
	return len(v.Streams) < v.StreamsMatched || len(v.Components) < v.ComponentsMatched || len(v.Queues) < v.QueuesMatched
}

// CustomRefresh reports whether the page refreshes at another pace than
// the default, which its links and form keep.
func (v statusView) CustomRefresh() bool { return v.Refresh != defaultRefresh }

// AllURL is the page with every matching row.
func (v statusView) AllURL() string {
	q := url.Values{"rows": {"0"}}
	if v.Query != "" {
		q.Set("q", v.Query)
	}
	if v.CustomRefresh() {
		q.Set("refresh", strconv.Itoa(v.Refresh))
	}
	return "status?" + q.Encode()
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"age":  Seconds.Brief,
	"join": strings.Join,
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"yes": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>s2sd status{{range $i, $d := .Process.Domains}}{{if not $i}} — {{else}}, {{end}}{{$d}}{{end}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .2em .7em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #a00; }
.dim { color: #777; }
</style>
</head>
<body>
<h1>s2sd {{.Process.Version}}{{range $i, $d := .Process.Domains}}{{if not $i}} — {{else}}, {{end}}{{$d}}{{end}}</h1>
<p class="dim">At {{when .Process.Now}}{{if .Refresh}}; this page refreshes every {{.Refresh}} s{{end}}. The same as JSON, whole: <a href="status.json">status.json</a>.</p>
<form method="get" action="status">
<label>Domain or address <input type="search" name="q" value="{{.Query}}"></label>
<label>rows per table <input type="number" name="rows" min="0" value="{{.Rows}}"></label>
{{if .CustomRefresh}}<input type="hidden" name="refresh" value="{{.Refresh}}">{{end}}<button>Show</button>
{{if .Truncated}}<a href="{{.AllURL}}">show every row</a>{{end}}
</form>

<h2>Process</h2>
<table id="process">
<tr><th>Uptime</th><td>{{age .Process.Uptime}} (since {{when .Process.Started}})</td></tr>
<tr><th>PID</th><td>{{.Process.PID}}</td></tr>
<tr><th>Version</th><td>{{.Process.Version}} ({{.Process.GoVersion}})</td></tr>
<tr><th>Configuration</th><td>{{if .Process.ConfigFile}}{{.Process.ConfigFile}}{{else}}<span class="dim">embedded default or given by a program</span>{{end}}</td></tr>
<tr><th>Reloaded</th><td>{{if .Process.Reloaded.IsZero}}<span class="dim">never</span>{{else}}{{when .Process.Reloaded}}{{with .Process.LastReload}}{{if .Applied}}; applied: {{join .Applied ", "}}{{end}}{{if .Restart}}; <span class="bad">waiting for a restart: {{join .Restart ", "}}</span>{{end}}{{end}}{{end}}</td></tr>
<tr><th>State directory</th><td>{{.Process.StateDir}}</td></tr>
<tr><th>Listeners</th><td>{{range $k, $v := .Process.Listeners}}{{$k}} {{$v}}<br>{{end}}</td></tr>
<tr><th>Queued stanzas</th><td>{{.Process.Queued}}</td></tr>
</table>

<h2>Streams ({{.Heading (len .Streams) .StreamsMatched .StreamsTotal}})</h2>
{{if .Streams}}<table id="streams">
<tr><th>Remote</th><th>Local</th><th>Dir</th><th>Address</th><th>State</th><th>Auth</th><th>TLS</th><th>Certificate</th><th>Age</th><th>In</th><th>Out</th><th>Unacked</th></tr>
{{range .Streams}}<tr>
<td>{{.Remote}}{{range $r, $l := .Pairs}}<br>{{$r}}{{end}}</td>
<td>{{join .Local ", "}}{{range $r, $l := .Pairs}}<br>{{join $l ", "}}{{end}}</td>
<td>{{.Direction}}</td>
<td>{{.Address}}</td>
<td>{{.State}}</td>
<td>{{.Auth}}</td>
<td>{{if .TLSVersion}}{{.TLSVersion}}<br><span class="dim">{{.TLSCipher}}</span>{{else}}<span class="bad">none</span>{{end}}</td>
<td>{{if .DANE}}verified (DANE){{else if .CertVerified}}verified{{else}}<span class="bad">not verified</span>{{end}}</td>
<td class="n">{{age .Age}}</td>
<td class="n">{{.StanzasIn}}</td>
<td class="n">{{.StanzasOut}}</td>
<td class="n">{{if .StreamManagement}}{{.Unacked}}{{else}}<span class="dim">n/a</span>{{end}}</td>
</tr>
{{end}}</table>{{else if .Query}}<p class="dim">No stream matches.</p>{{else}}<p class="dim">No streams.</p>{{end}}

<h2>Components ({{.Heading (len .Components) .ComponentsMatched .ComponentsTotal}})</h2>
{{if .Components}}<table id="components">
<tr><th>Domain</th><th>Connected</th><th>Address</th><th>Age</th><th>In</th><th>Out</th>{{if .Cluster}}<th>Node</th>{{end}}</tr>
{{range .Components}}<tr>
<td>{{.Domain}}</td>
<td>{{if .Connected}}yes{{else}}<span class="bad">no</span>{{end}}</td>
<td>{{.Address}}</td>
<td class="n">{{if .Address}}{{age .Age}}{{end}}</td>
<td class="n">{{.StanzasIn}}</td>
<td class="n">{{.StanzasOut}}</td>
{{if $.Cluster}}<td>{{.Node}}</td>{{end}}
</tr>
{{end}}</table>{{else if .Query}}<p class="dim">No component matches.</p>{{else}}<p class="dim">No components configured.</p>{{end}}

<h2>Queues ({{.Heading (len .Queues) .QueuesMatched .QueuesTotal}})</h2>
{{if .Queues}}<table id="queues">
<tr><th>Remote</th><th>Queued</th><th>Unacked</th><th>Oldest</th><th>Stream</th><th>Next retry</th><th>Last error</th></tr>
{{range .Queues}}<tr>
<td>{{.Remote}}</td>
<td class="n">{{.Queued}}</td>
<td class="n">{{.Unacked}}</td>
<td class="n">{{if .Oldest.IsZero}}{{else}}{{age .OldestAge}}{{end}}</td>
<td>{{if .Stream}}up{{else if .Dialing}}connecting{{else}}down{{end}}</td>
<td>{{if .NextRetry.IsZero}}{{else}}in {{age .RetryIn}}{{end}}</td>
<td>{{if .LastError}}<span class="bad">{{.LastError}}</span>{{end}}</td>
</tr>
{{end}}</table>{{else if .Query}}<p class="dim">No queue matches.</p>{{else}}<p class="dim">Nothing waits.</p>{{end}}
{{with .Cluster}}
<h2>Cluster</h2>
<table id="cluster">
<tr><th>This node</th><td>{{.Node}}</td></tr>
<tr><th>Members</th><td>{{join .Members ", "}}</td></tr>
<tr><th>Partitions owned</th><td>{{len .Owned}} of {{.Partitions}}{{if .Moving}}, {{len .Moving}} moving to their preferred owner{{end}}</td></tr>
<tr><th>Durability</th><td>{{.Durability}}</td></tr>
<tr><th>Stanzas waiting for an owner</th><td>{{.Waiting}}</td></tr>
</table>
{{end}}
</body>
</html>
`))

package diag

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for people: sections for DNS, connection
// attempts and each stream, aligned in columns, and the verdict last.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := &printer{w: tw}

	p.line(fmt.Sprintf("s2sd diag %s (from %s), %s, took %s", r.Domain, r.Local, fmtTime(r.Start), fmtDur(time.Duration(r.Duration))))

	p.section("DNS")
	r.writeDNS(p)

	p.section("Connection attempts")
	if len(r.Attempts) == 0 {
		why := "the dialer tried no address"
		if r.Error != "" {
			why += ": " + r.Error
		}
		p.line("  none", why)
	}
	for i := range r.Attempts {
		a := &r.Attempts[i]
		result := "connected in " + fmtDur(time.Duration(a.ConnectTime))
		switch {
		case !a.Connected:
			result = "failed after " + fmtDur(time.Duration(a.ConnectTime)) + ": " + a.Error
		case a.Authenticated:
			result += ", authenticated in " + fmtDur(time.Duration(a.Time))
		default:
			result += ", failed after " + fmtDur(time.Duration(a.Time))
		}
		p.line(fmt.Sprintf("  #%d", i+1), a.Addr, a.Target.describe(), result)
	}

	for i := range r.Attempts {
		a := &r.Attempts[i]
		if a.Connected {
			a.writeStream(p, i+1)
		}
	}

	p.section("")
	verdict := "Verdict: OK"
	if !r.OK {
		verdict = fmt.Sprintf("Verdict: problems found (%d)", len(r.Problems))
	}
	if r.Authenticated {
		verdict += fmt.Sprintf(": a stream from %s to %s authenticated with %s", r.Local, r.Domain, r.Method)
	} else {
		verdict += fmt.Sprintf(": no authenticated stream from %s to %s", r.Local, r.Domain)
	}
	p.line(verdict)
	for _, pr := range r.Problems {
		p.line("  "+pr.Severity, pr.Text)
	}
	if p.err != nil {
		return p.err
	}
	return tw.Flush()
}

func (r *Report) writeDNS(p *printer) {
	d := &r.DNS
	for _, s := range d.SRV {
		switch {
		case s.Error != "":
			p.line("  "+s.Name, "error: "+s.Error)
		case len(s.Records) == 0:
			p.line("  "+s.Name, "no records")
		}
		for i, rec := range s.Records {
			name := "  " + s.Name
			if i > 0 {
				name = ""
			}
			target := rec.Target
			if rec.Target == "." {
				target = `"." (no service)`
			}
			p.line(name, fmt.Sprintf("priority %d", rec.Priority), fmt.Sprintf("weight %d", rec.Weight), fmt.Sprintf("port %d", rec.Port), "target "+target+dnssec(s.DNSSEC))
		}
	}
	switch {
	case d.NoService:
		p.line("  no service", `SRV target ".": the domain offers no federation; no connection is attempted`)
	case d.Fallback:
		p.line("  fallback", fmt.Sprintf("no SRV records: trying %s:%d", strings.TrimSuffix(d.Name, "."), 5269))
	case d.Error != "" && len(d.SRV) == 0:
		p.line("  error", d.Error)
	}
	for _, h := range d.Hosts {
		if h.Error != "" {
			p.line("  "+h.Name, "error: "+h.Error)
			continue
		}
		p.line("  "+h.Name, strings.Join(h.Addrs, ", ")+dnssec(h.DNSSEC))
	}
	for _, tl := range d.TLSA {
		switch {
		case tl.Error != "":
			p.line("  "+tl.Name, "TLSA error: "+tl.Error)
		case len(tl.Records) == 0:
			p.line("  "+tl.Name, "no TLSA records (DANE not used)")
		}
		for _, rec := range tl.Records {
			p.line("  "+tl.Name, "TLSA "+rec)
		}
	}
}

// dnssec marks what a validating resolver vouched for.
func dnssec(secure bool) string {
	if secure {
		return " (DNSSEC)"
	}
	return ""
}

func (a *Attempt) writeStream(p *printer, n int) {
	p.section(fmt.Sprintf("Stream #%d to %s", n, a.Addr))
	tlsDone := false
	writeTLS := func() {
		if a.TLS == nil || tlsDone {
			return
		}
		tlsDone = true
		a.TLS.write(p)
	}
	for i := range a.Features {
		f := &a.Features[i]
		if f.Stage != BeforeTLS {
			writeTLS()
		}
		p.line("  "+stageLabel[f.Stage], f.summary())
	}
	writeTLS()
	if au := a.Auth; au != nil {
		res := au.Method + ": " + au.Result
		if au.Condition != "" {
			res += " (" + au.Condition + ")"
		}
		p.line("  authentication", res)
		if au.Error != "" && au.Result != AuthValid {
			p.line("    error", au.Error)
		}
		if au.Hint != "" {
			p.line("    hint", au.Hint)
		}
	}
	switch {
	case a.Authenticated:
		id := ""
		if a.StreamID != "" {
			id = ", stream id " + a.StreamID
		}
		p.line("  result", "authenticated in "+fmtDur(time.Duration(a.Time))+id)
	case a.Error != "":
		p.line("  result", "failed "+stepName(a.FailedAt)+": "+a.Error)
	}
}

var stageLabel = map[string]string{
	BeforeTLS: "features before TLS",
	AfterTLS:  "features after TLS",
	AfterSASL: "features after SASL",
}

func (t *TLS) write(p *printer) {
	mode := "STARTTLS"
	if t.Direct {
		mode = "direct TLS"
	}
	alpn := "no ALPN"
	if t.ALPN != "" {
		alpn = "ALPN " + t.ALPN
	}
	p.line("  TLS", strings.Join([]string{t.Version, t.CipherSuite, mode, alpn}, ", "))
	check := "valid for the domain"
	if t.DANE {
		check = "valid: matches a TLSA record (DANE)"
	}
	if !t.Valid {
		check = "NOT valid: " + t.Problem
		if t.Error != "" {
			check += " (" + t.Error + ")"
		}
	}
	p.line("  certificate", check)
	for i, c := range t.Chain {
		issuer := c.Issuer
		if c.SelfSigned {
			issuer += " (self-signed)"
		}
		p.line(fmt.Sprintf("    [%d] subject", i), c.Subject)
		p.line("        issuer", issuer)
		names := strings.Join(c.SANs, ", ")
		if names == "" {
			names = "none"
		}
		p.line("        names", names)
		p.line("        valid", fmtTime(c.NotBefore)+" to "+fmtTime(c.NotAfter))
		p.line("        sha256", c.SHA256)
	}
}

func (t Target) describe() string {
	svc := "fallback"
	if t.Service != "" {
		svc = "_" + t.Service
	}
	mode := "STARTTLS"
	if t.DirectTLS {
		mode = "direct TLS"
	}
	return fmt.Sprintf("%s (%s, %s)", t, svc, mode)
}

// printer writes tab-separated cells to a tabwriter and keeps the first
// error.
type printer struct {
	w   io.Writer
	err error
	n   int // lines written
}

// line writes cells separated by tabs. Tabs and newlines in them become
// spaces: they would break the columns.
func (p *printer) line(cells ...string) {
	if p.err != nil {
		return
	}
	for i, c := range cells {
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	_, p.err = io.WriteString(p.w, strings.Join(cells, "\t")+"\n")
	p.n++
}

// section starts a section with an empty line and a title.
func (p *printer) section(title string) {
	if p.n > 0 {
		p.line()
	}
	if title != "" {
		p.line(title)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

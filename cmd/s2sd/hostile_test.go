package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/internal/s2sdtest"
	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/s2s"
	"github.com/s2sd/s2sd/s2s/s2stest"
	"github.com/s2sd/s2sd/stream"
)

const streamHdr = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='evil.test' to='s2sd.test' version='1.0'>"

// hostile connects to addr, sends the parts (pausing between them), and
// returns the stream error condition s2sd answers with.
func hostile(t *testing.T, addr string, pause time.Duration, parts ...string) stream.Condition {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		for _, p := range parts {
			if _, err := nc.Write([]byte(p)); err != nil {
				return
			}
			time.Sleep(pause)
		}
	}()
	r := xmlstream.NewReader(nc, xmlstream.Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatalf("no stream header from s2sd: %v", err)
	}
	for {
		el, err := r.Next()
		if err != nil {
			return ""
		}
		if el.Space == stream.NS && el.Local == "error" {
			se, _ := stream.Parse(el.Raw)
			return se.Condition
		}
	}
}

func rss(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// TestHostilePeers throws hostile streams at a running s2sd while a
// well-behaved remote server keeps talking to its component: each hostile
// stream gets the stream error RFC 6120 names, the good peer loses nothing,
// and s2sd's memory stays bounded.
func TestHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("long hostile-input run")
	}
	dns := s2stest.NewDNS(t)
	cfg := fmt.Sprintf(`
[server]
domains = ["s2sd.test"]
state_dir = "STATE"

[s2s]
listen = "127.0.0.1:0"
dns = [%q]
max_connections_per_ip = 40
negotiation_timeout = "2s"

[components]
listen = "127.0.0.1:0"

[[component]]
domain = "bot.s2sd.test"
secret = "right"
`, dns.Addr())
	d := s2sdtest.Start(t, "s2sd", cfg)
	dns.AddServer("s2sd.test", d.S2S)
	dns.AddServer("bot.s2sd.test", d.S2S)
	good := s2stest.NewServer(t, dns, "good.test", s2stest.Options{})
	bot := dialComp(t, d, "bot.s2sd.test", "right")
	pid := d.Pid()
	before := rss(t, pid)

	// The good peer talks throughout.
	const goodN = 400
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range goodN {
			good.Send(t, fmt.Sprintf("<message from='u@good.test' to='bot@bot.s2sd.test' id='g%d'/>", i))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	got := make(chan string, goodN)
	go func() {
		for {
			s, err := bot.Next()
			if err != nil {
				return
			}
			got <- s.ID
		}
	}()

	addr := d.S2S.String()
	deep := strings.Repeat("<a>", 10000)
	tests := []struct {
		name  string
		parts []string
		pause time.Duration
		want  stream.Condition
	}{
		{"malformed XML", []string{streamHdr, "<message><body></message>"}, 0, stream.NotWellFormed},
		{"DTD", []string{"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"}, 0, stream.RestrictedXML},
		{"entity", []string{streamHdr, "<message>&xxe;</message>"}, 0, stream.RestrictedXML},
		{"comment", []string{streamHdr, "<!-- hi -->"}, 0, stream.RestrictedXML},
		{"oversized stanza", []string{streamHdr, "<message><body>" + strings.Repeat("x", 600<<10)}, 0, stream.PolicyViolation},
		{"deep nesting", []string{streamHdr, deep}, 0, stream.PolicyViolation},
		{"wrong namespace", []string{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='s2sd.test' version='1.0'>"}, 0, stream.InvalidNamespace},
		{"unknown host", []string{"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='other.test' version='1.0'>"}, 0, stream.HostUnknown},
		{"stanza before auth", []string{streamHdr, "<message from='a@evil.test' to='b@s2sd.test'/>"}, 0, stream.NotAuthorized},
		{"slow stream", []string{streamHdr[:10], streamHdr[10:20], streamHdr[20:30], streamHdr[30:40]}, 900 * time.Millisecond, stream.ConnectionTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c := hostile(t, addr, tc.pause, tc.parts...); c != tc.want {
				t.Errorf("got %q, want %s", c, tc.want)
			}
		})
	}

	t.Run("connection flood", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		refused := 0
		for range 60 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				refused++
				continue
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			buf := make([]byte, 4096)
			n, _ := c.Read(buf)
			if strings.Contains(string(buf[:n]), "policy-violation") {
				refused++
			}
		}
		if refused < 15 {
			t.Errorf("only %d of 60 connections refused with a limit of 40 per address", refused)
		}
	})

	t.Run("forged dialback", func(t *testing.T) {
		evil := &s2s.Dialer{
			Resolver:       &s2s.Resolver{Servers: []string{dns.Addr()}, CacheSize: -1},
			Secret:         []byte("not good.test's secret"),
			GetCertificate: func(string) (*tls.Certificate, error) { c := s2stest.SelfSigned(t, "good.test"); return &c, nil },
		}
		_, err := evil.DialContext(context.Background(), "good.test", "s2sd.test")
		if err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("forged key: %v", err)
		}
	})

	t.Run("spoofed from", func(t *testing.T) {
		evil := s2stest.NewServer(t, dns, "evil.test", s2stest.Options{})
		c, err := evil.Dialer.DialContext(context.Background(), "evil.test", "s2sd.test")
		if err != nil {
			t.Fatal(err)
		}
		c.SendRaw([]byte("<message from='u@good.test' to='bot@bot.s2sd.test' id='spoof'/>"))
		time.Sleep(200 * time.Millisecond) // the component must never see it (checked below)
	})

	t.Run("component wrong secret", func(t *testing.T) {
		_, err := component.Dial(context.Background(), d.Comp, "bot.s2sd.test", "wrong")
		if !errors.Is(err, stream.ErrNotAuthorized) {
			t.Errorf("got %v", err)
		}
	})

	wg.Wait()
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(seen) < goodN {
		select {
		case id := <-got:
			if id == "spoof" {
				t.Fatal("spoofed stanza delivered")
			}
			seen[id] = true
		case <-deadline:
			t.Fatalf("good peer: %d of %d stanzas delivered during the attacks", len(seen), goodN)
		}
	}
	after := rss(t, pid)
	t.Logf("s2sd resident memory: %d KiB before, %d KiB after the attacks", before, after)
	if after-before > 100<<10 {
		t.Errorf("resident memory grew by %d KiB", after-before)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/s2sd/s2sd/node"
)

// subcommands are the words s2sd takes before its flags; anything else
// that is not a flag is an error.
var subcommands []subcmd

type subcmd struct {
	name, args, help string
	main             func(args []string) int
}

// init fills subcommands, which help prints: a variable initializer
// would refer to itself.
func init() {
	subcommands = []subcmd{
		{"status", "[-json] [-config FILE | -socket PATH]", "show the streams, components and queues of the running s2sd", statusMain},
		{"ctl", "[-config FILE | -socket PATH] close|retry|bounce DOMAIN | reload", "act on the running s2sd", ctlMain},
		{"check", "[-config FILE] [-dns] [-json]", "check a configuration thoroughly (as -t, and the DNS with -dns)", checkMain},
		{"cluster", "status [-json] [-config FILE | -socket PATH]", "show the running s2sd's cluster: members, partitions owned, where components are", clusterMain},
		{"diag", "[-json] [-config FILE] [-from DOMAIN] DOMAIN", "diagnose federation with a remote DOMAIN", diagMain},
		{"help", "", "print this help", helpMain},
	}
}

func helpMain([]string) int {
	usage(os.Stdout)
	return 0
}

// usage prints how to run s2sd: the daemon's flags, then the subcommands.
func usage(w io.Writer) {
	fmt.Fprintf(w, "usage:\n  s2sd [-config FILE]            run the daemon (the embedded default without -config)\n")
	fmt.Fprintf(w, "  s2sd -t [-dns] [-config FILE]  check a configuration and exit\n")
	fmt.Fprintf(w, "  s2sd -version                  print the version and exit\n")
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("s2sd "+c.name+" "+c.args), c.help)
	}
	fmt.Fprintf(w, "\nstatus and ctl find the control socket in the state directory of -config\n(default: $S2SD_CONFIG, else %s if it exists, else the embedded default).\n", systemConfig)
}

// subcommand runs the subcommand args[0] names, if it names one.
func subcommand(args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	for _, c := range subcommands {
		if c.name == args[0] {
			return c.main(args[1:]), true
		}
	}
	return 0, false
}

// systemConfig is where the packaged configuration lives (dist/).
const systemConfig = "/etc/s2sd/s2sd.toml"

// controlFlags are the flags that find the control socket.
type controlFlags struct {
	config, socket *string
}

func addControlFlags(fs *flag.FlagSet) controlFlags {
	return controlFlags{
		config: fs.String("config", "", "configuration `file` of the running s2sd, whose state directory holds the control socket"),
		socket: fs.String("socket", "", "`path` of the control socket (overrides -config)"),
	}
}

// path returns the control socket's path: -socket, or the state directory
// of the configuration. Only [server] state_dir is read from the file, so
// that an operator who may not read its certificates' keys can still ask.
func (f controlFlags) path() (string, error) {
	if *f.socket != "" {
		return *f.socket, nil
	}
	file := *f.config
	if file == "" {
		file = os.Getenv("S2SD_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat(systemConfig); err == nil {
			file = systemConfig
		}
	}
	def, err := node.DefaultConfig()
	if err != nil {
		return "", err
	}
	if file == "" {
		return def.ControlSocket(), nil
	}
	var c struct {
		Server struct {
			StateDir string `toml:"state_dir"`
		} `toml:"server"`
	}
	if _, err := toml.DecodeFile(file, &c); err != nil {
		return "", err
	}
	if c.Server.StateDir == "" {
		return def.ControlSocket(), nil
	}
	return filepath.Join(c.Server.StateDir, node.ControlSocketName), nil
}

func dialControl(name string, f controlFlags) (*node.ControlClient, int) {
	path, err := f.path()
	if err != nil {
		fmt.Fprintf(os.Stderr, "s2sd %s: %v\n", name, err)
		return nil, 2
	}
	cc, err := node.DialControl(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s2sd %s: %v\n", name, err)
		return nil, 1
	}
	return cc, 0
}

// statusMain runs `s2sd status`.
// askStatus parses a status command's flags (-json and the control
// socket's), asks the running s2sd for its status and returns it raw;
// code is the exit code when raw is nil.
func askStatus(name, usage string, args []string) (raw json.RawMessage, asJSON bool, code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	j := fs.Bool("json", false, "print the status as JSON")
	cf := addControlFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: "+name+" "+usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, false, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		fs.Usage()
		return nil, false, 2
	}
	cc, code := dialControl(strings.TrimPrefix(name, "s2sd "), cf)
	if cc == nil {
		return nil, false, code
	}
	defer cc.Close()
	if err := cc.Do(node.ControlRequest{Command: node.CmdStatus}, &raw); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return nil, false, 1
	}
	return raw, *j, 0
}

func statusMain(args []string) int {
	raw, asJSON, code := askStatus("s2sd status", "[-json] [-config FILE | -socket PATH]", args)
	if raw == nil {
		return code
	}
	if asJSON {
		var b bytes.Buffer
		json.Indent(&b, raw, "", "  ")
		b.WriteByte('\n')
		os.Stdout.Write(b.Bytes())
		return 0
	}
	var st node.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		fmt.Fprintln(os.Stderr, "s2sd status:", err)
		return 1
	}
	writeStatus(os.Stdout, &st)
	return 0
}

// writeStatus prints st as text tables.
func writeStatus(w io.Writer, st *node.Status) {
	p := st.Process
	cfg := p.ConfigFile
	if cfg == "" {
		cfg = "(embedded default)"
	}
	reloaded := "never"
	if !p.Reloaded.IsZero() {
		reloaded = p.Reloaded.Local().Format(time.DateTime)
		if r := p.LastReload; r != nil && len(r.Restart) > 0 {
			reloaded += " (waiting for a restart: " + strings.Join(r.Restart, ", ") + ")"
		}
	}
	fmt.Fprintf(w, "s2sd %s, pid %d, up %s since %s\n", p.Version, p.PID, p.Uptime.Brief(), p.Started.Local().Format(time.DateTime))
	fmt.Fprintf(w, "config %s, reloaded %s\n", cfg, reloaded)
	fmt.Fprintf(w, "domains %s, state %s, %d stanzas queued\n", strings.Join(p.Domains, " "), p.StateDir, p.Queued)
	names := make([]string, 0, len(p.Listeners))
	for k := range p.Listeners {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = k + " " + p.Listeners[k]
	}
	fmt.Fprintf(w, "listeners: %s\n", strings.Join(names, ", "))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSTREAMS (%d)\n", len(st.Streams))
	if len(st.Streams) > 0 {
		fmt.Fprintln(tw, "REMOTE\tLOCAL\tDIR\tADDRESS\tSTATE\tAUTH\tTLS\tCIPHER\tCERT\tAGE\tIN\tOUT\tUNACKED")
		for _, s := range st.Streams {
			cert := "unverified"
			switch {
			case s.DANE:
				cert = "dane"
			case s.CertVerified:
				cert = "verified"
			}
			tlsv := s.TLSVersion
			if tlsv == "" {
				tlsv, cert = "none", "-"
			}
			unacked := "-"
			if s.StreamManagement {
				unacked = fmt.Sprint(s.Unacked)
			}
			local := strings.Join(s.Local, ",")
			remote := s.Remote
			for r, l := range s.Pairs {
				remote += "," + r
				local += "," + strings.Join(l, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", or(remote, "?"), or(local, "-"), s.Direction, s.Address, s.State, or(s.Auth, "-"), tlsv, or(s.TLSCipher, "-"), cert, s.Age.Brief(), s.StanzasIn, s.StanzasOut, unacked)
		}
	}
	fmt.Fprintf(tw, "\nCOMPONENTS (%d)\n", len(st.Components))
	if len(st.Components) > 0 {
		fmt.Fprint(tw, "DOMAIN\tCONNECTED\tADDRESS\tAGE\tIN\tOUT")
		if st.Cluster != nil {
			fmt.Fprint(tw, "\tNODE")
		}
		fmt.Fprintln(tw)
		for _, c := range st.Components {
			connected, age := "no", "-"
			if c.Connected {
				connected = "yes"
			}
			if c.Address != "" {
				age = c.Age.Brief()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d", c.Domain, connected, or(c.Address, "-"), age, c.StanzasIn, c.StanzasOut)
			if st.Cluster != nil {
				fmt.Fprintf(tw, "\t%s", or(c.Node, "-"))
			}
			fmt.Fprintln(tw)
		}
	}
	fmt.Fprintf(tw, "\nQUEUES (%d)\n", len(st.Queues))
	if len(st.Queues) > 0 {
		fmt.Fprintln(tw, "REMOTE\tQUEUED\tUNACKED\tOLDEST\tSTREAM\tNEXT RETRY\tLAST ERROR")
		for _, q := range st.Queues {
			oldest, retry, stream := "-", "-", "down"
			if !q.Oldest.IsZero() {
				oldest = q.OldestAge.Brief()
			}
			if !q.NextRetry.IsZero() {
				retry = "in " + q.RetryIn.Brief()
			}
			switch {
			case q.Stream:
				stream = "up"
			case q.Dialing:
				stream = "connecting"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", q.Remote, q.Queued, q.Unacked, oldest, stream, retry, or(q.LastError, "-"))
		}
	}
	if c := st.Cluster; c != nil {
		fmt.Fprintf(tw, "\nCLUSTER\nnode %s, members %s, %d of %d partitions owned, %d stanzas waiting for an owner, durability %s\n", c.Node, strings.Join(c.Members, " "), len(c.Owned), c.Partitions, c.Waiting, c.Durability)
	}
	tw.Flush()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ctlMain runs `s2sd ctl`.
func ctlMain(args []string) int {
	fs := flag.NewFlagSet("s2sd ctl", flag.ContinueOnError)
	cf := addControlFlags(fs)
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	cond := fs.String("condition", "", "stream error `condition` of close: reset (default), policy-violation, system-shutdown, undefined-condition")
	fs.Usage = func() {
		o := fs.Output()
		fmt.Fprintln(o, "usage: s2sd ctl [-config FILE | -socket PATH] [-json] COMMAND")
		fmt.Fprintln(o, "  close DOMAIN    end the streams with DOMAIN with a stream error; its queue stays")
		fmt.Fprintln(o, "  retry DOMAIN    try to reach DOMAIN now instead of waiting out the backoff")
		fmt.Fprintln(o, "  bounce DOMAIN   return what is queued for DOMAIN to its senders (remote-server-not-found)")
		fmt.Fprintln(o, "  reload          reload the configuration file and say what changed")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req := node.ControlRequest{Command: fs.Arg(0), Domain: fs.Arg(1), Condition: *cond}
	want := 2
	switch req.Command {
	case node.CmdClose, node.CmdRetry, node.CmdBounce:
	case node.CmdReload:
		want = 1
	case "":
		fs.Usage()
		return 2
	default:
		fmt.Fprintf(os.Stderr, "s2sd ctl: unknown command %q\n", req.Command)
		fs.Usage()
		return 2
	}
	if fs.NArg() != want {
		fmt.Fprintf(os.Stderr, "s2sd ctl %s: wrong number of arguments\n", req.Command)
		fs.Usage()
		return 2
	}
	cc, code := dialControl("ctl", cf)
	if cc == nil {
		return code
	}
	defer cc.Close()
	var raw json.RawMessage
	if err := cc.Do(req, &raw); err != nil {
		fmt.Fprintf(os.Stderr, "s2sd ctl %s: %v\n", req.Command, err)
		return 1
	}
	if *asJSON {
		var b bytes.Buffer
		json.Indent(&b, raw, "", "  ")
		b.WriteByte('\n')
		os.Stdout.Write(b.Bytes())
		return 0
	}
	switch req.Command {
	case node.CmdClose:
		var r node.CloseResult
		json.Unmarshal(raw, &r)
		fmt.Printf("closed %s and %s of %s; %s stay queued\n", count(r.Streams, "stream"), count(r.Components, "component stream"), r.Domain, count(r.Queued, "stanza"))
	case node.CmdRetry:
		var r node.RetryResult
		json.Unmarshal(raw, &r)
		if r.Retried {
			fmt.Printf("retrying %s now (%s queued)\n", r.Domain, count(r.Queued, "stanza"))
		} else {
			fmt.Printf("%s was not waiting for a retry (%s queued)\n", r.Domain, count(r.Queued, "stanza"))
		}
	case node.CmdBounce:
		var r node.BounceResult
		json.Unmarshal(raw, &r)
		fmt.Printf("bounced %s queued for %s\n", count(r.Bounced, "stanza"), r.Domain)
	case node.CmdReload:
		var r node.ReloadResult
		json.Unmarshal(raw, &r)
		writeReload(os.Stdout, &r)
	}
	return 0
}

// count writes n things: "1 stanza", "2 stanzas".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func writeReload(w io.Writer, r *node.ReloadResult) {
	file := r.File
	if file == "" {
		file = "the embedded default"
	}
	fmt.Fprintf(w, "reloaded %s\n", file)
	if len(r.Applied) == 0 && len(r.Restart) == 0 {
		fmt.Fprintln(w, "no key changed (certificates, secrets and the CA bundle were read again)")
	}
	if len(r.Applied) > 0 {
		fmt.Fprintf(w, "in force now: %s\n", strings.Join(r.Applied, ", "))
	}
	if len(r.Restart) > 0 {
		fmt.Fprintf(w, "need a restart: %s\n", strings.Join(r.Restart, ", "))
	}
}

// checkMain runs `s2sd check`.
func checkMain(args []string) int {
	fs := flag.NewFlagSet("s2sd check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration `file` (TOML); without it, the embedded default")
	checkDNS := fs.Bool("dns", false, "also check the DNS records (SRV, addresses, TLSA) of the served and component domains")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: s2sd check [-config FILE] [-dns] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "s2sd check: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	return checkFile(*cfgPath, *checkDNS, *asJSON)
}

// checkFile checks a configuration file and prints the report; the exit
// status is 1 when it has errors.
func checkFile(path string, withDNS, asJSON bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := node.Check(ctx, path, node.CheckOptions{DNS: withDNS})
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		r.WriteText(os.Stdout)
	}
	if r.Errors() > 0 {
		return 1
	}
	return 0
}

// clusterMain runs `s2sd cluster status`: the cluster part of the running
// node's status.
func clusterMain(args []string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "usage: s2sd cluster status [-json] [-config FILE | -socket PATH]")
		return 2
	}
	raw, asJSON, code := askStatus("s2sd cluster status", "[-json] [-config FILE | -socket PATH]", args[1:])
	if raw == nil {
		return code
	}
	var st node.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		fmt.Fprintln(os.Stderr, "s2sd cluster status:", err)
		return 1
	}
	c := st.Cluster
	if c == nil {
		fmt.Fprintln(os.Stderr, "s2sd cluster status: this s2sd is not in a cluster (no [cluster] section)")
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(c)
		return 0
	}
	fmt.Printf("node %s; members: %s; durability %s\n", c.Node, strings.Join(c.Members, " "), c.Durability)
	owned := make([]string, len(c.Owned))
	for i, p := range c.Owned {
		owned[i] = strconv.Itoa(p)
	}
	fmt.Printf("partitions owned: %d of %d: %s\n", len(c.Owned), c.Partitions, strings.Join(owned, " "))
	if len(c.Moving) > 0 {
		fmt.Printf("partitions moving to their preferred owner: %d\n", len(c.Moving))
	}
	if c.Waiting > 0 {
		fmt.Printf("stanzas waiting for an owner: %d\n", c.Waiting)
	}
	domains := make([]string, 0, len(c.Components))
	for d := range c.Components {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for _, d := range domains {
		fmt.Printf("component %s on %s\n", d, c.Components[d])
	}
	return 0
}

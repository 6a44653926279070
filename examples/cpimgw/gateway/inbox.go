package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/s2sd/s2sd/cpim"
	"github.com/s2sd/s2sd/route"
)

// DefaultPoll is how often an Inbox looks at its directory when
// Inbox.Poll is zero.
const DefaultPoll = time.Second

// FailedDir is the subdirectory of an Inbox's directory that holds the
// objects that could not be mapped, each with a NAME.error file saying why.
const FailedDir = "failed"

// Inbox sends the Message/CPIM objects that appear in a directory to XMPP
// through Gateway.Stanzas and Gateway.Sender.
//
// Writers put each object in Dir as one file whose name ends in ".cpim" and
// does not start with '.', atomically: write it under a name starting with
// '.' (or elsewhere on the same file system) and rename it (see
// WriteFileAtomic). Files are taken in name order. A file that was sent is
// removed. One that cannot be mapped, or whose From is not at the gateway's
// domain, moves to Dir/failed with a NAME.error file; so does a bare PIDF
// document (".pidf"), which names no recipient: wrap it in Message/CPIM
// with a To (RFC 3922 §5.2.2). While the component is disconnected files
// wait; a file is retried until every stanza made from it is sent (a
// presence made of several tuples may then be sent again, which presence
// tolerates).
type Inbox struct {
	Dir     string
	Gateway *Gateway
	// Poll is the interval between looks at Dir (default DefaultPoll).
	Poll time.Duration
	// Logger; nil means the Gateway's.
	Logger *slog.Logger
}

func (in *Inbox) logger() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return in.Gateway.logger()
}

// Run watches Dir until ctx ends and returns ctx.Err(). It creates Dir and
// Dir/failed if they are missing.
func (in *Inbox) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(in.Dir, FailedDir), 0o750); err != nil {
		return fmt.Errorf("cpimgw: inbox: %w", err)
	}
	poll := in.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		in.Scan()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Scan handles the files in Dir once, in name order, and returns how many
// were sent. It stops at the first file that could not be sent because
// the stream is down.
func (in *Inbox) Scan() int {
	log := in.logger().With("inbox", in.Dir)
	ents, err := os.ReadDir(in.Dir)
	if err != nil {
		log.Warn("cpimgw: inbox", "err", err)
		return 0
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	sent := 0
	for _, n := range names {
		err := in.file(n)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, route.ErrNotConnected) || errors.Is(err, errRetry):
			log.Debug("cpimgw: inbox waits for the component", "file", n, "err", err)
			return sent
		default:
			log.Warn("cpimgw: inbox object refused", "file", n, "err", redact(err))
			in.fail(n, err, log)
		}
	}
	return sent
}

var errRetry = errors.New("cpimgw: send failed; will retry")

func (in *Inbox) file(name string) error {
	p := filepath.Join(in.Dir, name)
	switch filepath.Ext(name) {
	case ".cpim":
	case ".pidf":
		return fmt.Errorf("cpimgw: a bare PIDF document names no recipient; wrap it in Message/CPIM with a To")
	default:
		return fmt.Errorf("cpimgw: not a .cpim file")
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Size() > cpim.DefaultMaxSize {
		return fmt.Errorf("%w: %d bytes", cpim.ErrTooLarge, fi.Size())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	ss, err := in.Gateway.Stanzas(b)
	if err != nil {
		return err
	}
	if in.Gateway.Sender == nil {
		return route.ErrNotConnected
	}
	for _, s := range ss {
		if err := in.Gateway.Sender.Send(s); err != nil {
			if errors.Is(err, route.ErrNotConnected) {
				return err
			}
			return fmt.Errorf("%w: %v", errRetry, err)
		}
	}
	in.logger().Debug("cpimgw: inbox object sent", "file", name, "stanzas", len(ss))
	if err := os.Remove(p); err != nil {
		in.logger().Error("cpimgw: inbox: sent but not removed; it will be sent again", "file", name, "err", err)
	}
	return nil
}

func (in *Inbox) fail(name string, cause error, log *slog.Logger) {
	dir := filepath.Join(in.Dir, FailedDir)
	if err := WriteFileAtomic(dir, name+".error", []byte(cause.Error()+"\n")); err != nil {
		log.Error("cpimgw: inbox: cannot record a failure", "file", name, "err", err)
	}
	if err := os.Rename(filepath.Join(in.Dir, name), filepath.Join(dir, name)); err != nil {
		log.Error("cpimgw: inbox: cannot move a failed object; it will be tried again", "file", name, "err", err)
	}
}

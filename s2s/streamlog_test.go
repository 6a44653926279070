package s2s

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestStreamLog checks that an inbound stream's logger writes what
// Logger.With would: the stream's attributes first, then the record's, and
// the same under WithAttrs, WithGroup and levels.
func TestStreamLog(t *testing.T) {
	var got, want bytes.Buffer
	opts := &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}
	gotBase := slog.New(slog.NewTextHandler(&got, opts))
	wantBase := slog.New(slog.NewTextHandler(&want, opts))
	log := func(l *slog.Logger) {
		l.Info("stream failed", "err", "boom", "n", 3)
		l.Debug("not logged")
		l.With("element", "message").Warn("stanza refused", "condition", "forbidden")
		l.WithGroup("g").Info("grouped", "k", "v")
	}

	log(newStreamLog(gotBase, "192.0.2.1:5269"))
	log(wantBase.With("dir", "in", "addr", "192.0.2.1:5269"))
	log(headerLog(gotBase, "192.0.2.1:5269", "a.test", "b.test", "id1"))
	log(wantBase.With("dir", "in", "addr", "192.0.2.1:5269", "local", "a.test", "remote", "b.test", "stream_id", "id1"))

	if got.String() != want.String() {
		t.Errorf("stream logger wrote\n%s\nwant\n%s", got.String(), want.String())
	}
	if n := bytes.Count(got.Bytes(), []byte("\n")); n != 6 {
		t.Errorf("%d lines, want 6:\n%s", n, got.String())
	}
}

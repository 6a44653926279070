package s2s

import (
	"context"
	"log/slog"
)

// streamLog is the handler of an inbound stream's logger. It puts the
// stream's attributes before each record's, as Logger.With would, but later:
// With formats them when the logger is made and keeps the result, about
// 0.3 KiB a stream, where streamLog keeps strings the stream holds anyway
// and formats them only for a record that is logged. Idle inbound streams
// are many, and log little.
type streamLog struct {
	next slog.Handler
	addr string
	// header: the stream header is read, and local, remote and id follow
	// addr
	header            bool
	local, remote, id string
}

// newStreamLog returns the logger of an inbound stream from addr, before its
// header is read.
func newStreamLog(base *slog.Logger, addr string) *slog.Logger {
	return slog.New(&streamLog{next: base.Handler(), addr: addr})
}

// headerLog returns the logger of an inbound stream from addr once its header
// is read.
func headerLog(base *slog.Logger, addr, local, remote, id string) *slog.Logger {
	return slog.New(&streamLog{next: base.Handler(), addr: addr, header: true, local: local, remote: remote, id: id})
}

func (h *streamLog) attrs() []slog.Attr {
	a := make([]slog.Attr, 2, 5)
	a[0], a[1] = slog.String("dir", "in"), slog.String("addr", h.addr)
	if h.header {
		a = append(a, slog.String("local", h.local), slog.String("remote", h.remote), slog.String("stream_id", h.id))
	}
	return a
}

func (h *streamLog) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *streamLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(h.attrs()...)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *streamLog) WithAttrs(as []slog.Attr) slog.Handler {
	return h.next.WithAttrs(append(h.attrs(), as...))
}

func (h *streamLog) WithGroup(name string) slog.Handler {
	return h.next.WithAttrs(h.attrs()).WithGroup(name)
}

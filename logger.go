package durable

import (
	"context"
	"log/slog"
)

// Logger returns a logger for workflow code: Config.Logger with the run's
// run_id and workflow, and the journal position the workflow has reached
// when a line is logged. Lines logged while the run replays (re-runs
// operations its journal already holds, after a restart or an eviction)
// are dropped, so each line is logged once however often the run is
// replayed. Code between the last recorded operation and the next one runs
// again after a crash, and logs again, like a step interrupted before its
// commit runs again.
//
// The logger may be kept and used later, and from the goroutines of the
// run's steps: replay and position are read when a line is logged.
func Logger(ctx Context) *slog.Logger {
	x := ctx.executor()
	if x.logger == nil {
		h := x.e.log.Handler().WithAttrs([]slog.Attr{slog.String("run_id", x.id), slog.String("workflow", x.run.def.Name())})
		x.pos.Store(x.next)
		x.logger = slog.New(&replayHandler{x: x, h: h})
	}
	return x.logger
}

// replayHandler drops records while its run replays and adds the
// position to the others.
type replayHandler struct {
	x *executor
	h slog.Handler
}

func (h *replayHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.x.replayOver.Load() && h.h.Enabled(ctx, l)
}

func (h *replayHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.x.replayOver.Load() {
		return nil
	}
	r = r.Clone()
	r.AddAttrs(slog.Int("position", int(h.x.pos.Load())))
	return h.h.Handle(ctx, r)
}

func (h *replayHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &replayHandler{x: h.x, h: h.h.WithAttrs(as)}
}

func (h *replayHandler) WithGroup(name string) slog.Handler {
	return &replayHandler{x: h.x, h: h.h.WithGroup(name)}
}

package postgres

import (
	"context"
	"encoding/hex"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5"
)

// Notes travel by LISTEN/NOTIFY on one channel per schema. A commit that
// gives a run news (a message, a cancel request, a record appended by
// another run, a creation without an owner) calls pg_notify in its own
// transaction, so the note goes out when, and only if, it commits; so do
// Release and Unregister for the ready runs they free. Each Store that
// has engines registered holds one connection that LISTENs and hands
// every note to every engine registered on it (notes are hints: an engine
// tells apart what is not for it). When that connection is lost the
// listener reconnects with backoff and sends a NoteResync, since notes
// may have been lost meanwhile; engines also poll (Lease.Poll).
//
// Payload: kind "." hex(run id) "." hex(workflow) "." hex(owner), at most
// about 3 KB for the longest ids, under NOTIFY's 8000 bytes.

// noteHub is a Store's listener and the engines it feeds.
type noteHub struct {
	channel string // the NOTIFY channel of the schema

	mu        sync.Mutex
	engines   map[string]func(journal.Note)
	started   bool
	listening chan struct{} // closed once the first LISTEN succeeded
	stop      context.CancelFunc
	done      chan struct{}
}

// channelName is the NOTIFY channel of schema: a short identifier, since
// a schema name may already use most of the 63 bytes.
func channelName(schema string) string {
	h := fnv.New64a()
	h.Write([]byte(schema))
	return "durable_" + hex.EncodeToString(h.Sum(nil))
}

func encodeNote(kind journal.NoteKind, runID, workflow, owner string) string {
	return string('0'+rune(kind)) + "." + hex.EncodeToString([]byte(runID)) + "." + hex.EncodeToString([]byte(workflow)) + "." + hex.EncodeToString([]byte(owner))
}

func decodeNote(payload string) journal.Note {
	parts := strings.Split(payload, ".")
	if len(parts) != 4 || len(parts[0]) != 1 {
		return journal.Note{Kind: journal.NoteResync}
	}
	var f [3][]byte
	for i := range f {
		b, err := hex.DecodeString(parts[i+1])
		if err != nil {
			return journal.Note{Kind: journal.NoteResync}
		}
		f[i] = b
	}
	return journal.Note{Kind: journal.NoteKind(parts[0][0] - '0'), RunID: string(f[0]), Workflow: string(f[1]), Owner: string(f[2])}
}

// start starts the listener if it is not running, and waits until it
// listens (or ctx ends).
func (h *noteHub) start(ctx context.Context, s *Store) error {
	h.mu.Lock()
	if !h.started {
		h.started = true
		h.listening = make(chan struct{})
		h.done = make(chan struct{})
		lctx, cancel := context.WithCancel(context.Background())
		h.stop = cancel
		go h.listen(lctx, s)
	}
	listening := h.listening
	h.mu.Unlock()
	select {
	case <-listening:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *noteHub) add(id string, notify func(journal.Note)) {
	h.mu.Lock()
	if h.engines == nil {
		h.engines = map[string]func(journal.Note){}
	}
	h.engines[id] = notify
	h.mu.Unlock()
}

func (h *noteHub) remove(id string) {
	h.mu.Lock()
	delete(h.engines, id)
	h.mu.Unlock()
}

// deliver hands n to every registered engine.
func (h *noteHub) deliver(n journal.Note) {
	h.mu.Lock()
	fns := make([]func(journal.Note), 0, len(h.engines))
	for _, fn := range h.engines {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(n)
	}
}

// close stops the listener and waits for it.
func (h *noteHub) close() {
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if started {
		h.stop()
		<-h.done
	}
}

// listen keeps a LISTENing connection until ctx ends, reconnecting with
// backoff.
func (h *noteHub) listen(ctx context.Context, s *Store) {
	defer close(h.done)
	first := true
	var bo backoff
	for ctx.Err() == nil {
		err := h.session(ctx, s, &first, &bo)
		if ctx.Err() != nil {
			return
		}
		s.opts.Logger.Warn("postgres: notes: connection lost; reconnecting", "schema", s.opts.Schema, "err", err)
		if !bo.sleep(ctx, nil) {
			return
		}
	}
}

// session connects, LISTENs and delivers notes until the connection fails.
func (h *noteHub) session(ctx context.Context, s *Store, first *bool, bo *backoff) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{h.channel}.Sanitize()); err != nil {
		return err
	}
	bo.reset()
	if *first {
		*first = false
		close(h.listening)
	} else {
		s.opts.Logger.Info("postgres: notes: listening again", "schema", s.opts.Schema)
		h.deliver(journal.Note{Kind: journal.NoteResync})
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		h.deliver(decodeNote(n.Payload))
	}
}

// backoff is an exponential backoff from 50 ms to 2 s.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// sleep waits for the next delay; false if ctx ended or stop closed first.
func (b *backoff) sleep(ctx context.Context, stop <-chan struct{}) bool {
	switch {
	case b.d == 0:
		b.d = 50 * time.Millisecond
	case b.d < 2*time.Second:
		b.d = min(2*b.d, 2*time.Second)
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

package journaltest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/durable-go/durable/journal"
)

func testMessagesSend(t *testing.T, s journal.Store) {
	createRuns(t, s, "r", "other")
	b1 := &journal.Batch{Now: at(1), Send: []journal.Message{
		{RunID: "r", Channel: "a", Data: []byte("a1")},
		{RunID: "r", Channel: "b", Data: []byte("b1")},
		{RunID: "other", Channel: "a", Data: []byte("other")},
		{RunID: "r", Channel: "a", Data: []byte("a2")},
	}}
	commit(t, s, "send four", b1)
	b2 := &journal.Batch{Now: at(2), Send: []journal.Message{
		{RunID: "r", Channel: "b", Data: []byte("b2")},
		{RunID: "r", Channel: "a", Data: nil},
		{RunID: "r", Channel: "", Data: []byte("empty channel")},
	}}
	commit(t, s, "send three", b2)

	// Commit sets Seq (increasing per run, across batches) and SentAt.
	var prev uint64
	for i, m := range slices.Concat(b1.Send, b2.Send) {
		wantAt := at(1)
		if i >= len(b1.Send) {
			wantAt = at(2)
		}
		if !m.SentAt.Equal(wantAt) {
			t.Fatalf("sent message %d (%q) has SentAt %v, want Batch.Now %v", i, m.Data, m.SentAt, wantAt)
		}
		if m.RunID != "r" {
			continue
		}
		if m.Seq <= prev {
			t.Fatalf("sent message %d (%q) got Seq %d after %d, want increasing", i, m.Data, m.Seq, prev)
		}
		prev = m.Seq
	}

	check := func(channel string, limit int, want ...*journal.Message) {
		t.Helper()
		got := messages(t, s, "r", channel, limit)
		if len(got) != len(want) {
			t.Fatalf("Messages(r, %q, %d) = %d messages %+v, want %d", channel, limit, len(got), got, len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.RunID != "r" || g.Channel != channel || g.Seq != w.Seq || string(g.Data) != string(w.Data) || !g.SentAt.Equal(w.SentAt) {
				t.Fatalf("Messages(r, %q, %d)[%d] = %+v, want %+v", channel, limit, i, g, *w)
			}
		}
	}
	a1, b1m, a2 := &b1.Send[0], &b1.Send[1], &b1.Send[3]
	b2m, a3, e := &b2.Send[0], &b2.Send[1], &b2.Send[2]
	check("a", 0, a1, a2, a3)
	check("a", 1, a1)
	check("a", 2, a1, a2)
	check("a", 3, a1, a2, a3)
	check("a", 10, a1, a2, a3)
	check("b", 0, b1m, b2m)
	check("", 0, e)
	check("c", 0)
	check("a\x01", 0) // a channel whose name extends another's
	if got := messages(t, s, "other", "a", 0); len(got) != 1 || string(got[0].Data) != "other" {
		t.Fatalf("Messages(other, a) = %+v, want the one message sent to other", got)
	}
}

func testMessagesConsume(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	b := &journal.Batch{Now: at(1), Send: []journal.Message{
		{RunID: "r", Channel: "a", Data: []byte("1")},
		{RunID: "r", Channel: "a", Data: []byte("2")},
		{RunID: "r", Channel: "a", Data: []byte("3")},
		{RunID: "r", Channel: "b", Data: []byte("b")},
	}}
	commit(t, s, "send four", b)
	seq := func(i int) uint64 { return b.Send[i].Seq }
	key := func(i int) journal.MessageKey {
		return journal.MessageKey{RunID: "r", Channel: b.Send[i].Channel, Seq: b.Send[i].Seq}
	}
	left := func(channel string) []uint64 {
		t.Helper()
		var out []uint64
		for _, m := range messages(t, s, "r", channel, 0) {
			out = append(out, m.Seq)
		}
		return out
	}

	commit(t, s, "consume the middle message", &journal.Batch{Consume: []journal.MessageKey{key(1)}})
	if got, want := left("a"), []uint64{seq(0), seq(2)}; !slices.Equal(got, want) {
		t.Fatalf("channel a after consuming seq %d holds seqs %v, want %v", seq(1), got, want)
	}
	if got := left("b"); !slices.Equal(got, []uint64{seq(3)}) {
		t.Fatalf("channel b after consuming from a holds seqs %v, want [%d]", got, seq(3))
	}
	commitFails(t, s, "consume the same message again", &journal.Batch{Consume: []journal.MessageKey{key(1)}}, journal.ErrConflict)

	// Twice in one batch: the batch fails and consumes nothing.
	commitFails(t, s, "consume one message twice in one batch", &journal.Batch{Consume: []journal.MessageKey{key(0), key(0)}}, journal.ErrConflict)
	if got, want := left("a"), []uint64{seq(0), seq(2)}; !slices.Equal(got, want) {
		t.Fatalf("a batch consuming one message twice changed channel a to %v, want %v", got, want)
	}
	// The right seq on the wrong channel, and a seq never assigned.
	wrong := key(0)
	wrong.Channel = "b"
	commitFails(t, s, "consume a's message from channel b", &journal.Batch{Consume: []journal.MessageKey{wrong}}, journal.ErrConflict)
	commitFails(t, s, "consume an unknown seq", &journal.Batch{Consume: []journal.MessageKey{{RunID: "r", Channel: "a", Seq: 1 << 40}}}, journal.ErrConflict)
	commitFails(t, s, "consume from a missing run", &journal.Batch{Consume: []journal.MessageKey{{RunID: "missing", Channel: "a", Seq: seq(0)}}}, journal.ErrNotFound)

	// Consume and send in one batch; seqs keep increasing.
	b2 := &journal.Batch{Now: at(2),
		Consume: []journal.MessageKey{key(0), key(2), key(3)},
		Send:    []journal.Message{{RunID: "r", Channel: "a", Data: []byte("4")}},
	}
	commit(t, s, "consume three and send one", b2)
	if got := left("a"); !slices.Equal(got, []uint64{b2.Send[0].Seq}) {
		t.Fatalf("channel a holds seqs %v, want only the new message's [%d]", got, b2.Send[0].Seq)
	}
	if got := left("b"); len(got) != 0 {
		t.Fatalf("channel b holds seqs %v, want none", got)
	}
	for i := range b.Send {
		if b2.Send[0].Seq <= seq(i) {
			t.Fatalf("a message sent after seq %d was consumed got seq %d, want a greater one", seq(i), b2.Send[0].Seq)
		}
	}
}

func testMessagesErrors(t *testing.T, s journal.Store) {
	createRuns(t, s, "r", "done")
	commit(t, s, "complete done", &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: "done", Status: journal.StatusCompleted}}})
	send := func(id, channel string) *journal.Batch {
		return &journal.Batch{Send: []journal.Message{{RunID: id, Channel: channel, Data: []byte("x")}}}
	}
	commitFails(t, s, "send to a missing run", send("missing", "c"), journal.ErrNotFound)
	commitFails(t, s, "send to a completed run", send("done", "c"), journal.ErrFinished)
	commitFails(t, s, "send on a channel with a NUL byte", send("r", "a\x00b"), journal.ErrInvalid)
	commitFails(t, s, "send on a channel over MaxChannelLen", send("r", strings.Repeat("c", journal.MaxChannelLen+1)), journal.ErrInvalid)
	commitFails(t, s, "send with an empty run id", send("", "c"), journal.ErrInvalid)
	wantNotFound(t, s, "missing")
	for _, ch := range []string{"c", "a", "a\x00b"} {
		if ms := messages(t, s, "r", ch, 0); len(ms) != 0 {
			t.Fatalf("Messages(r, %q) after refused sends = %+v, want none", ch, ms)
		}
	}
	if _, err := s.Messages(t.Context(), "missing", "c", 0); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Messages(missing) = %v, want ErrNotFound", err)
	}
	edge := strings.Repeat("c", journal.MaxChannelLen)
	commit(t, s, "send on a channel of MaxChannelLen bytes", send("r", edge))
	if ms := messages(t, s, "r", edge, 0); len(ms) != 1 {
		t.Fatalf("Messages on a channel of MaxChannelLen bytes = %d messages, want 1", len(ms))
	}
}

func testMessagesConcurrent(t *testing.T, s journal.Store) {
	const n, each = 50, 4
	createRuns(t, s, "r")
	seqs := make([][]uint64, n)
	run(n, func(i int) {
		for j := range each {
			b := &journal.Batch{Send: []journal.Message{{RunID: "r", Channel: "c", Data: fmt.Appendf(nil, "%d/%d", i, j)}}}
			if err := s.Commit(t.Context(), b); err != nil {
				t.Errorf("Commit(send from goroutine %d) = %v, want nil", i, err)
				return
			}
			seqs[i] = append(seqs[i], b.Send[0].Seq)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	got := messages(t, s, "r", "c", 0)
	if len(got) != n*each {
		t.Fatalf("after %d concurrent sends Messages holds %d, want all %d", n*each, len(got), n*each)
	}
	seen := map[uint64]bool{}
	byData := map[string]uint64{}
	for i, m := range got {
		if seen[m.Seq] {
			t.Fatalf("seq %d appears twice", m.Seq)
		}
		seen[m.Seq] = true
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Fatalf("Messages not oldest first: seq %d after %d", m.Seq, got[i-1].Seq)
		}
		byData[string(m.Data)] = m.Seq
	}
	for i := range n {
		for j, seq := range seqs[i] {
			if s, ok := byData[fmt.Sprintf("%d/%d", i, j)]; !ok || s != seq {
				t.Fatalf("message %d/%d: stored seq %d (present %v), Commit reported %d", i, j, s, ok, seq)
			}
			if j > 0 && seq <= seqs[i][j-1] {
				t.Fatalf("goroutine %d's sends got seqs %v, want increasing", i, seqs[i])
			}
		}
	}
}

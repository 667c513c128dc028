package durable_test

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// A payload small on the wire can claim a large decoded value: a msgpack
// array of 1,000,000 nils is 1 MB, and decoded into [][64]int64 it is
// 512 MB. Anyone who can Send can send it, and each recovery would decode
// it again. Decoding refuses it first with a *PayloadError.
func TestDecodeAmplificationIsBounded(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 1_000_000
	bomb := make([]byte, 5, 5+n)
	bomb[0] = 0xdd // array 32
	binary.BigEndian.PutUint32(bomb[1:], n)
	for range n {
		bomb = append(bomb, 0xc0) // nil
	}
	wf := durable.Define("bomb", func(ctx durable.Context, _ int) (int, error) {
		v, err := durable.Receive[[][64]int64](ctx, "c")
		return len(v), err
	})
	e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, err := durable.Start(ctx, e, wf, "b-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := durable.Send(ctx, e, "b-1", "c", msgpack.RawMessage(bomb)); err != nil {
		t.Fatal(err)
	}
	_, err = h.Result(ctx)
	runtime.ReadMemStats(&after)
	// The reason of a parked run comes back from the journal: a
	// *PayloadError is then an error that matches ErrPayload.
	if !errors.Is(err, durable.ErrParked) || !errors.Is(err, durable.ErrPayload) {
		t.Fatalf("Result = %v; want the run parked with a payload error", err)
	}
	// Not a timing: the decoder must not have allocated the 512 MB the
	// payload claims (the send and the check take a few MB).
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("receiving the message allocated %d MB", got>>20)
	}
}

// A large payload that decodes to about its size still decodes.
func TestDecodeBudgetKeepsHonestPayloads(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	wf := durable.Define("honest", func(ctx durable.Context, in []int64) (int, error) {
		v, err := durable.Receive[map[string][]int64](ctx, "c")
		return len(in) + len(v["k"]), err
	})
	e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	in := make([]int64, 100_000) // 100 KB encoded, 800 KB decoded
	h, err := durable.Start(ctx, e, wf, "h-1", in)
	if err != nil {
		t.Fatal(err)
	}
	if err := durable.Send(ctx, e, "h-1", "c", map[string][]int64{"k": make([]int64, 100_000)}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Result(ctx); err != nil || got != 200_000 {
		t.Fatalf("Result = %v, %v; want 200000, nil", got, err)
	}
}

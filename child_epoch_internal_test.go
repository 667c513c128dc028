package durable

import (
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable/journal"
)

// TestChildResultOfAnEarlierEpoch: a child's result that reaches its
// parent's live run late (the parent had read it from its journal and
// continued as new) is not taken by the child the parent started at the
// same position in its new epoch. (TestTortureChildAcrossContinueAsNew
// saw "10/0" twice once, with a cache of one run.)
func TestChildResultOfAnEarlierEpoch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		child := Define("epoch-child", func(ctx Context, n int) (int, error) {
			if n == 1 {
				<-release // epoch 1's child waits while the stale result comes
			}
			return n * 10, nil
		})
		parent := Define("epoch-parent", func(ctx Context, epoch int) (int, error) {
			v, err := RunChild(ctx, child, "", epoch)
			if err != nil || epoch == 1 {
				return v, err
			}
			return 0, ContinueAsNew(ctx, 1)
		})
		e, err := New(journal.NewMemory(), &Config{Workflows: []Definition{parent, child}, Logger: coQuiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		h, err := Start(t.Context(), e, parent, "p", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()                       // epoch 1 waits for its child at position 0
		stale, err := encodePayload(0, 1<<20) // what epoch 0's child returned
		if err != nil {
			t.Fatal(err)
		}
		lr := e.liveRunOf("p")
		if lr == nil {
			t.Fatal("parent p is not loaded")
		}
		lr.deliverChildResult(0, journal.Record{Pos: 0, Seq: 1, Kind: kindChild, Name: child.Name(), Flags: flagDone, Data: stale})
		synctest.Wait()
		close(release)
		if got, err := h.Result(t.Context()); err != nil || got != 10 {
			t.Fatalf("Result = %d, %v; want 10 (epoch 1's child), not epoch 0's late result", got, err)
		}
	})
}

package durable_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// A workflow's SendTo delivers once, even when the sender is replayed
// after a restart; sending to a missing or finished run is a recorded
// error.
func TestSendToOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		inbox := durable.Define("inbox", func(ctx durable.Context, n int) ([]string, error) {
			var got []string
			for {
				m, err := durable.ReceiveTimeout[string](ctx, "m", 24*time.Hour)
				if errors.Is(err, durable.ErrTimeout) {
					return got, nil
				}
				if err != nil {
					return nil, err
				}
				got = append(got, m)
			}
		})
		sender := durable.Define("sender", func(ctx durable.Context, to string) (string, error) {
			if err := durable.SendTo(ctx, to, "m", "hello"); err != nil {
				return "", err
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil { // a restart here replays the send
				return "", err
			}
			if err := durable.SendTo(ctx, to, "m", "again"); err != nil {
				return "", err
			}
			err := durable.SendTo(ctx, "nobody", "m", "x")
			if !errors.Is(err, durable.ErrNotFound) {
				return "", errors.New("send to a missing run: " + errText(err))
			}
			return "ok", nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{inbox, sender}})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, inbox, "in", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Start(ctx, env.Engine, sender, "s", "in"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		env.Restart()
		hs, err := durable.Attach(ctx, env.Engine, sender, "s")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := hs.Result(ctx); err != nil || out != "ok" {
			t.Fatalf("sender: %q, %v", out, err)
		}
		hi, err := durable.Attach(ctx, env.Engine, inbox, "in")
		if err != nil {
			t.Fatal(err)
		}
		got, err := hi.Result(ctx)
		if err != nil || len(got) != 2 || got[0] != "hello" || got[1] != "again" {
			t.Fatalf("received %q, %v; want [hello again]", got, err)
		}
		// The target is finished now: a new sender gets ErrFinished.
		fin := durable.Define("fin", func(ctx durable.Context, _ int) (bool, error) {
			return errors.Is(durable.SendTo(ctx, "in", "m", "late"), durable.ErrFinished), nil
		})
		if ok, err := durable.Run(ctx, env.Engine, fin, "f", 0); err != nil || !ok {
			t.Fatalf("send to a finished run: ErrFinished %v, %v", ok, err)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

package durable_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/journal"
)

// effects counts step executions by "run/step".
type effects struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *effects) add(run, step string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[run+"/"+step]++
}

func (f *effects) count(run, step string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[run+"/"+step]
}

// orderGen is generation gen of one workflow, "order", as it changes
// over four deploys:
//
//	gen 0: reserve, charge, receive "go", ship
//	gen 1: a fraud check before charge, behind Version("fraud", Default, 1)
//	gen 2: a second change to the same place: version 2 runs "fraud2"
//	gen 3: every run older than version 1 is done: min raised to 1, the
//	       DefaultVersion branch deleted
//	gen 4: every run older than version 2 is done: the Version call and
//	       the version 1 branch deleted
//
// It returns the version its run took, as a string ("-" for gen 0).
func orderGen(gen int, fx *effects) *durable.Workflow[string, string] {
	return durable.Define("order", func(ctx durable.Context, in string) (string, error) {
		step := func(name string) error {
			_, err := durable.Step(ctx, name, func(context.Context) (string, error) {
				fx.add(ctx.RunID(), name)
				return name, nil
			})
			return err
		}
		if err := step("reserve"); err != nil {
			return "", err
		}
		v := "-"
		switch gen {
		case 1:
			n := durable.Version(ctx, "fraud", durable.DefaultVersion, 1)
			if n >= 1 {
				if err := step("fraud"); err != nil {
					return "", err
				}
			}
			v = fmt.Sprint(n)
		case 2:
			n := durable.Version(ctx, "fraud", durable.DefaultVersion, 2)
			switch n {
			case 1:
				if err := step("fraud"); err != nil {
					return "", err
				}
			case 2:
				if err := step("fraud2"); err != nil {
					return "", err
				}
			}
			v = fmt.Sprint(n)
		case 3:
			n := durable.Version(ctx, "fraud", 1, 2)
			name := "fraud2"
			if n == 1 {
				name = "fraud"
			}
			if err := step(name); err != nil {
				return "", err
			}
			v = fmt.Sprint(n)
		case 4:
			if err := step("fraud2"); err != nil {
				return "", err
			}
			v = "2"
		}
		if err := step("charge"); err != nil {
			return "", err
		}
		if _, err := durable.Receive[bool](ctx, "go"); err != nil {
			return "", err
		}
		if err := step("ship"); err != nil {
			return "", err
		}
		return v, nil
	})
}

// TestVersionLifeCycle deploys the five generations of orderGen over runs
// in flight: each run keeps the path it started on (old runs the old
// path, though they replay on new code), new runs take the newest path,
// a run outside the supported versions parks and resumes when code that
// supports it comes back, and deleting the Version call leaves runs that
// recorded it replaying.
func TestVersionLifeCycle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := &effects{}
		gens := map[int]*durable.Workflow[string, string]{0: orderGen(0, fx)}
		env := durabletest.New(t, quiet(config(gens[0])))
		ctx := t.Context()
		deploy := func(gen int) {
			t.Helper()
			gens[gen] = orderGen(gen, fx)
			env.Config = quiet(config(gens[gen]))
			env.Restart()
			synctest.Wait()
		}
		run := func(gen int, id string) {
			t.Helper()
			if _, err := durable.Start(ctx, env.Engine, gens[gen], id, ""); err != nil {
				t.Fatalf("Start %s: %v", id, err)
			}
			synctest.Wait()
		}
		finish := func(gen int, id, want string) {
			t.Helper()
			if err := durable.Send(ctx, env.Engine, id, "go", true); err != nil {
				t.Fatalf("Send %s: %v", id, err)
			}
			out, err := durable.Run(ctx, env.Engine, gens[gen], id, "")
			if err != nil || out != want {
				t.Fatalf("run %s: %q, %v; want %q", id, out, err, want)
			}
		}
		steps := func(id string, want ...string) {
			t.Helper()
			for _, s := range []string{"reserve", "fraud", "fraud2", "charge", "ship"} {
				n := 0
				for _, w := range want {
					if w == s {
						n = 1
					}
				}
				if got := fx.count(id, s); got != n {
					t.Errorf("run %s: step %s ran %d times, want %d", id, s, got, n)
				}
			}
		}

		run(0, "a") // charged, waits for "go"
		run(0, "d") // the same; it will outlive support for the old path

		deploy(1)
		run(1, "b") // records version 1
		finish(1, "a", "-1")
		steps("a", "reserve", "charge", "ship")

		deploy(2)
		run(2, "c") // records version 2
		run(2, "e") // the same; it will outlive the Version call
		finish(2, "b", "1")
		steps("b", "reserve", "fraud", "charge", "ship")
		finish(2, "c", "2")
		steps("c", "reserve", "fraud2", "charge", "ship")

		// gen 3 drops the DefaultVersion path too early: run d still
		// needs it, and parks (nothing of it runs or is lost) when its
		// message loads it (a run waiting for a message is not loaded
		// before).
		deploy(3)
		if err := durable.Send(ctx, env.Engine, "d", "go", true); err != nil {
			t.Fatalf("Send d: %v", err)
		}
		synctest.Wait()
		info := mustGet(t, env.Engine, "d")
		if info.Status != durable.StatusParked {
			t.Fatalf("run d: %v, want parked", info.Status)
		}
		var nd *durable.NondeterminismError
		if !errors.Is(info.Err, durable.ErrNondeterministic) || !errors.As(info.Err, &nd) {
			t.Fatalf("run d: error %v, want a NondeterminismError", info.Err)
		}
		for _, s := range []string{`"fraud"`, "DefaultVersion", "supporting versions 1 to 2", "version_test.go"} {
			if !strings.Contains(info.Err.Error(), s) {
				t.Errorf("run d's error %q does not mention %s", info.Err, s)
			}
		}
		// Gen 2 again (a rollback) resumes it on the old path, with the
		// message it has.
		deploy(2)
		if out, err := durable.Run(ctx, env.Engine, gens[2], "d", ""); err != nil || out != "-1" {
			t.Fatalf("run d: %q, %v; want -1", out, err)
		}
		steps("d", "reserve", "charge", "ship")

		// Every run older than version 2 is done: the call goes, and run
		// e, which recorded version 2, replays past its answer.
		deploy(4)
		run(4, "f")
		finish(4, "e", "2")
		steps("e", "reserve", "fraud2", "charge", "ship")
		finish(4, "f", "2")
		steps("f", "reserve", "fraud2", "charge", "ship")
	})
}

// TestVersionCachedPerChange: two calls with one change id in one run
// give the first call's answer and take one position.
func TestVersionCachedPerChange(t *testing.T) {
	t.Parallel()
	wf := durable.Define("twice", func(ctx durable.Context, _ int) ([]int, error) {
		a := durable.Version(ctx, "x", durable.DefaultVersion, 3)
		b := durable.Version(ctx, "x", durable.DefaultVersion, 5) // the same change: the same answer
		c := durable.Version(ctx, "y", 0, 1)
		return []int{a, b, c}, nil
	})
	store := journal.NewMemory()
	e, err := durable.New(store, quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := durable.Run(testCtx(t), e, wf, "t1", 0)
	if err != nil || fmt.Sprint(out) != "[3 3 1]" {
		t.Fatalf("Run: %v, %v; want [3 3 1]", out, err)
	}
	mustClose(t, e)
	h, err := durable.History(testCtx(t), store, "t1")
	if err != nil || len(h) != 2 || h[0].Kind != "version" || h[0].Name != "x" || h[0].Detail != "3" || h[1].Name != "y" {
		t.Errorf("history %v, %v: want the versions of x and y", h, err)
	}
}

// TestVersionKill: a run started on old code is killed with SIGKILL in
// its last step; the process that resumes it runs new code with a
// Version branch before a point the run passed, and the run completes on
// the old path; a new run in that process takes the new path.
func TestVersionKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "j.db"), "LOG": filepath.Join(dir, "effects.log")}
	old := crashtest.Start(t, "TestVersionKillChild", "old", env)
	old.WaitFor(t, "shipping k-1", waitLimit)
	old.Kill(t)

	p := crashtest.Start(t, "TestVersionKillChild", "new", env)
	p.WaitFor(t, "result k-1 -1", waitLimit)
	p.WaitFor(t, "result k-2 1", waitLimit)
	if err := p.Wait(t, waitLimit); err != nil {
		t.Fatalf("child: %v\n%s", err, strings.Join(p.Lines(), "\n"))
	}
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"k-1/reserve": 1, "k-1/charge": 1, "k-1/ship": 2, // ship was interrupted once
		"k-2/reserve": 1, "k-2/fraud": 1, "k-2/charge": 1, "k-2/ship": 1,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s ran %d times, want %d (log %v)", k, counts[k], n, counts)
		}
	}
	if counts["k-1/fraud"] != 0 {
		t.Errorf("the old run took the new path: %v", counts)
	}
}

// TestVersionKillChild is TestVersionKill's child process.
func TestVersionKillChild(t *testing.T) {
	role := crashtest.Role()
	if role == "" {
		t.Skip("run as a child by TestVersionKill")
	}
	log, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	wf := durable.Define("kv", func(ctx durable.Context, _ int) (int, error) {
		step := func(name string) {
			_, err := durable.Step(ctx, name, func(context.Context) (int, error) {
				if err := log.Append("%s/%s", ctx.RunID(), name); err != nil {
					return 0, err
				}
				if name == "ship" && role == "old" {
					fmt.Printf("shipping %s\n", ctx.RunID())
					time.Sleep(time.Hour) // killed here
				}
				return 0, nil
			})
			if err != nil {
				panic(err)
			}
		}
		step("reserve")
		v := durable.DefaultVersion
		if role == "new" {
			v = durable.Version(ctx, "fraud", durable.DefaultVersion, 1)
			if v >= 1 {
				step("fraud")
			}
		}
		step("charge")
		step("ship")
		return v, nil
	})
	e, err := durable.Open(crashtest.Env("JOURNAL"), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	ids := []string{"k-1"}
	if role == "new" {
		ids = append(ids, "k-2")
	}
	for _, id := range ids {
		out, err := durable.Run(ctx, e, wf, id, 0)
		if err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		fmt.Printf("result %s %d\n", id, out)
	}
}

package durable_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/internal/torture"
)

// The torture tests: the kill harness of internal/torture, run by
// re-executing this test binary as its child processes. The short version
// (about 30 kills) runs with the other tests; the long one with
//
//	go test -run=TestTortureKills -durable.torture.kills=1000 -timeout=2h .
//
// (or DURABLE_TORTURE_KILLS=1000). A failure prints the seed; rerun it with
// -durable.torture.seed=N.

var (
	ttSeed  = flag.Uint64("durable.torture.seed", 0, "seed of TestTortureKills (default: the clock; or env DURABLE_TORTURE_SEED)")
	ttKills = flag.Int("durable.torture.kills", 0, "kills in TestTortureKills (default 30; or env DURABLE_TORTURE_KILLS)")
	runs    = flag.Int("durable.torture.runs", 0, "top-level runs per round in TestTortureKills (default 16)")
)

// envInt returns the flag's value if set, else the environment
// variable's, else def.
func envInt(flagVal int, env string, def int) int {
	if flagVal > 0 {
		return flagVal
	}
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestTortureChild is the child process of the torture tests (a workload
// incarnation, or bbolt's check of a journal); run directly it skips.
func TestTortureChild(t *testing.T) {
	switch crashtest.Role() {
	case torture.RoleChild:
		if err := torture.Child(crashtest.Env, os.Stdout); err != nil {
			t.Fatal(err)
		}
	case torture.RoleBboltCheck:
		os.Stdout.Sync()
		code := torture.BboltCheck(crashtest.Env("PATH"), os.Stdout)
		os.Exit(code)
	default:
		t.Skip("the torture tests run this as a child process")
	}
}

// launch starts this test binary in a torture role.
func launch(role string, env map[string]string) *exec.Cmd {
	return crashtest.Command("TestTortureChild", role, env)
}

// logWriter writes lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestTortureKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	seed := *ttSeed
	if seed == 0 {
		if v, err := strconv.ParseUint(os.Getenv("DURABLE_TORTURE_SEED"), 10, 64); err == nil {
			seed = v
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	kills := envInt(*ttKills, "DURABLE_TORTURE_KILLS", 30)
	opts := torture.Options{
		Dir:    t.TempDir(),
		Seed:   seed,
		Kills:  kills,
		Runs:   envInt(*runs, "DURABLE_TORTURE_RUNS", 16),
		Launch: launch,
	}
	if testing.Verbose() {
		opts.Progress = logWriter{t}
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	rep, err := torture.Run(ctx, opts)
	if rep != nil {
		t.Logf("torture report:\n%s", rep)
	}
	if err != nil {
		t.Fatalf("%v\nrerun with: go test -run=TestTortureKills -durable.torture.seed=%d -durable.torture.kills=%d .", err, seed, kills)
	}
}

// Command durable-torture runs the kill harness of the durable engine
// (package internal/torture) outside of tests: it runs a seeded mixed
// workload on a bbolt journal in a child process (itself, re-executed),
// kills the child with SIGKILL at random moments and restarts it, until
// -kills kills landed, then checks that every run finished with the result
// an uncrashed execution gives, that steps ran again only after kills that
// found them in progress, that messages were received once, and that the
// journal is sound (Verify, bbolt's check).
//
//	go run ./cmd/durable-torture -kills=1000
//	go run ./cmd/durable-torture -kills=200 -seed=12345 -dir=/tmp/torture
//
// It prints a line per kill and round, and a final report. The exit status
// is 0 if all is well, 1 if the checks found problems or the harness
// failed (the seed is printed: rerun with -seed), 2 for bad flags. The
// directory (a temporary one unless -dir) is kept when something failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/durable-go/durable/internal/torture"
)

// Child processes are this program with the role in this variable and
// their environment prefixed by envPrefix.
const (
	envRole   = "DURABLE_TORTURE_ROLE"
	envPrefix = "DURABLE_TORTURE_"
)

func main() {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(child(role))
	}
	os.Exit(parent())
}

func child(role string) int {
	getenv := func(k string) string { return os.Getenv(envPrefix + k) }
	switch role {
	case torture.RoleChild:
		if err := torture.Child(getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case torture.RoleBboltCheck:
		return torture.BboltCheck(getenv("PATH"), os.Stdout)
	}
	fmt.Fprintf(os.Stderr, "durable-torture: unknown role %q\n", role)
	return 2
}

func parent() int {
	fs := flag.NewFlagSet("durable-torture", flag.ContinueOnError)
	kills := fs.Int("kills", 30, "SIGKILLs that must land")
	seed := fs.Uint64("seed", 0, "seed of the workload and the kill times (default: the clock)")
	runs := fs.Int("runs", 16, "top-level runs per round")
	dir := fs.String("dir", "", "directory for the journal, the effect log and the children's stderr (default: a new temporary one)")
	quiet := fs.Bool("q", false, "print only the final report")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *kills < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: durable-torture [-kills N] [-seed N] [-runs N] [-dir DIR] [-q]")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "durable-torture:", err)
		return 1
	}
	keep := *dir != ""
	if !keep {
		if *dir, err = os.MkdirTemp("", "durable-torture-"); err != nil {
			fmt.Fprintln(os.Stderr, "durable-torture:", err)
			return 1
		}
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "durable-torture:", err)
		return 1
	}
	if entries, _ := os.ReadDir(*dir); len(entries) > 0 {
		fmt.Fprintf(os.Stderr, "durable-torture: %s is not empty\n", *dir)
		return 2
	}
	o := torture.Options{
		Dir:   *dir,
		Seed:  *seed,
		Kills: *kills,
		Runs:  *runs,
		Launch: func(role string, env map[string]string) *exec.Cmd {
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), envRole+"="+role)
			for k, v := range env {
				cmd.Env = append(cmd.Env, envPrefix+k+"="+v)
			}
			return cmd
		},
	}
	if !*quiet {
		o.Progress = os.Stdout
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := torture.Run(ctx, o)
	if rep != nil {
		fmt.Println(rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintf(os.Stderr, "files kept in %s\n", *dir)
		return 1
	}
	if !keep {
		os.RemoveAll(*dir)
	}
	return 0
}

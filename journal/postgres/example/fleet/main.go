// Command fleet shows runs spreading over three worker processes that
// share one PostgreSQL journal, and surviving one of them: worker B is
// killed with SIGKILL in the middle, and the runs it held finish on A and
// C once its lease runs out.
//
//	cd journal/postgres
//	go run ./example/fleet
//
// It uses the server DURABLE_POSTGRES_URL names, or starts a throwaway one
// from the local PostgreSQL binaries with scripts/postgres (and stops it
// at the end). It works in the schema fleet_example, which it drops at the
// start and the end.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/jackc/pgx/v5"
)

const (
	schema = "fleet_example"
	orders = 9
	steps  = 4
	lease  = 2 * time.Second
)

// order is one run: steps steps, each a third of a second of "work".
var order = durable.Define("order", func(ctx durable.Context, n int) (string, error) {
	for i := 1; i <= steps; i++ {
		if _, err := durable.Step(ctx, fmt.Sprintf("step %d", i), func(ctx context.Context) (int, error) {
			info, _ := durable.StepInfoFrom(ctx)
			fmt.Printf("STEP %s %d\n", info.RunID, i) // the parent reads this
			time.Sleep(300 * time.Millisecond)
			return i, nil
		}); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("order %d shipped", n), nil
})

// batch fans out the orders as child runs: children are created without
// an owner, so every worker may claim them.
var batch = durable.Define("batch", func(ctx durable.Context, n int) (int, error) {
	var fs []*durable.Future[string]
	for i := range n {
		fs = append(fs, durable.StartChild(ctx, order, fmt.Sprintf("order-%02d", i), i))
	}
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			return 0, err
		}
	}
	return n, nil
})

func main() {
	if os.Getenv("FLEET_WORKER") != "" {
		if err := worker(os.Getenv("FLEET_URL"), os.Getenv("FLEET_WORKER")); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// worker runs an engine with both workflows until its stdin closes.
func worker(url, name string) error {
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema, LeaseTimeout: lease, PollInterval: 250 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer s.Close()
	// MaxRuns: each worker owns at most three runs at once, so the nine
	// orders spread over the three of them.
	e, err := durable.New(s, &durable.Config{Workflows: []durable.Definition{order, batch}, MaxRuns: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() { // until the parent closes stdin
		if in.Text() == "start" {
			if _, err := durable.Start(ctx, e, batch, "batch", orders); err != nil {
				return err
			}
		}
	}
	return e.Close()
}

// proc is a running worker.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func run() error {
	ctx := context.Background()
	url := os.Getenv("DURABLE_POSTGRES_URL")
	if url == "" {
		dir, err := os.MkdirTemp("", "fleet-postgres-")
		if err != nil {
			return err
		}
		script, err := findScript()
		if err != nil {
			return err
		}
		fmt.Println("DURABLE_POSTGRES_URL is not set: starting a throwaway PostgreSQL with scripts/postgres ...")
		out, err := exec.Command(script, "start", dir).Output()
		if err != nil {
			return fmt.Errorf("scripts/postgres start: %v (PostgreSQL binaries on PATH or in /usr/lib/postgresql/*/bin are needed)", err)
		}
		defer os.RemoveAll(dir)
		defer exec.Command(script, "stop", dir).Run()
		url = strings.TrimSpace(string(out))
	}
	if err := dropSchema(ctx, url); err != nil {
		return err
	}
	defer dropSchema(ctx, url)
	store, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer store.Close()

	fmt.Printf("three workers, A, B and C, share one journal in PostgreSQL (lease %v); A starts a batch of %d orders of %d steps, as child runs that any worker may claim (each owns at most 3 runs at once)\n\n", lease, orders, steps)
	var mu sync.Mutex
	ran := map[string][]string{} // order -> "B:1" per step execution
	stepsSeen := 0
	procs := map[string]*proc{}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, name := range []string{"A", "B", "C"} {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "FLEET_WORKER="+name, "FLEET_URL="+url)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		defer cmd.Process.Kill()
		p := &proc{name: name, cmd: cmd, stdin: in}
		procs[name] = p
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 1 && f[0] == "READY":
					close(ready)
				case len(f) == 3 && f[0] == "STEP":
					mu.Lock()
					ran[f[1]] = append(ran[f[1]], name+":"+f[2])
					stepsSeen++
					mu.Unlock()
					fmt.Printf("  worker %s: %s step %s\n", name, f[1], f[2])
				}
			}
		}()
		<-ready
		fmt.Printf("worker %s started (pid %d)\n", name, cmd.Process.Pid)
	}

	fmt.Println("\nworker A starts the batch")
	fmt.Fprintln(procs["A"].stdin, "start")

	// Kill B with SIGKILL once a third of the work is done.
	for {
		mu.Lock()
		n := stepsSeen
		mu.Unlock()
		if n >= orders*steps/3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	held := owned(ctx, store, procs["B"].cmd.Process.Pid)
	procs["B"].cmd.Process.Signal(syscall.SIGKILL)
	procs["B"].cmd.Wait()
	killedAt := time.Now()
	fmt.Printf("\n*** worker B killed with SIGKILL; it held %s: they wait for its lease (%v) to run out, then A and C take them over ***\n\n", list(held), lease)

	for {
		r, err := store.GetRun(ctx, "batch")
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			fmt.Printf("\nbatch %s %.1fs after the kill: %s\n", r.Status, time.Since(killedAt).Seconds(), inspect.DescribePayload(r.Output))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	fmt.Println("\nwho executed which step (a step B was executing when it died ran again elsewhere: at least once):")
	ids := slices.Sorted(maps.Keys(ran))
	for _, id := range ids {
		r, err := store.GetRun(ctx, id)
		if err != nil {
			return err
		}
		mark := ""
		if slices.Contains(held, id) {
			mark = "   <- B held it when it died"
		}
		fmt.Printf("  %s  %-9s %-18s %s%s\n", id, r.Status, inspect.DescribePayload(r.Output), strings.Join(ran[id], " "), mark)
	}
	for _, name := range []string{"A", "C"} {
		procs[name].stdin.Close()
		procs[name].cmd.Wait()
	}
	return nil
}

// owned lists the runs whose owner is the engine in process pid (engine
// ids hold the pid: host/pid/random).
func owned(ctx context.Context, s *postgres.Store, pid int) []string {
	rs, err := s.ListRuns(ctx, journal.Filter{Status: journal.StatusRunning})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range rs {
		if parts := strings.Split(r.Owner, "/"); len(parts) >= 2 && parts[len(parts)-2] == strconv.Itoa(pid) && r.ID != "batch" {
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

func list(ids []string) string {
	if len(ids) == 0 {
		return "no runs"
	}
	return strings.Join(ids, ", ")
}

func dropSchema(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	return err
}

// findScript finds scripts/postgres above the working directory.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "postgres")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/postgres not found above the working directory: run from the repository, or set DURABLE_POSTGRES_URL")
		}
		dir = parent
	}
}

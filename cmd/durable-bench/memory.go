package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
)

// P6: the memory of many runs waiting, half in durable.Sleep and half in
// durable.Receive. It is measured in a child process (this program
// re-executed with the hidden first argument childFlag) so that what the
// earlier figures allocated does not count; the baseline is the same
// child's RSS after opening the engine, before starting any run. RSS is
// VmRSS from /proc/self/status after runtime.GC: it counts the Go heap not
// yet returned to the OS and the pages of the journal's memory map that
// were touched (RssFile), so the notes break it down.

const childFlag = "-memory-child"

// memReport is what the child measured, as JSON on its stdout.
type memReport struct {
	Waiting       int
	CachedRuns    int // Config.MaxCachedRuns as set (0: the default)
	StartSeconds  float64
	SettleSeconds float64
	Initial       procMem // at process start
	Base          procMem // after Open, before any run
	Final         procMem // with every run waiting
	Freed         procMem // then after debug.FreeOSMemory
	JournalBytes  int64
}

// procMem is the process's memory at one point, after runtime.GC.
type procMem struct {
	RSS, RSSAnon, RSSFile int64 // bytes, from /proc/self/status
	HeapInuse, StackInuse uint64
	Goroutines            int
}

// memoryWaiting counts the runs that reached their wait.
var memoryWaiting atomic.Pointer[progress]

var (
	sleepWorkflow = durable.Define("bench-sleep", func(ctx durable.Context, _ int) (int, error) {
		memoryWaiting.Load().add()
		return 0, durable.Sleep(ctx, 24*time.Hour)
	})
	receiveWorkflow = durable.Define("bench-receive", func(ctx durable.Context, _ int) (string, error) {
		memoryWaiting.Load().add()
		return durable.Receive[string](ctx, "go")
	})
)

func runMemory(b *bench) (*result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{childFlag,
		"-waiting", strconv.Itoa(b.cfg.waiting),
		"-start-workers", strconv.Itoa(b.cfg.startWorkers),
		"-cached-runs", strconv.Itoa(b.cfg.cachedRuns),
		"-dir", b.dir,
	}
	if b.cfg.cpuProfile != "" {
		args = append(args, "-cpuprofile", profileName(b.cfg.cpuProfile, "P6"))
	}
	if b.cfg.memProfile != "" {
		args = append(args, "-memprofile", profileName(b.cfg.memProfile, "P6"))
	}
	var reps []memReport
	for i := range b.cfg.reps {
		ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stderr = b.progress
		out, err := cmd.Output()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("child process: %w", err)
		}
		var r memReport
		if err := json.Unmarshal(out, &r); err != nil {
			return nil, fmt.Errorf("child process output %q: %w", out, err)
		}
		b.logf("  P6 child, rep %d/%d: RSS %s, %s goroutines", i+1, b.cfg.reps, mb(float64(r.Final.RSS)), group(int64(r.Final.Goroutines)))
		reps = append(reps, r)
	}

	field := func(f func(memReport) float64) []float64 {
		out := make([]float64, len(reps))
		for i, r := range reps {
			out[i] = f(r)
		}
		return out
	}
	rss := field(func(r memReport) float64 { return float64(r.Final.RSS) / 1e6 }) // MB
	base := median(field(func(r memReport) float64 { return float64(r.Base.RSS) }))
	gor := median(field(func(r memReport) float64 { return float64(r.Final.Goroutines) }))
	m := median(rss) * 1e6
	last := reps[len(reps)-1]
	n := b.cfg.waiting
	cached := "4096 (default)"
	if b.cfg.cachedRuns != 0 {
		cached = strconv.Itoa(b.cfg.cachedRuns)
	}
	res := &result{rows: []row{
		{
			figure:   "P6",
			what:     fmt.Sprintf("memory: %s runs waiting (half Sleep, half Receive)", group(int64(n))),
			measured: fmt.Sprintf("RSS %s, %s goroutines", mb(m), group(int64(gor))),
			baseline: fmt.Sprintf("RSS %s before the runs", mb(base)),
			ratio:    ratio(m, base),
			target:   "<= 300 MB",
			verdict:  atMost(m, 300e6),
		},
	}}
	res.note("measured in a fresh child process (RSS in MB: %s); Config.MaxCachedRuns %s: waiting runs beyond it are evicted (their goroutine exits; they replay when woken)", spread(rss), cached)
	res.note("last child: RSS %s = anon %s + file %s (the journal's mmap); Go heap in use %s, goroutine stacks %s; %s per waiting run above the baseline",
		mb(float64(last.Final.RSS)), mb(float64(last.Final.RSSAnon)), mb(float64(last.Final.RSSFile)), mb(float64(last.Final.HeapInuse)), mb(float64(last.Final.StackInuse)), kb(float64(last.Final.RSS-last.Base.RSS)/float64(n)))
	res.note("last child: after debug.FreeOSMemory (heap freed by the GC given back to the OS) RSS %s", mb(float64(last.Freed.RSS)))
	res.note("last child: RSS at start %s, after Open %s (%d goroutines); starting the runs took %.1f s, settling %.1f s; journal %s",
		mb(float64(last.Initial.RSS)), mb(float64(last.Base.RSS)), last.Base.Goroutines, last.StartSeconds, last.SettleSeconds, mb(float64(last.JournalBytes)))
	return res, nil
}

func kb(n float64) string { return num(n/1e3) + " KB" }

// memoryChild is the child process of P6.
func memoryChild(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(childFlag, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.IntVar(&c.waiting, "waiting", 100_000, "")
	fs.IntVar(&c.startWorkers, "start-workers", 64, "")
	fs.IntVar(&c.cachedRuns, "cached-runs", 0, "")
	fs.StringVar(&c.dir, "dir", os.TempDir(), "")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "file name")
	fs.StringVar(&c.memProfile, "memprofile", "", "file name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := measureWaiting(c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "durable-bench: P6 child:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(r); err != nil {
		fmt.Fprintln(stderr, "durable-bench: P6 child:", err)
		return 1
	}
	return 0
}

func measureWaiting(c config, stderr io.Writer) (memReport, error) {
	r := memReport{Waiting: c.waiting, CachedRuns: c.cachedRuns}
	var err error
	if r.Initial, err = readMem(); err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp(c.dir, "p6-*")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "p6.db")
	b := &bench{cfg: c, dir: dir, progress: &lockedWriter{w: stderr}}
	cfg := b.engineConfig(sleepWorkflow, receiveWorkflow)
	cfg.MaxCachedRuns = c.cachedRuns
	var e *durable.Engine
	onSide(sideEngine, func() { e, err = durable.Open(path, cfg) }) // its goroutines inherit the label
	if err != nil {
		return r, err
	}
	defer e.Close()
	if r.Base, err = readMem(); err != nil {
		return r, err
	}

	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	p := newProgress(c.waiting)
	memoryWaiting.Store(p)
	t0 := time.Now()
	onSide(sideEngine, func() {
		err = pool(c.waiting, c.startWorkers, func(i int) error {
			var err error
			if i%2 == 0 {
				_, err = durable.Start(ctx, e, sleepWorkflow, runID(i), i)
			} else {
				_, err = durable.Start(ctx, e, receiveWorkflow, runID(i), i)
			}
			return err
		})
	})
	if err == nil {
		err = p.wait(figureTimeout)
	}
	if err != nil {
		return r, err
	}
	r.StartSeconds = time.Since(t0).Seconds()
	t0 = time.Now()
	settle()
	r.SettleSeconds = time.Since(t0).Seconds()
	if r.Final, err = readMem(); err != nil {
		return r, err
	}
	r.JournalBytes = fileSize(path)
	if c.memProfile != "" {
		if err := writeHeapProfile(c.memProfile); err != nil {
			return r, err
		}
	}
	debug.FreeOSMemory()
	r.Freed, err = readMem()
	return r, err
}

// settle waits until the goroutine count has stopped changing (the last
// waits are being journaled and idle runs evicted), for at most a minute.
func settle() {
	last, same := -1, 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && same < 5; {
		time.Sleep(100 * time.Millisecond)
		if g := runtime.NumGoroutine(); g == last {
			same++
		} else {
			last, same = g, 0
		}
	}
}

// readMem collects garbage and reads the process's memory.
func readMem() (procMem, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := procMem{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m, fmt.Errorf("RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "RssAnon":
			dst = &m.RSSAnon
		case "RssFile":
			dst = &m.RSSFile
		default:
			continue
		}
		kB, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc/self/status: %s: %w", k, err)
		}
		*dst = kB * 1024
	}
	if m.RSS == 0 {
		return m, errors.New("RSS: no VmRSS in /proc/self/status")
	}
	return m, sc.Err()
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// machine describes where the figures were measured.
type machine struct {
	goVersion  string
	gomaxprocs int
	numCPU     int
	cpu        string
	kernel     string
	dir        string
	fs         string
	fsyncs     int
	fsyncMed   time.Duration
	fsyncP90   time.Duration
	loadStart  string // /proc/loadavg when the run began
}

func machineInfo(b *bench) (machine, error) {
	m := machine{
		goVersion:  runtime.Version(),
		gomaxprocs: runtime.GOMAXPROCS(0),
		numCPU:     runtime.NumCPU(),
		cpu:        cpuModel(),
		kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		dir:        b.cfg.dir,
		fs:         fsType(b.cfg.dir),
		fsyncs:     b.cfg.fsyncs,
		loadStart:  loadAvg(),
	}
	lat, err := fsyncLatency(b.dir, b.cfg.fsyncs)
	if err != nil {
		return m, err
	}
	m.fsyncMed = lat[len(lat)/2]
	m.fsyncP90 = lat[len(lat)*9/10]
	return m, nil
}

func (m machine) print(w io.Writer) {
	fmt.Fprintf(w, "machine: %s, %d CPUs, GOMAXPROCS %d, %s/%s, %s, kernel %s\n", m.cpu, m.numCPU, m.gomaxprocs, runtime.GOOS, runtime.GOARCH, m.goVersion, cell(m.kernel))
	fmt.Fprintf(w, "disk:    -dir %s (%s): fsync of a 4 KiB write: median %.3f ms, p90 %.3f ms (%d fsyncs)\n",
		m.dir, cell(m.fs), ms(m.fsyncMed), ms(m.fsyncP90), m.fsyncs)
	fmt.Fprintf(w, "load:    1/5/15-minute load averages %s at the start, %s at the end (other processes share the CPUs and the disk)\n", cell(m.loadStart), cell(loadAvg()))
}

// loadAvg returns the 1, 5 and 15-minute load averages.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], "/")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fsyncLatency times n rounds of a 4 KiB write and an fsync of one file
// in dir, and returns the durations sorted.
func fsyncLatency(dir string, n int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	out := make([]time.Duration, 0, n)
	for i := range n + 1 {
		buf[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(buf, 0); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		if i > 0 { // the first one allocates the block
			out = append(out, time.Since(t0))
		}
	}
	slices.Sort(out)
	return out, nil
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return string(b)
}

func cpuModel() string {
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// fsType returns the file system type that holds dir, from /proc/mounts.
func fsType(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, typ := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := fields[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, fields[2]
		}
	}
	return typ
}

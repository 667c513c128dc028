package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU time, to judge cost on a machine whose other load makes rates
// noisy: the bench process's own (every thread), and the PostgreSQL
// server's (the postmaster and every child: backends, WAL writer,
// autovacuum), read from /proc when the server runs on this machine.

// cpuSample is the CPU time used so far by this process and the server.
type cpuSample struct {
	self, server time.Duration
	serverOK     bool
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTick = 10 * time.Millisecond

// serverCPU returns the CPU time of postmaster pid and its children.
func serverCPU(postmaster int) (time.Duration, bool) {
	if postmaster <= 0 {
		return 0, false
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	found := false
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pid, ppid, cpu, children, ok := parseStat(string(b))
		switch {
		case !ok:
		case pid == postmaster: // with its children that exited
			total += cpu + children
			found = true
		case ppid == postmaster:
			total += cpu
		}
	}
	return total, found
}

// parseStat parses /proc/<pid>/stat: pid, parent pid, user + system CPU
// time, and that of its children that exited and were waited for.
func parseStat(s string) (pid, ppid int, cpu, children time.Duration, ok bool) {
	i := strings.LastIndexByte(s, ')')
	j := strings.IndexByte(s, ' ')
	if i < 0 || j < 0 {
		return 0, 0, 0, 0, false
	}
	pid, err := strconv.Atoi(s[:j])
	if err != nil {
		return 0, 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0, 0, 0, false
	}
	var t [4]int64 // utime, stime, cutime, cstime: fields 14 to 17
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, 0, 0, false
		}
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, 0, 0, false
	}
	return pid, ppid, time.Duration(t[0]+t[1]) * clockTick, time.Duration(t[2]+t[3]) * clockTick, true
}

// parentOf returns the parent pid of pid, or 0.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	_, ppid, _, _, ok := parseStat(string(b))
	if !ok {
		return 0
	}
	return ppid
}

// sample takes a cpuSample.
func (b *bench) sample() cpuSample {
	s := cpuSample{self: selfCPU()}
	s.server, s.serverOK = serverCPU(b.postmaster)
	return s
}

// cpuPer is the CPU used between from and to, per unit of n, as
// "client X µs, server Y µs" (the server's when known).
func cpuPer(from, to cpuSample, n int) (client, server float64, serverOK bool) {
	client = float64(to.self-from.self) / float64(time.Microsecond) / float64(n)
	server = float64(to.server-from.server) / float64(time.Microsecond) / float64(n)
	return client, server, from.serverOK && to.serverOK
}

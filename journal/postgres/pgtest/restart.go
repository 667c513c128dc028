package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// private is the server of this test process's own (see Private).
var private struct {
	once sync.Once
	mu   sync.Mutex
	dir  string
	url  string
	err  error
	out  string
}

// Private returns the URL of a PostgreSQL server of this test process's
// own, for the tests that restart the server ([Restart]): `go test ./...`
// runs the test binaries of several packages at once, all on the server
// DURABLE_POSTGRES_URL names, and taking that one away fails the others'
// tests. The server is started from the local PostgreSQL binaries with
// scripts/postgres in a temporary directory on first use; [StopPrivate],
// which TestMain calls, stops it and removes the directory. Like [URL],
// it skips t when DURABLE_POSTGRES_URL is not set (the Postgres tests are
// not wanted), or fails it when DURABLE_REQUIRE_POSTGRES=1.
func Private(t testing.TB) string {
	t.Helper()
	URL(t)
	private.once.Do(func() {
		dir, err := os.MkdirTemp("", "durable-pgtest-")
		if err != nil {
			private.err = err
			return
		}
		private.mu.Lock()
		private.dir = dir
		private.mu.Unlock()
		out, err := exec.Command(Script(), "start", dir).Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				private.out = string(ee.Stderr)
			}
			private.err = err
			return
		}
		private.url = strings.TrimSpace(string(out))
	})
	if private.err != nil {
		t.Fatalf("pgtest: start a server of this test's own with scripts/postgres: %v\n%s", private.err, private.out)
	}
	return private.url
}

// Restart restarts the server [Private] started (stop, then start on the
// same port).
func Restart(t testing.TB) {
	t.Helper()
	private.mu.Lock()
	dir := private.dir
	private.mu.Unlock()
	if dir == "" {
		t.Fatalf("pgtest: Restart of a server Private did not start")
	}
	out, err := exec.Command(Script(), "restart", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/postgres restart %s: %v\n%s", dir, err, out)
	}
}

// StopPrivate stops the server [Private] started, if it did, and removes
// its directory. Call it from TestMain after m.Run.
func StopPrivate() {
	private.mu.Lock()
	dir := private.dir
	private.dir = ""
	private.mu.Unlock()
	if dir == "" {
		return
	}
	_ = exec.Command(Script(), "stop", dir).Run()
	_ = os.RemoveAll(dir)
}

// Script is the path of scripts/postgres in this repository.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "postgres")
}

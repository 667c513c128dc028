package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Restart restarts the server that scripts/postgres started in
// DURABLE_POSTGRES_DIR (stop, then start on the same port). Without that
// variable it skips t, or fails it when DURABLE_REQUIRE_POSTGRES=1.
func Restart(t testing.TB) {
	t.Helper()
	dir := os.Getenv(EnvDir)
	if dir == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s is not set and %s=1: this test restarts the server, so it needs the directory scripts/postgres started it in", EnvDir, EnvRequire)
		}
		t.Skipf("%s is not set: this test restarts the server; start one with `scripts/postgres start DIR` and set %s=DIR", EnvDir, EnvDir)
	}
	out, err := exec.Command(Script(), "restart", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/postgres restart %s: %v\n%s", dir, err, out)
	}
}

// CanRestart reports whether Restart would restart the server.
func CanRestart() bool { return os.Getenv(EnvDir) != "" }

// Script is the path of scripts/postgres in this repository.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "postgres")
}

//go:build linux

package journal_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/durable-go/durable/journal"
)

// A journal that cannot be opened for writing because of where it is (a
// read-only file system), not because of what it holds, must not be
// reported as ErrCorrupt: that tells an operator to quarantine a healthy
// file. The test mounts a tmpfs in a mount namespace of its own (a child
// process under unshare -m), makes a journal there, remounts it read-only
// and opens it again; it is skipped where that needs privileges the
// machine does not give.
func TestOpenOnReadOnlyFileSystem(t *testing.T) {
	if dir := os.Getenv("JOURNAL_EROFS_DIR"); dir != "" {
		readOnlyChild(t, dir)
		return
	}
	t.Parallel()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1): cannot make a read-only file system")
	}
	dir := t.TempDir()
	cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0], "-test.run=^TestOpenOnReadOnlyFileSystem$", "-test.v")
	cmd.Env = append(os.Environ(), "JOURNAL_EROFS_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 77 {
			t.Skipf("no mount namespace here: %s", out)
		}
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func readOnlyChild(t *testing.T, dir string) {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		os.Stdout.WriteString("mount tmpfs: " + err.Error())
		os.Exit(77)
	}
	path := filepath.Join(dir, "j.db")
	s, err := journal.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	_, err = journal.OpenBolt(path)
	if err == nil || errors.Is(err, journal.ErrCorrupt) || !errors.Is(err, syscall.EROFS) {
		t.Fatalf("OpenBolt on a read-only file system = %v; want an error matching syscall.EROFS, not ErrCorrupt", err)
	}
	// Read-only opening still works there.
	r, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("OpenBolt ReadOnly on a read-only file system: %v", err)
	}
	r.Close()
}

//go:build unix

package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	berrors "go.etcd.io/bbolt/errors"
)

// openError classifies what bolt.Open returned: only damage is ErrCorrupt;
// an operating system's refusal (read-only file system, permissions, a
// busy file, no space) is an I/O error that says so.
func TestOpenErrorClassification(t *testing.T) {
	t.Parallel()
	osErrs := []syscall.Errno{syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.EBUSY, syscall.ETXTBSY, syscall.EIO, syscall.ENOSPC, syscall.EMFILE, syscall.ENOLCK}
	for _, errno := range osErrs {
		for _, err := range []error{errno, &fs.PathError{Op: "open", Path: "/j.db", Err: errno}, fmt.Errorf("flock: %w", errno)} {
			got := openError("/j.db", err, 0)
			if errors.Is(got, ErrCorrupt) || !errors.Is(got, errno) {
				t.Errorf("openError(%v) = %v; want an error matching %v, not ErrCorrupt", err, got, errno)
			}
		}
	}
	for _, err := range []error{berrors.ErrInvalid, berrors.ErrChecksum, errors.New("file size too small")} {
		if got := openError("/j.db", err, 0); !errors.Is(got, ErrCorrupt) {
			t.Errorf("openError(%v) = %v; want ErrCorrupt", err, got)
		}
	}
	if got := openError("/j.db", berrors.ErrTimeout, 0); !errors.Is(got, ErrLocked) {
		t.Errorf("openError(timeout) = %v; want ErrLocked", got)
	}
}

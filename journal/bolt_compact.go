package journal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// compactTxMaxSize bounds the bytes of keys and values copied in one
// transaction of the copy, so a large journal is not copied in memory at
// once.
const compactTxMaxSize = 64 << 20

// Compact writes a compacted copy of the journal at src to dst: every
// bucket, key, value and sequence number, in pages filled to the brim, so
// the space that deleted runs and bbolt's copy-on-write left free is given
// back. Values are copied byte for byte (damaged ones stay damaged; see
// [Bolt.Verify]). dst may be src: the journal is then compacted in place.
//
// src is checked as [OpenBolt] checks it and refused the same way
// ([ErrNotJournal], [ErrCorrupt], [ErrVersion]); it is never modified. It
// is held open read-only, with the shared lock of a read-only OpenBolt,
// until the copy is in place: Compact fails with [ErrLocked] if a process
// has src open for writing, and a process that opens it for writing
// meanwhile waits (and, past its lock timeout, fails). Compact is for
// offline use: a process that was already waiting for the lock when the
// copy replaced src would be left writing to the replaced file.
//
// The copy is written to a temporary file next to dst, fsynced, checked as
// OpenBolt checks a file, and then renamed over dst (replacing it if it
// exists) and the directory fsynced: a crash leaves dst either as it was
// or complete, and at worst a temporary file "<dst>.compact-*" behind.
// The copy keeps src's permission bits.
func Compact(src, dst string) error {
	if err := check(src, defaultLockTimeout); err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return errorf("journal: compact: %w", err)
	}
	srcDB, err := openDB(src, &bolt.Options{ReadOnly: true, Timeout: defaultLockTimeout})
	if err != nil {
		return err
	}
	defer srcDB.Close()

	// In place: replace the file itself, not a symbolic link to it.
	if dfi, err := os.Stat(dst); err == nil && os.SameFile(fi, dfi) {
		if dst, err = filepath.EvalSymlinks(dst); err != nil {
			return errorf("journal: compact: %w", err)
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errorf("journal: compact: %w", err)
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, filepath.Base(dst)+".compact-*")
	if err != nil {
		return errorf("journal: compact: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // nothing left to remove once renamed
	err = tmp.Chmod(fi.Mode().Perm())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errorf("journal: compact: %w", err)
	}
	if err := copyCompact(src, srcDB, name); err != nil {
		return err
	}
	if err := check(name, defaultLockTimeout); err != nil {
		return errorf("journal: compact %s: the copy fails its checks: %w", src, err)
	}
	if err := os.Rename(name, dst); err != nil {
		return errorf("journal: compact: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return errorf("journal: compact: %w", err)
	}
	return nil
}

// copyCompact copies srcDB into a new bbolt file at name, trims it to
// the pages in use and fsyncs it. Each transaction of the copy is written
// without an fsync; one fsync at the end makes the whole file durable
// before it is renamed into place.
func copyCompact(src string, srcDB *bolt.DB, name string) error {
	o := boltOptions(defaultLockTimeout)
	o.NoSync = true
	dstDB, err := bolt.Open(name, fileMode, o)
	if err != nil {
		return errorf("journal: compact: create the copy: %w", err)
	}
	// A damaged page of src can make bbolt panic or fault while it walks
	// src: guard turns that into ErrCorrupt.
	err = guard(src, func() error { return bolt.Compact(dstDB, srcDB, compactTxMaxSize) })
	var used int64
	if err == nil {
		err = dstDB.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	}
	if cerr := dstDB.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = trimAndSync(name, used)
	}
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return err
		}
		return errorf("journal: compact %s: %w", src, err)
	}
	return nil
}

// trimAndSync cuts the file at name to used bytes and fsyncs it. bbolt
// sizes a small file to its memory map (a power of two) and a large one in
// steps of 16 MiB; the pages past its high-water mark hold nothing, and
// bbolt grows the file again when it needs them.
func trimAndSync(name string, used int64) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && used > 0 && fi.Size() > used {
		err = f.Truncate(used)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

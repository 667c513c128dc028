package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltOptions configures [OpenBolt]. The zero value (or nil) means the
// documented defaults.
type BoltOptions struct {
	// LockTimeout bounds how long OpenBolt waits for a file that another
	// process or engine has open before it returns [ErrLocked].
	// Defaults to 1 second.
	LockTimeout time.Duration
	// MaxBatch is the most commits coalesced into one bbolt transaction.
	// Defaults to 1024.
	MaxBatch int
	// ReadOnly opens the file for reading only, sharing it with other
	// readers (but not with a writer). Writes return [ErrInvalid].
	// Defaults to false.
	ReadOnly bool
}

const (
	defaultLockTimeout = time.Second
	defaultMaxBatch    = 1024
	fileMode           = 0o600
)

// OpenBolt opens the journal at path, creating it (mode 0600) if it does
// not exist. A new file is created under a temporary name and linked into
// place, so a crash while creating leaves no half-made journal at path.
//
// An existing file is checked before it is used, and never modified when a
// check fails: it returns [ErrNotJournal] for an empty file, random bytes
// or a bbolt file of another program, [ErrCorrupt] for a damaged or
// truncated journal, [ErrVersion] for a newer format, and [ErrLocked] when
// another process or engine holds the file for longer than
// LockTimeout. Options are optional: OpenBolt(path) uses the defaults, and
// of several non-nil *BoltOptions the last is used.
func OpenBolt(path string, opts ...*BoltOptions) (*Bolt, error) {
	var o BoltOptions
	for _, opt := range opts {
		if opt != nil {
			o = *opt
		}
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = defaultLockTimeout
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !o.ReadOnly {
		if err := create(path); err != nil {
			return nil, errorf("journal: create %s: %w", path, err)
		}
	}
	if err := check(path, o.LockTimeout); err != nil {
		return nil, err
	}
	if o.ReadOnly {
		db, err := openDB(path, &bolt.Options{ReadOnly: true, Timeout: o.LockTimeout})
		if err != nil {
			return nil, err
		}
		return &Bolt{db: db, path: path, opts: o}, nil
	}
	db, err := openDB(path, boltOptions(o.LockTimeout))
	if err != nil {
		return nil, err
	}
	s := &Bolt{db: db, path: path, opts: o}
	s.cq.arrived = make(chan struct{}, 1)
	// A descriptor of the file, for the check after each commit that it
	// is still linked (see checkLinked); where it cannot be had, no check.
	if f, err := os.Open(path); err == nil {
		s.linkFile = f
	}
	return s, nil
}

func boltOptions(timeout time.Duration) *bolt.Options {
	return &bolt.Options{
		Timeout:      timeout,
		FreelistType: bolt.FreelistMapType,
	}
}

// create makes a new journal at path: a temporary file is initialized,
// fsynced, and hard-linked to path, which fails if path appeared meanwhile
// (then the other creator's file is used).
func create(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Close(); err != nil {
		return err
	}
	db, err := bolt.Open(name, fileMode, boltOptions(defaultLockTimeout))
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyFormat, formatMarker); err != nil {
			return err
		}
		return meta.Put(keyVersion, []byte{fileFormatVer})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(name, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// check validates an existing file without writing to it: a sniff of the
// first bytes, then a read-only bbolt open that checks the size the meta
// page claims against the file's, and the format marker.
func check(path string, timeout time.Duration) error {
	fi, err := os.Stat(path)
	if err != nil {
		return errorf("journal: open: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return errorf("journal: %s is not a regular file: %w", path, ErrNotJournal)
	}
	if fi.Size() == 0 {
		return errorf("journal: %s is empty (0 bytes): %w", path, ErrNotJournal)
	}
	looksBolt, err := sniff(path, fi.Size())
	if err != nil {
		return errorf("journal: open: %w", err)
	}
	if !looksBolt {
		return errorf("journal: %s is not a bbolt file: %w", path, ErrNotJournal)
	}
	db, err := openDB(path, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			if need := tx.Size(); need > fi.Size() {
				return &CorruptError{Path: path, What: "file", Reason: fmt.Sprintf("truncated: %d bytes, the journal needs %d", fi.Size(), need)}
			}
			meta := tx.Bucket(bucketMeta)
			if meta == nil || string(meta.Get(keyFormat)) != string(formatMarker) {
				kind := "an empty bbolt file"
				if k, _ := tx.Cursor().First(); k != nil {
					kind = "a bbolt file of another program"
				}
				return errorf("journal: %s is %s: %w", path, kind, ErrNotJournal)
			}
			if v := meta.Get(keyVersion); len(v) != 1 || v[0] != fileFormatVer {
				return errorf("journal: %s has format version %v, this code reads %d: %w", path, v, fileFormatVer, ErrVersion)
			}
			for _, b := range allBuckets {
				if tx.Bucket(b) == nil {
					return &CorruptError{Path: path, What: "file", Reason: fmt.Sprintf("bucket %q is missing", b)}
				}
			}
			return nil
		})
	})
}

// sniff reports whether the bbolt magic number appears where a meta page
// would hold it: page 0, or page 1 at any page size bbolt supports.
func sniff(path string, size int64) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	const magicOff = 16 // after the page header
	var buf [4]byte
	for _, off := range append([]int64{0}, pageOffsets()...) {
		if off+magicOff+4 > size {
			break
		}
		if _, err := f.ReadAt(buf[:], off+magicOff); err != nil && err != io.EOF {
			return false, err
		}
		if binary.LittleEndian.Uint32(buf[:]) == 0xED0CDAED || binary.BigEndian.Uint32(buf[:]) == 0xED0CDAED {
			return true, nil
		}
	}
	return false, nil
}

func pageOffsets() []int64 {
	var out []int64
	for i := 0; i <= 14; i++ {
		out = append(out, 1024<<i)
	}
	return out
}

// openDB opens bbolt with its panics and faults contained and its errors
// mapped to this package's.
func openDB(path string, o *bolt.Options) (db *bolt.DB, err error) {
	// bolt.Open closes its file when it returns an error, but not when it
	// panics (a damaged freelist page, say): keep the file to unlock and
	// close it then, or its lock would stay held until the process exits.
	// (The abandoned memory map is not reachable; it leaks.)
	var file *os.File
	opts := *o
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, fileMode, &opts)
		return err
	})
	if err != nil && file != nil {
		unlockFile(file)
		file.Close() // a second Close of an *os.File is harmless
	}
	if err != nil {
		return nil, openError(path, err, o.Timeout)
	}
	return db, nil
}

// openError classifies what bolt.Open returned for path. Only damage is
// ErrCorrupt: an error of the operating system (a read-only file system,
// a permission, a busy file, no space, too many open files) says that
// the file could not be opened, not that it is bad, and an operator must
// not quarantine a healthy journal for it. Such an error is wrapped, so
// errors.Is(err, syscall.EROFS) and fs.ErrPermission work.
func openError(path string, err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return errorf("journal: %s: no lock within %v: %w", path, timeout, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum):
		return &CorruptError{Path: path, What: "file", Reason: "both meta pages are damaged: " + err.Error()}
	case errors.Is(err, berrors.ErrVersionMismatch):
		return errorf("journal: %s: bbolt %v: %w", path, err, ErrVersion)
	}
	var ce *CorruptError
	if errors.As(err, &ce) || errors.Is(err, ErrNotJournal) {
		return err
	}
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &errno) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
		return errorf("journal: open %s: %w", path, err)
	}
	return &CorruptError{Path: path, What: "file", Reason: err.Error()}
}

// guard runs fn with bbolt panics and memory faults (a damaged file can
// point bbolt outside its mapping) turned into ErrCorrupt.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = &CorruptError{Path: path, What: "file", Reason: fmt.Sprintf("bbolt failed: %v", p)}
		}
	}()
	return fn()
}

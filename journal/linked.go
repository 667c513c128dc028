package journal

// checkLinked reports ErrDeleted once the journal file has no link left
// in the file system: someone deleted it, or its directory, under the
// running store. bbolt keeps writing to the unlinked file, and everything
// committed since vanishes at Close; better to fail the commits, loudly.
// It costs one fstat (about a microsecond) per write transaction, next to
// the transaction's fsync: BenchmarkBoltCommitSequential did not move
// beyond its noise (260-500 µs a commit on a loaded 2-core machine).
func (s *Bolt) checkLinked() error {
	if s.linkFile == nil {
		return nil
	}
	if n, ok := linkCount(s.linkFile); ok && n == 0 {
		return errorf("journal: %s was deleted while open: what was committed since is lost with it: %w", s.path, ErrDeleted)
	}
	return nil
}

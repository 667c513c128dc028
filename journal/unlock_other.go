//go:build windows || plan9 || solaris || aix || android

package journal

import "os"

// unlockFile does nothing here: bbolt's lock on these systems goes with the
// file handle (or the process's fcntl locks), which closing f releases.
func unlockFile(*os.File) {}

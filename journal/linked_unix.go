//go:build unix

package journal

import (
	"os"
	"syscall"
)

// linkCount returns the number of links of f's file (fstat's st_nlink).
func linkCount(f *os.File) (uint64, bool) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, false
	}
	return uint64(st.Nlink), true
}

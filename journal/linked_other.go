//go:build !unix

package journal

import "os"

// linkCount is not known here (Windows does not delete an open file).
func linkCount(*os.File) (uint64, bool) { return 0, false }

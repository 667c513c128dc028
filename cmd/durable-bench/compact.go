package main

import (
	"fmt"
	"os"

	"github.com/durable-go/durable/journal"
)

// compactRow measures journal.Compact on the journal at path (of before
// bytes, holding steps live steps): the size of a compacted copy, which
// gives back the pages that deletions and bbolt's copy-on-write left free.
func compactRow(path string, before int64, steps int) (row, error) {
	dst := path + ".compact"
	defer os.Remove(dst)
	if err := journal.Compact(path, dst); err != nil {
		return row{}, fmt.Errorf("journal.Compact: %w", err)
	}
	after := fileSize(dst)
	return row{
		figure:   "P7",
		what:     "journal: file after journal.Compact (a copy)",
		measured: fmt.Sprintf("%s (%.1f B/step)", mb(float64(after)), float64(after)/float64(steps)),
		baseline: mb(float64(before)) + " before",
		ratio:    ratio(float64(after), float64(before)),
	}, nil
}

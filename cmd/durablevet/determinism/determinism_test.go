package determinism_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/durable-go/durable/cmd/durablevet/determinism"
)

// TestAnalyzer runs the analyzer on testdata/src/a: one case per rule
// (each line with a want comment must be reported, with the durable
// alternative in the message) and step functions that do everything the
// rules forbid, with no report.
func TestAnalyzer(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), determinism.Analyzer, "a")
}

package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// verdict says whether a row meets its target.
type verdict uint8

const (
	verdictInfo   verdict = iota // no target: context for another row
	verdictMet                   // meets its target
	verdictNotMet                // misses its target
	verdictError                 // the figure failed
)

func (v verdict) String() string {
	switch v {
	case verdictMet:
		return "met"
	case verdictNotMet:
		return "NOT MET"
	case verdictError:
		return "ERROR"
	}
	return "-"
}

// atLeast is the verdict of a figure whose target is a floor.
func atLeast(v, target float64) verdict {
	if v >= target {
		return verdictMet
	}
	return verdictNotMet
}

// atMost is the verdict of a figure whose target is a ceiling.
func atMost(v, target float64) verdict {
	if v <= target {
		return verdictMet
	}
	return verdictNotMet
}

// row is one line of the table. Empty cells print as "-".
type row struct {
	figure   string
	what     string
	measured string
	baseline string
	ratio    string
	target   string
	verdict  verdict
}

// result is what a figure measured: table rows, and notes that explain
// them (settings, sizes, spreads).
type result struct {
	rows    []row
	notes   []string
	elapsed time.Duration
}

func (r *result) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func printReport(w io.Writer, cfg config, m machine, results []*result, total time.Duration) {
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "durable-bench: %s run, medians of %d rep(s), %v in all\n\n", mode, cfg.reps, total.Round(time.Second))
	m.print(w)
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\twhat\tmeasured\tbaseline (same run)\tratio\ttarget\tresult")
	fmt.Fprintln(tw, "------\t----\t--------\t-------------------\t-----\t------\t------")
	met, all := 0, 0
	for _, r := range results {
		for _, x := range r.rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.figure, cell(x.what), cell(x.measured), cell(x.baseline), cell(x.ratio), cell(x.target), x.verdict)
			if x.verdict == verdictMet || x.verdict == verdictNotMet || x.verdict == verdictError {
				all++
			}
			if x.verdict == verdictMet {
				met++
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio: engine / baseline; where both sides are repeated (P1, P2, P4, P5), the median of the per-repetition ratios.")
	fmt.Fprintf(w, "targets met: %d of %d\n", met, all)

	fmt.Fprintln(w, "\nnotes:")
	for _, r := range results {
		if len(r.rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s (%v):\n", r.rows[0].figure, r.elapsed.Round(100*time.Millisecond))
		for _, n := range r.notes {
			fmt.Fprintf(w, "    - %s\n", n)
		}
	}
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// num formats a measurement: thousands grouped, a few significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return group(int64(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// group formats n with a comma every three digits.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(ours, base float64) string {
	if base == 0 {
		return ""
	}
	return fmtRatio(ours / base)
}

func fmtRatio(r float64) string { return fmt.Sprintf("%.2fx", r) }

// mb formats a byte count in MB (10^6 bytes).
func mb(n float64) string { return num(n/1e6) + " MB" }

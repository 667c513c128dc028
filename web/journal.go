package web

import (
	"net/http"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// RunJournal is the answer of GET api/runs/{id}/journal: the run as the
// journal stores it, its records (current epoch) and the ids of its child
// runs, in the journal package's types (payloads in base64). `durable
// export -addr` reads it to copy runs of a running application into a
// journal file for durabletest.Replay.
type RunJournal struct {
	Run      journal.Run      `json:"run"`
	Records  []journal.Record `json:"records"`
	Children []string         `json:"children"`
}

// journal serves GET api/runs/{id}/journal.
func (s *server) journal(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	run, recs, err := s.e.RunJournal(r.Context(), id)
	if err != nil {
		engineError(w, err)
		return
	}
	out := RunJournal{Run: run, Records: recs, Children: []string{}}
	if out.Records == nil {
		out.Records = []journal.Record{}
	}
	for after := ""; ; {
		page, err := s.e.List(r.Context(), durable.ListOptions{Parent: id, After: after, Limit: 1000})
		if err != nil {
			engineError(w, err)
			return
		}
		for _, c := range page.Runs {
			out.Children = append(out.Children, c.ID)
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	writeJSON(w, http.StatusOK, out)
}

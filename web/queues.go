package web

import (
	"math"
	"net/http"
	"strconv"

	"github.com/durable-go/durable"
)

// Queues: GET api/queues lists the engine's queues (Config.Queues) with
// their limits, their running and waiting runs, and the first waiting
// runs in admission order; the dashboard shows them at queues.

// Queue is a queue as the API returns it.
type Queue struct {
	Name              string      `json:"name"`
	Concurrency       int         `json:"concurrency"`        // per engine; 0: no limit
	GlobalConcurrency int         `json:"global_concurrency"` // over every engine of a shared store; 0: no limit
	Rate              float64     `json:"rate"`               // admissions per second per engine; 0: no limit
	Burst             int         `json:"burst,omitempty"`
	Running           int         `json:"running"` // admitted and unfinished, in every engine
	Local             int         `json:"local"`   // of those, held by this engine
	Waiting           int         `json:"waiting"`
	Next              []QueuedRun `json:"next"` // the first waiting runs, next to be admitted first
}

// QueuedRun is a run waiting in a queue.
type QueuedRun struct {
	ID        string `json:"id"`
	Workflow  string `json:"workflow"`
	Priority  int    `json:"priority"`
	Position  int    `json:"position"` // 1: the next to be admitted
	CreatedAt string `json:"created_at"`
}

// QueueOf converts q into its API form. cmd/durable prints it for -json.
func QueueOf(q durable.QueueInfo) Queue {
	out := Queue{Name: q.Name, Concurrency: q.Concurrency, GlobalConcurrency: q.GlobalConcurrency, Burst: q.Burst,
		Running: q.Running, Local: q.Local, Waiting: q.Waiting, Next: []QueuedRun{}}
	if r := float64(q.Rate); r > 0 && !math.IsInf(r, 0) {
		out.Rate = r
	}
	for _, r := range q.Next {
		out.Next = append(out.Next, QueuedRun{ID: r.ID, Workflow: r.Workflow, Priority: r.Priority, Position: r.Position, CreatedAt: stamp(r.CreatedAt)})
	}
	return out
}

// defaultQueueNext is how many waiting runs per queue api/queues and the
// page list unless asked (?next=N, at most maxQueueNext).
const (
	defaultQueueNext = 20
	maxQueueNext     = 1000
)

func (s *server) queueRoutes() {
	s.mux.HandleFunc("GET /api/queues", s.listQueues)
	s.mux.HandleFunc("/api/queues", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; use GET")
	})
	s.mux.HandleFunc("GET /queues", s.queuesPage)
}

// queues reads the engine's queues with up to ?next= waiting runs each.
func (s *server) queues(r *http.Request) ([]Queue, error) {
	next := defaultQueueNext
	if v := r.URL.Query().Get("next"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxQueueNext {
			return nil, badRequest("next: want a number from 0 to " + strconv.Itoa(maxQueueNext))
		}
		next = n
	}
	qs, err := s.e.Queues(r.Context(), next)
	if err != nil {
		return nil, err
	}
	out := []Queue{}
	for _, q := range qs {
		out = append(out, QueueOf(q))
	}
	return out, nil
}

// badRequest is a bad query parameter.
type badRequest string

func (e badRequest) Error() string { return string(e) }

func (s *server) listQueues(w http.ResponseWriter, r *http.Request) {
	qs, err := s.queues(r)
	if br, ok := err.(badRequest); ok {
		writeError(w, http.StatusBadRequest, "bad_request", string(br))
		return
	}
	if err != nil {
		engineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": qs})
}

func (s *server) queuesPage(w http.ResponseWriter, r *http.Request) {
	p := page{Base: base(r), Title: "Queues"}
	qs, err := s.queues(r)
	status := http.StatusOK
	if err != nil {
		p.Error = err.Error()
		if _, ok := err.(badRequest); ok {
			status = http.StatusBadRequest
		}
	}
	p.Queues = qs
	s.render(w, status, "queues", p)
}

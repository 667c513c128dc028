package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/durable-go/durable"
)

// Options configures [Handler]. The zero value, or a nil *Options, means
// the documented defaults: everything allowed, same-origin requests only
// for changes.
type Options struct {
	// ReadOnly refuses cancel, resume and send (403 "forbidden") and
	// hides their buttons in the dashboard. Defaults to false.
	ReadOnly bool

	// Authorize, if not nil, is called on every request before anything
	// else; an error refuses the request with 403 "forbidden" and the
	// error's message. Use it to check a session, a token or a client
	// certificate. Defaults to allowing every request.
	Authorize func(r *http.Request) error

	// TrustedOrigins are origins (such as "https://admin.example.com")
	// allowed to make state-changing cross-origin requests; see
	// http.CrossOriginProtection. Defaults to none.
	TrustedOrigins []string

	// MaxBodyBytes bounds the body of a send request; a larger body is
	// refused with 413. The engine's Config.MaxPayloadBytes bounds the
	// message itself (also 413). Defaults to 8 MiB.
	MaxBodyBytes int64

	// PollInterval is how often the event stream looks for changes.
	// Defaults to 1 second.
	PollInterval time.Duration

	// Now is the clock used to say whether a retry is due; it only
	// shapes what pages say. Defaults to time.Now.
	Now func() time.Time
}

const (
	defaultMaxBody = 8 << 20
	defaultPoll    = time.Second
)

// server is one Handler.
type server struct {
	e    *durable.Engine
	opts Options
	mux  *http.ServeMux

	rateMu sync.Mutex
	last   rateSample // the previous stats reading, for rates
	rates  rates
}

// Handler returns the admin handler of engine e: the JSON API under api/
// and the dashboard at the root of wherever it is mounted. Mount it with
// http.StripPrefix:
//
//	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, nil)))
//
// opts may be nil. Every request goes through Options.Authorize; requests
// that change state (POST) go through cross-origin protection
// (http.CrossOriginProtection) and are refused in Options.ReadOnly mode.
func Handler(e *durable.Engine, opts *Options) http.Handler {
	s := &server{e: e, mux: http.NewServeMux()}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxBodyBytes <= 0 {
		s.opts.MaxBodyBytes = defaultMaxBody
	}
	if s.opts.PollInterval <= 0 {
		s.opts.PollInterval = defaultPoll
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	s.routes()

	cop := http.NewCrossOriginProtection()
	for _, o := range s.opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			// An invalid origin trusts nothing: say so on every request
			// that would have needed it rather than panicking.
			bad := err
			cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("cross-origin request refused (and Options.TrustedOrigins is invalid: %v)", bad))
			}))
		}
	}
	if len(s.opts.TrustedOrigins) == 0 {
		cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusForbidden, "forbidden", "cross-origin request refused")
		}))
	}
	inner := cop.Handler(s.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Authorize != nil {
			if err := s.opts.Authorize(r); err != nil {
				writeError(w, http.StatusForbidden, "forbidden", err.Error())
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// routes registers the API and the dashboard. A path registered without
// a method answers the methods it does not serve with a JSON 405.
func (s *server) routes() {
	m := s.mux
	api := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "/api/runs", s.listRuns},
		{"GET", "/api/runs/{id}", s.getRun},
		{"GET", "/api/runs/{id}/journal", s.journal},
		{"POST", "/api/runs/{id}/cancel", s.change(s.cancel)},
		{"POST", "/api/runs/{id}/resume", s.change(s.resume)},
		{"POST", "/api/runs/{id}/send/{channel}", s.change(s.send)},
		{"GET", "/api/stats", s.stats},
		{"GET", "/api/events", s.events},
	}
	for _, a := range api {
		m.HandleFunc(a.method+" "+a.path, a.h)
		allow := a.method
		if allow == "GET" {
			allow = "GET, HEAD"
		}
		m.HandleFunc(a.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; use "+a.method)
		})
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	})
	s.queueRoutes() // queues.go
	s.dashboardRoutes()
	s.scheduleRoutes() // schedules.go
}

// change wraps a state-changing endpoint: refused in read-only mode.
func (s *server) change(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ReadOnly {
			writeError(w, http.StatusForbidden, "forbidden", "this dashboard is read-only")
			return
		}
		h(w, r)
	}
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeJSON writes v as the JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: "web: encode response: " + err.Error(), Code: "internal"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes an error response.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

// engineError writes the response for an error of the engine, with the
// status its kind calls for.
func engineError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, durable.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, durable.ErrFinished), errors.Is(err, durable.ErrNotRegistered), errors.Is(err, durable.ErrWorkflowMismatch):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, durable.ErrPayloadTooLarge):
		status, code = http.StatusRequestEntityTooLarge, "payload_too_large"
	case errors.Is(err, durable.ErrPayload):
		status, code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, durable.ErrClosed):
		status, code = http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, "unavailable"
	}
	writeError(w, status, code, err.Error())
}

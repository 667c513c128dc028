package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The simulated API: an HTTP server in this process that stores records
// and misbehaves on cue. Its database is a file (one idempotency key per
// line), so what it stored survives the crash of the process like a real
// remote system would.
//
//	PUT /records/{id}   Idempotency-Key: <key>   body: the record as JSON
//
// answers 201 Created, or 200 OK if it already stored that key.

// trouble scripts the API's bad moments: for record id, what it does to
// the client's 1st, 2nd, ... attempt (the client says which attempt it
// makes in a header, so that every run of the demo shows each case).
// Attempts beyond the list succeed.
var trouble = map[int][]string{
	4:  {"503"},        // overloaded: retried after the policy's backoff
	8:  {"429"},        // rate limited, Retry-After: 3 (the demo crashes in this wait)
	13: {"hang"},       // stores the record, then never answers: the client times out
	17: {"503", "503"}, // overloaded twice: exponential backoff
}

// retryAfterSeconds is the Retry-After of the scripted 429.
const retryAfterSeconds = 3

type flakyAPI struct {
	*httptest.Server

	mu     sync.Mutex
	db     *os.File
	stored map[string]bool // idempotency keys
}

// startAPI starts the API on an ephemeral port, with its database at
// dbPath (created if needed).
func startAPI(dbPath string) (*flakyAPI, error) {
	keys, err := readDB(dbPath)
	if err != nil {
		return nil, err
	}
	db, err := os.OpenFile(dbPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	a := &flakyAPI{db: db, stored: map[string]bool{}}
	for _, k := range keys {
		a.stored[k] = true
	}
	a.Server = httptest.NewServer(http.HandlerFunc(a.put))
	return a, nil
}

// Close stops the server and closes its database.
func (a *flakyAPI) Close() {
	a.Server.Close()
	a.db.Close()
}

func (a *flakyAPI) put(w http.ResponseWriter, r *http.Request) {
	id, err1 := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/records/"))
	attempt, err2 := strconv.Atoi(r.Header.Get("X-Demo-Attempt"))
	key := r.Header.Get("Idempotency-Key")
	// Reading the body to its end also lets the server notice a client
	// that gives up (r.Context() is canceled then).
	var rec struct {
		ID    int    `json:"id"`
		Email string `json:"email"`
	}
	err3 := json.NewDecoder(r.Body).Decode(&rec)
	_, _ = io.Copy(io.Discard, r.Body)
	if r.Method != http.MethodPut || err1 != nil || err2 != nil || err3 != nil || key == "" || rec.ID != id || rec.Email == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var act string
	if script := trouble[id]; attempt <= len(script) {
		act = script[attempt-1]
	}
	switch act {
	case "503":
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	case "429":
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}

	a.mu.Lock()
	dup := a.stored[key]
	if !dup {
		if err := a.store(key); err != nil {
			a.mu.Unlock()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	a.mu.Unlock()

	switch {
	case act == "hang":
		<-r.Context().Done() // stored, but the answer never comes
	case dup:
		fmt.Fprintf(w, "already stored under this key\n")
	default:
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "stored\n")
	}
}

// store writes key to the database, durably. a.mu is held.
func (a *flakyAPI) store(key string) error {
	if _, err := fmt.Fprintln(a.db, key); err != nil {
		return err
	}
	if err := a.db.Sync(); err != nil {
		return err
	}
	a.stored[key] = true
	return nil
}

// readDB returns the keys in the database at path, in the order stored
// (repeats included, if the API ever stored one twice).
func readDB(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			keys = append(keys, k)
		}
	}
	return keys, sc.Err()
}

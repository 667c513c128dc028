// Command dashboard serves the durable dashboard of a running
// application:
//
//	go run ./example/dashboard [-addr 127.0.0.1:8080] [-journal FILE]
//
// It starts an application whose journal holds runs in every state:
// completed orders; a checkout that failed because its child's card
// charge was declined; a signup parked by a bad deploy that renamed a
// step (the fix is deployed: press Resume); an approval waiting for a
// message (send {"approved": true, "by": "you"} on "decision"); a
// reminder sleeping for six hours and one canceled; a CRM sync retrying
// every 45 seconds; an export whose step is executing; and a fan-out
// waiting for one of its three children (send true on "picked-up" to
// fanout-42/2).
//
// The application mounts the handler of package web, the way any
// application would:
//
//	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, nil)))
//
// and prints the dashboard's URL. Stop it with Ctrl-C; run it again with
// the same -journal and every run resumes where it was.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/durable-go/durable/internal/dashdemo"
	"github.com/durable-go/durable/web"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve the dashboard on")
	path := flag.String("journal", "", "journal file (default: a new file in a temporary directory)")
	readOnly := flag.Bool("read-only", false, "serve the dashboard read-only")
	flag.Parse()
	log.SetFlags(0)

	if *path == "" {
		dir, err := os.MkdirTemp("", "durable-dashboard-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		*path = filepath.Join(dir, "app.db")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	fmt.Printf("starting the application (journal %s)...\n", *path)
	e, err := dashdemo.Open(ctx, *path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, &web.Options{ReadOnly: *readOnly})))
	mux.Handle("/{$}", http.RedirectHandler("/durable/", http.StatusFound))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("dashboard: http://%s/durable/\n(Ctrl-C to stop)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

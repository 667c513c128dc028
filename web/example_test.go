package web_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/web"
)

// An application mounts the handler in its own server; an operator then
// sees and steers its runs through the dashboard or the JSON API.
func ExampleHandler() {
	greet := durable.Define("greet", func(ctx durable.Context, _ int) (string, error) {
		name, err := durable.Receive[string](ctx, "name")
		return "hello " + name, err
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{greet}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, &web.Options{
		Authorize: func(r *http.Request) error { return nil }, // check the operator here
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	h, err := durable.Start(context.Background(), e, greet, "g-1", 0)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/durable/api/runs/g-1/send/name", "application/json", strings.NewReader(`"ana"`))
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(body))
	fmt.Println(h.Result(context.Background()))
	// Output:
	// 200 OK {"ok":true}
	// hello ana <nil>
}

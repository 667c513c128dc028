package durableotel_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	durableotel "github.com/durable-go/durable/otel"
	"github.com/durable-go/durable/otel/internal/spantree"
)

func ExampleNew() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	obs, err := durableotel.New(&durableotel.Options{TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	greet := durable.Define("greet", func(ctx durable.Context, name string) (string, error) {
		return durable.Step(ctx, "compose", func(ctx context.Context) (string, error) {
			return "hello " + name, nil // ctx carries the step's span
		})
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{greet}, Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx, request := tp.Tracer("app").Start(context.Background(), "GET /greet")
	out, err := durable.Run(ctx, e, greet, "greet-1", "bob")
	request.End()
	fmt.Println(out, err)

	var b bytes.Buffer
	spantree.Print(&b, spantree.FromSDK(spans.Ended()), false)
	_, tree, _ := strings.Cut(b.String(), "\n") // after the trace id
	fmt.Print(tree)
	// Output:
	// hello bob <nil>
	//   GET /greet
	//     durable.run greet run=greet-1
	//       durable.step compose run=greet-1 attempt=1
}

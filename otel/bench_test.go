package durableotel_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	durableotel "github.com/durable-go/durable/otel"
)

var benchFlow = durable.Define("bench-otel", func(ctx durable.Context, n int) (int, error) {
	sum := 0
	for i := range n {
		v, err := durable.Step(ctx, "s", func(context.Context) (int, error) { return i, nil })
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
})

// BenchmarkStepOTel: sequential steps on the memory store without an
// observer, with durable.BaseObserver, and with this package's Observer on
// the real SDK (every span sampled and ended, none exported; metrics
// aggregated by a manual reader): the cost per step of tracing.
func BenchmarkStepOTel(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	obs, err := durableotel.New(&durableotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		obs  durable.Observer
	}{{"none", nil}, {"base", durable.BaseObserver{}}, {"otel", obs}} {
		b.Run(c.name, func(b *testing.B) {
			e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{benchFlow}, Observer: c.obs, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			b.ReportAllocs()
			b.ResetTimer()
			const perRun = 1000
			for i, n := 0, b.N; n > 0; i++ {
				k := min(n, perRun)
				if _, err := durable.Run(context.Background(), e, benchFlow, fmt.Sprint("r", i), k); err != nil {
					b.Fatal(err)
				}
				n -= k
			}
		})
	}
}

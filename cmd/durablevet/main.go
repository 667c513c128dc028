// Command durablevet reports code in durable workflow functions that
// breaks replay (clock reads, randomness, I/O, goroutines, channels,
// locks, map iteration that orders durable calls, writes to package
// variables), each with the durable alternative. See package
// determinism for the rules.
//
// Run it from this module:
//
//	go run ./cmd/durablevet ./...            (in cmd/durablevet: go run . ./...)
//
// or through go vet, on any module:
//
//	go install github.com/durable-go/durable/cmd/durablevet@latest
//	go vet -vettool=$(which durablevet) ./...
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/durable-go/durable/cmd/durablevet/determinism"
)

func main() { singlechecker.Main(determinism.Analyzer) }

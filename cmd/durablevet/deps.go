package main

// The durable package is a dependency of this module (replaced by the
// repository root) so that `go run . ../../example/...` can load the
// repository's packages, and so that the module records which durable it
// was built with. The analyzer itself does not import it.
import _ "github.com/durable-go/durable"

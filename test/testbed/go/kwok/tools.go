//go:build tools

// Keeps kwok's command in this module's graph so `go build sigs.k8s.io/kwok/cmd/kwok` resolves from go.sum.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"

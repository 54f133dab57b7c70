//go:build tools

// Keeps the upstream commands in this module's graph, so build.sh builds them unchanged:
// go build k8s.io/kubernetes/cmd/kube-apiserver (and scheduler, controller-manager).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)

// Command kube-controller-manager is upstream's kube-controller-manager, built from the
// k8s.io/kubernetes Go module; the test control plane needs it for garbage collection,
// namespace deletion, service-account tokens and the HPA controller.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}

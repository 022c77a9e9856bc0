// Command kube-scheduler is upstream's kube-scheduler, built from the same k8s.io/kubernetes Go module
// as the control plane; without it no pod of the chart would ever be bound to the development node.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}

// Command kubelet is upstream's kubelet, built from the same k8s.io/kubernetes Go module as the control
// plane so that `rental-controlplane up --node` runs the chart's pods on this machine.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}

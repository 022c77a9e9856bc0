// Command kube-apiserver is upstream's kube-apiserver, built from the k8s.io/kubernetes Go module
// because no release binaries can be downloaded where this project is developed and tested.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}

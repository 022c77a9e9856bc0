// Command kube-proxy is upstream's kube-proxy (iptables mode on the development node), built from the
// same k8s.io/kubernetes Go module as the control plane.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}

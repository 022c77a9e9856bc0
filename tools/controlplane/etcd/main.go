// Command etcd is upstream's etcd server, wrapped in a module of our own because
// `go install` refuses go.etcd.io/etcd/server/v3 (its go.mod has replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

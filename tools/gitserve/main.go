// Command gitserve serves the bare git repositories in a directory over
// HTTP on loopback, so Fornax can be tried without a forge:
//
//	go run ./tools/gitserve -root ./repos -addr 127.0.0.1:7097
//
// Repositories are at http://ADDR/git/<name>.git; with -user and
// -password set, clients must send them as HTTP basic auth.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/fornax-dev/fornax/internal/githttp"
)

func main() {
	root := flag.String("root", "repos", "directory holding bare repositories (<name>.git)")
	addr := flag.String("addr", "127.0.0.1:7097", "loopback address to listen on")
	user := flag.String("user", "", "basic auth user (empty: no auth)")
	pass := flag.String("password", os.Getenv("GITSERVE_PASSWORD"), "basic auth password (or GITSERVE_PASSWORD)")
	flag.Parse()
	if _, err := githttp.Backend(); err != nil {
		log.Fatal(err)
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		log.Fatal(err)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("-addr %q: gitserve only listens on loopback addresses such as 127.0.0.1:7097", *addr)
	}
	home, err := os.MkdirTemp("", "gitserve-home-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	fmt.Printf("serving %s/<name>.git at http://%s/git/<name>.git\n", abs, *addr)
	log.Fatal(http.ListenAndServe(*addr, &githttp.Server{Root: abs, Username: *user, Password: *pass, Home: home, Stderr: os.Stderr}))
}

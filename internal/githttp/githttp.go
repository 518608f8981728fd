// Package githttp serves bare git repositories over git's smart HTTP
// protocol by running git http-backend behind net/http/cgi. Tests use it
// as a real forge, and `make serve-git` uses it for trying Fornax out. It
// is not meant to face the internet: it has basic auth and nothing more.
package githttp

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Server serves the bare repositories under Root at /git/<name>.git.
type Server struct {
	Root string
	// Username and Password, when Username is set, are required as HTTP
	// basic auth on every request.
	Username, Password string
	// Home is the HOME of git http-backend; it must hold no user config.
	Home string
	// Observe, when set, is told about every request and whether its
	// credentials were right.
	Observe func(r *http.Request, user string, authorized bool)
	// Stderr receives git http-backend's complaints; nil discards them.
	Stderr io.Writer

	backend string
}

// Backend finds git http-backend in git's exec path.
func Backend() (string, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("git is not installed")
	}
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return "", fmt.Errorf("git-http-backend is not installed (%s)", backend)
	}
	return backend, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	ok := s.Username == "" ||
		subtle.ConstantTimeCompare([]byte(user), []byte(s.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.Password)) == 1
	if s.Observe != nil {
		s.Observe(r, user, ok)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/git/") {
		http.NotFound(w, r)
		return
	}
	if s.backend == "" {
		b, err := Backend()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.backend = b
	}
	stderr := s.Stderr
	if stderr == nil {
		stderr = io.Discard // "Not a git repository" and the like: the client gets a 404
	}
	if user == "" {
		user = "anonymous"
	}
	h := &cgi.Handler{
		Path:   s.backend,
		Root:   "/git",
		Dir:    s.Root,
		Stderr: stderr,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user, // lets authenticated users push
			"HOME=" + s.Home,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
	}
	h.ServeHTTP(w, r)
}

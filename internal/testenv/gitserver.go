package testenv

import (
	"bytes"
	"encoding/base64"
	"github.com/fornax-dev/fornax/internal/githttp"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// GitServer serves bare repositories under Root over git's smart HTTP
// protocol (git http-backend behind net/http/cgi) at URL + "/git/<name>.git".
// Every request must carry HTTP basic auth with Username and Password;
// others get 401 with a WWW-Authenticate: Basic challenge.
type GitServer struct {
	URL      string // http://127.0.0.1:port
	Username string
	Password string
	Root     string // directory holding the bare repositories

	backend string
	home    string
	noV2    atomic.Bool
	handler *githttp.Server

	mu   sync.Mutex
	reqs []Request
}

// Request is what the server recorded about one HTTP request.
type Request struct {
	Method     string
	Path       string // URL path, e.g. /git/app.git/info/refs
	Query      string
	User       string // basic auth user name sent, "" if none
	Authorized bool   // the credentials were right
}

// NewGitServer starts a GitServer on 127.0.0.1 with a random password. It
// is closed by t.Cleanup. The test is skipped (failed in CI) when git or
// git-http-backend are missing.
func NewGitServer(t testing.TB) *GitServer {
	t.Helper()
	git := RequireTool(t, "git")
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("testenv: git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		missing(t, "missing git-http-backend: run `make test-deps`")
	}
	s := &GitServer{
		Username: "fornax",
		Password: randomSecret(t),
		Root:     t.TempDir(),
		backend:  backend,
		home:     t.TempDir(),
	}
	s.handler = &githttp.Server{
		Root: s.Root, Username: s.Username, Password: s.Password, Home: s.home,
		Observe: func(r *http.Request, user string, ok bool) {
			s.mu.Lock()
			s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, User: user, Authorized: ok})
			s.mu.Unlock()
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// RepoURL is the clone URL of repository name (without credentials).
func (s *GitServer) RepoURL(name string) string {
	return s.URL + "/git/" + name + ".git"
}

// SetProtocolV2 turns git wire protocol v2 on (the default) or off. With it
// off, the server speaks protocol v0, which refuses to serve commits that
// are not at the tip of a ref (no uploadpack.allowReachableSHA1InWant).
func (s *GitServer) SetProtocolV2(on bool) { s.noV2.Store(!on) }

// Requests returns a copy of the requests received so far.
func (s *GitServer) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// AuthorizedRequests counts the requests that carried the right credentials.
func (s *GitServer) AuthorizedRequests() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Authorized {
			n++
		}
	}
	return n
}

// RejectedRequests counts the requests answered with 401.
func (s *GitServer) RejectedRequests() int {
	return len(s.Requests()) - s.AuthorizedRequests()
}

func (s *GitServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.noV2.Load() {
		r.Header.Del("Git-Protocol")
	}
	s.handler.ServeHTTP(w, r)
}

// authEnv returns the environment that makes git send the server's
// credentials, through config given in the environment (not argv).
func (s *GitServer) authEnv() []string {
	cred := base64.StdEncoding.EncodeToString([]byte(s.Username + ":" + s.Password))
	return []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + cred,
	}
}

// NewRepo creates the bare repository name (default branch main) on the
// server and returns an empty working tree whose origin is that repository.
func (s *GitServer) NewRepo(t testing.TB, name string) *WorkTree {
	t.Helper()
	bare := filepath.Join(s.Root, name+".git")
	if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := isolatedEnv(home)
	runGit(t, env, s.Root, "init", "-q", "--bare", "-b", "main", bare)
	runGit(t, env, bare, "config", "http.receivepack", "true")

	w := &WorkTree{
		Dir:       t.TempDir(),
		RemoteURL: s.RepoURL(name),
		env: isolatedEnv(home, append(s.authEnv(),
			"GIT_AUTHOR_NAME=Ada Lovelace",
			"GIT_AUTHOR_EMAIL=ada@example.com",
			"GIT_COMMITTER_NAME=Ada Lovelace",
			"GIT_COMMITTER_EMAIL=ada@example.com",
		)...),
	}
	w.Git(t, "init", "-q", "-b", "main")
	w.Git(t, "remote", "add", "origin", w.RemoteURL)
	return w
}

// WorkTree is a git working tree whose origin is a repository of a
// GitServer; its git commands send the server's credentials.
type WorkTree struct {
	Dir       string
	RemoteURL string
	env       []string
}

// WriteFile writes content to path (slash-separated, relative to the work
// tree), creating directories as needed.
func (w *WorkTree) WriteFile(t testing.TB, path, content string) {
	t.Helper()
	w.WriteFileMode(t, path, content, 0o644)
}

// WriteFileMode is WriteFile with a file mode (e.g. 0o755 for scripts).
func (w *WorkTree) WriteFileMode(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(w.Dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile keeps the mode of existing files
		t.Fatal(err)
	}
}

// Commit stages everything (git add -A) and commits it as
// "Ada Lovelace <ada@example.com>"; it returns the new commit's SHA.
// Empty commits are allowed.
func (w *WorkTree) Commit(t testing.TB, message string) string {
	t.Helper()
	w.Git(t, "add", "-A")
	w.Git(t, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)
	return w.Git(t, "rev-parse", "HEAD")
}

// Push pushes HEAD to ref on origin, e.g. "refs/heads/main" or
// "refs/tags/v1.0" (not forced; use Git for "push -f").
func (w *WorkTree) Push(t testing.TB, ref string) {
	t.Helper()
	w.Git(t, "push", "-q", "origin", "HEAD:"+ref)
}

// Git runs git with args in the work tree and returns its trimmed stdout;
// it fails the test when git fails.
func (w *WorkTree) Git(t testing.TB, args ...string) string {
	t.Helper()
	return runGit(t, w.env, w.Dir, args...)
}

func runGit(t testing.TB, env []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testenv: git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

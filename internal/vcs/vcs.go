// Package vcs talks to users' repositories with the git and svn
// command-line clients: it checks that a repository is reachable, resolves
// refs to commits and checks out exact commits.
//
// Every command runs under a context (cancelling it kills the command and
// its children), in a clean environment (PATH, a throw-away HOME, no system
// or global git config, no prompts), and never sees the token on its
// command line: git gets it through config passed in the environment, svn
// on stdin. Errors and reasons never contain the token.
package vcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Repo is a user's repository and the credentials to reach it.
type Repo struct {
	URL      string
	VCS      string // "git" or "svn"
	Username string
	Token    string // password or token; never in argv, URLs, logs or returned errors
}

// Status is the outcome of Check.
type Status string

const (
	StatusHealthy    Status = "healthy"
	StatusMissing    Status = "missing"
	StatusUnknownVCS Status = "unknownvcs"
)

// Ref is a ref of a repository and the commit at its head.
type Ref struct {
	Name string // "refs/heads/main", "refs/tags/v1"; for svn the path under the repository ("" for its root)
	SHA  string // commit SHA; for svn the revision number
}

// Commit describes what Checkout put in a directory.
type Commit struct {
	SHA     string
	Ref     string
	Message string
	Author  string // "Name <email>"; for svn the user name
}

// ErrUnknownVCS is returned (wrapped) when Repo.VCS is neither git nor svn.
var ErrUnknownVCS = errors.New("unknown VCS")

// ErrRefNotFound is returned (wrapped) by Resolve when the ref does not exist.
var ErrRefNotFound = errors.New("ref not found")

// Check tells whether the repository can be reached with its credentials.
// An unreachable server, refused credentials or something that is not a
// repository give StatusMissing with a reason (without credentials); a VCS
// other than git or svn gives StatusUnknownVCS.
func Check(ctx context.Context, r Repo) (Status, string) {
	b, err := backendFor(r)
	if err != nil {
		if errors.Is(err, ErrUnknownVCS) {
			return StatusUnknownVCS, err.Error()
		}
		return StatusMissing, err.Error()
	}
	if err := b.check(ctx); err != nil {
		return StatusMissing, err.Error()
	}
	return StatusHealthy, ""
}

// Resolve finds the commit at the head of ref: a branch name, a tag name, a
// full ref ("refs/heads/x", "refs/tags/v1") or "" (or "HEAD") for the
// default branch, the target of the remote HEAD. A short name is looked up
// as refs/<name>, then refs/heads/<name>, then refs/tags/<name>. Tags are
// peeled: the SHA of an annotated tag is that of its commit.
//
// For svn, ref is "" for the repository root or a path under it (e.g.
// "trunk"); SHA is the last revision that changed that path, in decimal.
func Resolve(ctx context.Context, r Repo, ref string) (Ref, error) {
	b, err := backendFor(r)
	if err != nil {
		return Ref{}, err
	}
	return b.resolve(ctx, ref)
}

// Checkout puts exactly commit sha, reached from ref, in dir, which must
// not exist or be empty, writing the client's progress to log (may be nil).
//
// Git: init, then fetch of sha alone with depth 1; if the server refuses to
// serve a commit by its SHA, ref is fetched instead (shallow first, then
// its whole history) and sha must be in it. The commit is checked out
// detached. svn: checkout -r sha of the repository root or of the path ref.
// On error dir may hold a partial checkout; the caller removes it.
func Checkout(ctx context.Context, r Repo, ref, sha, dir string, log io.Writer) (Commit, error) {
	b, err := backendFor(r)
	if err != nil {
		return Commit{}, err
	}
	if log == nil {
		log = io.Discard
	}
	return b.checkout(ctx, ref, sha, dir, log)
}

type backend interface {
	check(ctx context.Context) error
	resolve(ctx context.Context, ref string) (Ref, error)
	checkout(ctx context.Context, ref, sha, dir string, log io.Writer) (Commit, error)
}

func backendFor(r Repo) (backend, error) {
	kind := strings.ToLower(strings.TrimSpace(r.VCS))
	var schemes []string
	switch kind {
	case "git":
		schemes = []string{"http", "https"}
	case "svn":
		schemes = []string{"http", "https", "svn"}
	default:
		return nil, fmt.Errorf("%w %q: must be git or svn", ErrUnknownVCS, r.VCS)
	}
	u, err := checkURL(r.URL, schemes)
	if err != nil {
		return nil, err
	}
	red := newRedactor(r.Username, r.Token)
	if kind == "git" {
		return &gitRepo{url: u, user: r.Username, token: r.Token, red: red}, nil
	}
	return &svnRepo{url: u, user: r.Username, token: r.Token, red: red}, nil
}

// checkURL validates a repository URL and returns it in normalized form.
func checkURL(raw string, schemes []string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("repository URL is empty")
	}
	if !strings.Contains(raw, "://") {
		// A path, or scp-like "user@host:path": ssh and local access are not supported.
		return "", fmt.Errorf("unsupported repository URL scheme: want a URL starting with %s", strings.Join(schemes, "://, ")+"://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may hold a password.
		return "", errors.New("invalid repository URL")
	}
	scheme := strings.ToLower(u.Scheme)
	ok := false
	for _, s := range schemes {
		ok = ok || s == scheme
	}
	if !ok {
		return "", fmt.Errorf("unsupported repository URL scheme %q: use %s", u.Scheme, strings.Join(schemes, ", "))
	}
	if u.User != nil {
		return "", fmt.Errorf("repository URL %s must not contain a user name or password: put them in the username and token fields", redactedURL(u))
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("repository URL %s has no host", redactedURL(u))
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return "", errors.New("repository URL contains white space or control characters")
	}
	u.Scheme = scheme
	u.Fragment = ""
	u.RawFragment = ""
	return u.String(), nil
}

// redactedURL prints u without its user info.
func redactedURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

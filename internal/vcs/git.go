package vcs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// defaultGitUser is the basic-auth user name sent with a token alone.
const defaultGitUser = "git"

type gitRepo struct {
	url, user, token string
	red              *redactor
}

// authEnv hands the credentials to git as config in the environment
// (GIT_CONFIG_COUNT/KEY/VALUE): never on the command line or in the URL.
func (g *gitRepo) authEnv() []string {
	if g.token == "" {
		return nil
	}
	user := g.user
	if user == "" {
		user = defaultGitUser
	}
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + g.token))
	return []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + cred,
	}
}

func (g *gitRepo) git(ctx context.Context, s *session, op, dir string, log io.Writer, args ...string) ([]byte, error) {
	out, err := s.run(ctx, command{
		op:   op,
		name: "git",
		args: args,
		dir:  dir,
		env:  g.authEnv(),
		log:  log,
	})
	var oe *opError
	if errors.As(err, &oe) {
		oe.msg = explainGit(oe.msg)
	}
	return out, err
}

// explainGit replaces git's message about the prompt it was not allowed to
// show (the server asked for credentials again) by what it means.
func explainGit(msg string) string {
	l := strings.ToLower(msg)
	if strings.Contains(l, "could not read username") || strings.Contains(l, "could not read password") {
		return "fatal: Authentication failed (credentials missing or refused)"
	}
	return msg
}

func (g *gitRepo) lsRemote(ctx context.Context, s *session, patterns ...string) ([]byte, error) {
	args := append([]string{"ls-remote", "--symref", g.url}, patterns...)
	return g.git(ctx, s, "git ls-remote "+g.url, "", nil, args...)
}

func (g *gitRepo) check(ctx context.Context) error {
	s, err := newSession(g.red)
	if err != nil {
		return err
	}
	defer s.close()
	_, err = g.lsRemote(ctx, s, "HEAD")
	return err
}

// remoteRefs is the parsed output of git ls-remote --symref.
type remoteRefs struct {
	sha     map[string]string // ref -> object
	peeled  map[string]string // tag -> commit, for annotated tags
	symrefs map[string]string // "HEAD" -> "refs/heads/main"
}

func parseLsRemote(out []byte) remoteRefs {
	r := remoteRefs{sha: map[string]string{}, peeled: map[string]string{}, symrefs: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		left, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		if target, isSym := strings.CutPrefix(left, "ref: "); isSym {
			r.symrefs[name] = target
			continue
		}
		if base, isPeeled := strings.CutSuffix(name, "^{}"); isPeeled {
			r.peeled[base] = left
			continue
		}
		r.sha[name] = left
	}
	return r
}

// commit returns the commit at ref, peeling annotated tags.
func (r remoteRefs) commit(ref string) (string, bool) {
	if c, ok := r.peeled[ref]; ok {
		return c, true
	}
	c, ok := r.sha[ref]
	return c, ok
}

func (g *gitRepo) resolve(ctx context.Context, ref string) (Ref, error) {
	ref = strings.TrimSpace(ref)
	if ref != "" && ref != "HEAD" {
		if err := checkGitRef(ref); err != nil {
			return Ref{}, err
		}
	}
	s, err := newSession(g.red)
	if err != nil {
		return Ref{}, err
	}
	defer s.close()
	out, err := g.lsRemote(ctx, s)
	if err != nil {
		return Ref{}, err
	}
	refs := parseLsRemote(out)

	if ref == "" || ref == "HEAD" {
		sha, ok := refs.sha["HEAD"]
		if !ok {
			return Ref{}, fmt.Errorf("%w: %s has no default branch (HEAD); is the repository empty?", ErrRefNotFound, g.url)
		}
		name := refs.symrefs["HEAD"]
		if name == "" {
			name = "HEAD" // detached HEAD, or a server that does not tell
		} else if c, ok := refs.commit(name); ok {
			sha = c
		}
		return Ref{Name: name, SHA: sha}, nil
	}
	candidates := []string{ref}
	if !strings.HasPrefix(ref, "refs/") {
		candidates = []string{"refs/" + ref, "refs/heads/" + ref, "refs/tags/" + ref}
	}
	for _, name := range candidates {
		if sha, ok := refs.commit(name); ok {
			return Ref{Name: name, SHA: sha}, nil
		}
	}
	return Ref{}, fmt.Errorf("%w: no branch or tag %q in %s", ErrRefNotFound, ref, g.url)
}

// checkGitRef refuses ref names git would refuse, and anything that could
// be taken for an option.
func checkGitRef(ref string) error {
	bad := ref == "" || strings.HasPrefix(ref, "-") || strings.HasPrefix(ref, "/") ||
		strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock") ||
		strings.Contains(ref, "..") || strings.Contains(ref, "//") || strings.Contains(ref, "@{") ||
		strings.ContainsAny(ref, " ~^:?*[\\\x7f")
	for _, r := range ref {
		bad = bad || r < 0x20
	}
	if bad {
		return fmt.Errorf("invalid git ref %q", ref)
	}
	return nil
}

// checkSHA accepts a full SHA-1 or SHA-256 object name, in lower case.
func checkSHA(sha string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(sha))
	if len(s) != 40 && len(s) != 64 {
		return "", fmt.Errorf("invalid commit SHA %q: want the full 40 (or 64) hex digits", sha)
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("invalid commit SHA %q", sha)
		}
	}
	return s, nil
}

// prepareDir makes dir an empty directory: it must not exist, or be empty.
func prepareDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("checkout directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	switch {
	case err == nil && len(entries) > 0:
		return "", fmt.Errorf("checkout directory %s is not empty", abs)
	case err == nil:
		return abs, nil
	case errors.Is(err, os.ErrNotExist):
		return abs, os.MkdirAll(abs, 0o755)
	default:
		return "", err
	}
}

func (g *gitRepo) checkout(ctx context.Context, ref, sha, dir string, log io.Writer) (Commit, error) {
	sha, err := checkSHA(sha)
	if err != nil {
		return Commit{}, err
	}
	ref = strings.TrimSpace(ref)
	fetchRef := ref
	if ref == "" || ref == "HEAD" {
		fetchRef = "HEAD"
	} else if err := checkGitRef(ref); err != nil {
		return Commit{}, err
	}
	dir, err = prepareDir(dir)
	if err != nil {
		return Commit{}, err
	}
	s, err := newSession(g.red)
	if err != nil {
		return Commit{}, err
	}
	defer s.close()

	objectFormat := "sha1"
	if len(sha) == 64 {
		objectFormat = "sha256"
	}
	if _, err := g.git(ctx, s, "git init", "", log, "init", "-q", "--object-format="+objectFormat, dir); err != nil {
		return Commit{}, err
	}
	if _, err := g.git(ctx, s, "git remote add", dir, nil, "remote", "add", "origin", g.url); err != nil {
		return Commit{}, err
	}
	fetch := func(what string, extra ...string) error {
		args := append([]string{"fetch", "--no-tags", "--progress", "--recurse-submodules=no"}, extra...)
		args = append(args, "origin", what)
		fmt.Fprintf(log, "$ git fetch %s origin %s\n", strings.Join(extra, " "), what)
		_, err := g.git(ctx, s, "git fetch "+g.url+" "+what, dir, log, args...)
		return err
	}
	has := func() bool {
		_, err := g.git(ctx, s, "git cat-file", dir, nil, "cat-file", "-e", sha+"^{commit}")
		return err == nil
	}

	// The commit alone; servers with protocol v2 (or allowing reachable
	// SHA-1s in want) serve it.
	err = fetch(sha, "--depth=1")
	if err != nil && ctx.Err() == nil {
		// Otherwise, the ref: its tip, then its whole history.
		fmt.Fprintf(log, "fetching %s by SHA failed, fetching %s instead\n", sha, fetchRef)
		err = fetch(fetchRef, "--depth=1")
		if err == nil && !has() {
			err = fetch(fetchRef, "--unshallow")
			if err != nil && strings.Contains(err.Error(), "--unshallow on a complete repository") {
				err = nil
			}
		}
		if err == nil && !has() {
			err = fmt.Errorf("commit %s is not in %s of %s", sha, fetchRef, g.url)
		}
	}
	if err != nil {
		return Commit{}, err
	}
	if _, err := g.git(ctx, s, "git checkout "+sha, dir, log,
		"-c", "advice.detachedHead=false", "checkout", "--progress", "--detach", sha); err != nil {
		return Commit{}, err
	}
	out, err := g.git(ctx, s, "git show "+sha, dir, nil,
		"show", "-s", "--no-show-signature", "--format=%H%x00%an <%ae>%x00%B", sha)
	if err != nil {
		return Commit{}, err
	}
	parts := strings.SplitN(string(out), "\x00", 3)
	if len(parts) != 3 {
		return Commit{}, fmt.Errorf("git show %s: unexpected output", sha)
	}
	return Commit{
		SHA:     parts[0],
		Ref:     fetchRef,
		Author:  parts[1],
		Message: strings.TrimRight(parts[2], "\n"),
	}, nil
}

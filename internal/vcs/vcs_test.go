package vcs_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/testenv"
	"github.com/fornax-dev/fornax/internal/vcs"
)

// gitFixture is a repository on a real git server: main has three commits
// (first, middle, second), tag v1.0 (lightweight) on first, v2.0
// (annotated) on second, and branch feature one commit ahead of first.
// middle is no ref's tip.
type gitFixture struct {
	srv                            *testenv.GitServer
	wt                             *testenv.WorkTree
	repo                           vcs.Repo
	first, middle, second, feature string
}

func newGitFixture(t *testing.T) *gitFixture {
	t.Helper()
	srv := testenv.NewGitServer(t)
	wt := srv.NewRepo(t, "app")
	f := &gitFixture{srv: srv, wt: wt}

	wt.WriteFile(t, "README.md", "first version\n")
	wt.WriteFileMode(t, "scripts/build.sh", "#!/bin/sh\necho build\n", 0o755)
	f.first = wt.Commit(t, "First commit")
	wt.Push(t, "refs/heads/main")
	wt.Push(t, "refs/tags/v1.0")

	wt.Git(t, "checkout", "-q", "-b", "feature")
	wt.WriteFile(t, "feature.txt", "feature\n")
	f.feature = wt.Commit(t, "Feature work")
	wt.Push(t, "refs/heads/feature")
	wt.Git(t, "checkout", "-q", "main")

	wt.WriteFile(t, "README.md", "middle version\n")
	wt.Git(t, "rm", "-q", "scripts/build.sh")
	f.middle = wt.Commit(t, "Middle commit\n\nWith a body.")
	wt.Push(t, "refs/heads/main")

	wt.WriteFile(t, "README.md", "second version\n")
	f.second = wt.Commit(t, "Second commit")
	wt.Push(t, "refs/heads/main")
	wt.Git(t, "tag", "-a", "-m", "release 2.0", "v2.0")
	wt.Git(t, "push", "-q", "origin", "refs/tags/v2.0")

	f.repo = vcs.Repo{URL: srv.RepoURL("app"), VCS: "git", Username: srv.Username, Token: srv.Password}
	return f
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// noSecret fails the test when s holds the token or its basic-auth form.
func noSecret(t *testing.T, what, s string, r vcs.Repo) {
	t.Helper()
	if r.Token == "" {
		return
	}
	if strings.Contains(s, r.Token) {
		t.Errorf("%s contains the token: %q", what, s)
	}
	user := r.Username
	if user == "" {
		user = "git"
	}
	if b64 := basic(user, r.Token); strings.Contains(s, b64) {
		t.Errorf("%s contains the basic-auth credentials: %q", what, s)
	}
}

func TestGitCheckHealthy(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	before := f.srv.RejectedRequests()
	st, reason := vcs.Check(ctx(t), f.repo)
	if st != vcs.StatusHealthy || reason != "" {
		t.Fatalf("Check = %q, %q", st, reason)
	}
	if f.srv.RejectedRequests() != before {
		t.Errorf("credentials were not sent up front: %d requests rejected", f.srv.RejectedRequests()-before)
	}
	// The VCS name is case-insensitive.
	f.repo.VCS = "Git"
	if st, reason := vcs.Check(ctx(t), f.repo); st != vcs.StatusHealthy {
		t.Fatalf("Check(VCS=Git) = %q, %q", st, reason)
	}
}

func TestGitCheckCredentialsAreUsed(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	n := len(f.srv.Requests())
	if st, reason := vcs.Check(ctx(t), f.repo); st != vcs.StatusHealthy {
		t.Fatalf("Check = %q, %q", st, reason)
	}
	reqs := f.srv.Requests()[n:]
	if len(reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	for _, r := range reqs {
		if !r.Authorized || r.User != f.srv.Username {
			t.Errorf("request %s %s: user %q authorized %v", r.Method, r.Path, r.User, r.Authorized)
		}
	}
}

func TestGitCheckWrongPassword(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	r := f.repo
	r.Token = "wrong-Secret-Token-4711"
	st, reason := vcs.Check(ctx(t), r)
	if st != vcs.StatusMissing {
		t.Fatalf("Check = %q, %q", st, reason)
	}
	noSecret(t, "reason", reason, r)
	if !strings.Contains(reason, "git ls-remote "+r.URL) || !strings.Contains(strings.ToLower(reason), "authentication failed") {
		t.Errorf("reason = %q", reason)
	}
	if len(reason) > 600 {
		t.Errorf("reason too long (%d bytes)", len(reason))
	}
}

func TestGitCheckNoCredentials(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	r := f.repo
	r.Username, r.Token = "", ""
	st, reason := vcs.Check(ctx(t), r)
	if st != vcs.StatusMissing || !strings.Contains(strings.ToLower(reason), "authentication failed") {
		t.Fatalf("Check = %q, %q", st, reason)
	}
}

func TestGitCheckTokenOnly(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	r := f.repo
	r.Username = "" // sent as user "git", which the server does not know
	st, reason := vcs.Check(ctx(t), r)
	if st != vcs.StatusMissing {
		t.Fatalf("Check = %q, %q", st, reason)
	}
	noSecret(t, "reason", reason, r)
	reqs := f.srv.Requests()
	if last := reqs[len(reqs)-1]; last.User != "git" {
		t.Errorf("user sent with a token alone = %q, want git", last.User)
	}
}

func TestGitCheckNotARepository(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	r := f.repo
	r.URL = f.srv.RepoURL("nope")
	st, reason := vcs.Check(ctx(t), r)
	if st != vcs.StatusMissing || !strings.Contains(reason, "not found") {
		t.Fatalf("Check = %q, %q", st, reason)
	}
	noSecret(t, "reason", reason, r)
}

func TestGitCheckUnreachable(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	r := vcs.Repo{URL: "http://127.0.0.1:" + itoa(port) + "/git/app.git", VCS: "git", Username: "u", Token: "tok-unreachable-99"}
	st, reason := vcs.Check(ctx(t), r)
	if st != vcs.StatusMissing || reason == "" {
		t.Fatalf("Check = %q, %q", st, reason)
	}
	noSecret(t, "reason", reason, r)
}

func TestCheckUnknownVCS(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"hg", "", "cvs"} {
		st, reason := vcs.Check(ctx(t), vcs.Repo{URL: "https://example.invalid/x", VCS: kind})
		if st != vcs.StatusUnknownVCS || reason == "" {
			t.Errorf("Check(VCS=%q) = %q, %q", kind, st, reason)
		}
	}
	_, err := vcs.Resolve(ctx(t), vcs.Repo{URL: "https://example.invalid/x", VCS: "hg"}, "")
	if !errors.Is(err, vcs.ErrUnknownVCS) {
		t.Errorf("Resolve error = %v", err)
	}
}

func TestUserinfoURLRefused(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"git", "svn"} {
		r := vcs.Repo{URL: "https://alice:s3cr3t-in-url@127.0.0.1:1/x.git", VCS: kind}
		st, reason := vcs.Check(ctx(t), r)
		if st != vcs.StatusMissing || !strings.Contains(reason, "username and token fields") || strings.Contains(reason, "s3cr3t-in-url") {
			t.Errorf("%s: Check = %q, %q", kind, st, reason)
		}
		_, err := vcs.Resolve(ctx(t), r, "main")
		if err == nil || strings.Contains(err.Error(), "s3cr3t-in-url") {
			t.Errorf("%s: Resolve error = %v", kind, err)
		}
		_, err = vcs.Checkout(ctx(t), r, "main", strings.Repeat("a", 40), t.TempDir(), nil)
		if err == nil || strings.Contains(err.Error(), "s3cr3t-in-url") {
			t.Errorf("%s: Checkout error = %v", kind, err)
		}
	}
	// A user name alone is refused too.
	if st, _ := vcs.Check(ctx(t), vcs.Repo{URL: "https://alice@127.0.0.1:1/x.git", VCS: "git"}); st != vcs.StatusMissing {
		t.Errorf("user-only URL: %q", st)
	}
}

func TestUnsupportedScheme(t *testing.T) {
	t.Parallel()
	cases := []struct{ kind, url string }{
		{"git", "file:///tmp/repo.git"},
		{"git", "/tmp/repo.git"},
		{"git", "ssh://git@127.0.0.1/x.git"},
		{"git", "git@127.0.0.1:x.git"},
		{"git", "git://127.0.0.1/x.git"},
		{"git", "ext::sh -c touch% /tmp/pwned"},
		{"git", "svn://127.0.0.1/repo"},
		{"svn", "file:///tmp/repo"},
		{"svn", "svn+ssh://127.0.0.1/repo"},
	}
	for _, c := range cases {
		st, reason := vcs.Check(ctx(t), vcs.Repo{URL: c.url, VCS: c.kind})
		if st != vcs.StatusMissing || !strings.Contains(reason, "unsupported repository URL scheme") {
			t.Errorf("%s %q: Check = %q, %q", c.kind, c.url, st, reason)
		}
	}
}

func TestGitResolve(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	cases := []struct {
		ref, name, sha string
	}{
		{"", "refs/heads/main", f.second},
		{"HEAD", "refs/heads/main", f.second},
		{"main", "refs/heads/main", f.second},
		{"feature", "refs/heads/feature", f.feature},
		{"refs/heads/feature", "refs/heads/feature", f.feature},
		{"v1.0", "refs/tags/v1.0", f.first},
		{"refs/tags/v1.0", "refs/tags/v1.0", f.first},
		{"v2.0", "refs/tags/v2.0", f.second}, // annotated: peeled to the commit
		{"tags/v2.0", "refs/tags/v2.0", f.second},
	}
	for _, c := range cases {
		got, err := vcs.Resolve(ctx(t), f.repo, c.ref)
		if err != nil {
			t.Errorf("Resolve(%q): %v", c.ref, err)
			continue
		}
		if got != (vcs.Ref{Name: c.name, SHA: c.sha}) {
			t.Errorf("Resolve(%q) = %+v, want {%s %s}", c.ref, got, c.name, c.sha)
		}
	}
}

func TestGitResolveDefaultBranchIsRemoteHEAD(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	// Make feature the default branch of the bare repository.
	bare := filepath.Join(f.srv.Root, "app.git")
	if err := os.WriteFile(filepath.Join(bare, "HEAD"), []byte("ref: refs/heads/feature\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := vcs.Resolve(ctx(t), f.repo, "")
	if err != nil || got != (vcs.Ref{Name: "refs/heads/feature", SHA: f.feature}) {
		t.Fatalf("Resolve(\"\") = %+v, %v", got, err)
	}
}

func TestGitResolveUnknownRef(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	for _, ref := range []string{"nope", "refs/heads/nope", "refs/tags/v9"} {
		_, err := vcs.Resolve(ctx(t), f.repo, ref)
		if !errors.Is(err, vcs.ErrRefNotFound) || !strings.Contains(err.Error(), ref) {
			t.Errorf("Resolve(%q) error = %v", ref, err)
		}
	}
	for _, ref := range []string{"--upload-pack=touch /tmp/x", "a..b", "a b", "x^{}"} {
		if _, err := vcs.Resolve(ctx(t), f.repo, ref); err == nil || !strings.Contains(err.Error(), "invalid git ref") {
			t.Errorf("Resolve(%q) error = %v", ref, err)
		}
	}
}

func TestGitResolveWrongPassword(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	r := f.repo
	r.Token = "another-wrong-Token-0815"
	_, err := vcs.Resolve(ctx(t), r, "main")
	if err == nil {
		t.Fatal("Resolve with a wrong password succeeded")
	}
	noSecret(t, "error", err.Error(), r)
}

func TestGitResolveEmptyRepository(t *testing.T) {
	t.Parallel()
	srv := testenv.NewGitServer(t)
	srv.NewRepo(t, "empty")
	r := vcs.Repo{URL: srv.RepoURL("empty"), VCS: "git", Username: srv.Username, Token: srv.Password}
	if st, reason := vcs.Check(ctx(t), r); st != vcs.StatusHealthy {
		t.Errorf("Check(empty repo) = %q, %q", st, reason)
	}
	if _, err := vcs.Resolve(ctx(t), r, ""); !errors.Is(err, vcs.ErrRefNotFound) {
		t.Errorf("Resolve(empty repo) error = %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testCheckoutOlderCommit(t *testing.T, protocolV2 bool) {
	t.Parallel()
	f := newGitFixture(t)
	f.srv.SetProtocolV2(protocolV2)
	// main moved on: middle is no longer its tip (nor any ref's).
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "src")
	c, err := vcs.Checkout(ctx(t), f.repo, "main", f.middle, dir, &log)
	if err != nil {
		t.Fatalf("Checkout: %v\nlog:\n%s", err, log.String())
	}
	want := vcs.Commit{SHA: f.middle, Ref: "main", Message: "Middle commit\n\nWith a body.", Author: "Ada Lovelace <ada@example.com>"}
	if c != want {
		t.Errorf("Checkout = %+v, want %+v", c, want)
	}
	if got := readFile(t, filepath.Join(dir, "README.md")); got != "middle version\n" {
		t.Errorf("README.md = %q", got)
	}
	for _, gone := range []string{"feature.txt", "scripts/build.sh"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is there: %v", gone, err)
		}
	}
	head := strings.TrimSpace(readFile(t, filepath.Join(dir, ".git", "HEAD")))
	if head != f.middle {
		t.Errorf(".git/HEAD = %q, want detached at %s", head, f.middle)
	}
	if log.Len() == 0 {
		t.Error("nothing written to the log")
	}
	if fellBack := strings.Contains(log.String(), "fetching main instead"); fellBack == protocolV2 {
		t.Errorf("protocol v2 %v: fell back to fetching the ref: %v\nlog:\n%s", protocolV2, fellBack, log.String())
	}
	noSecret(t, "log", log.String(), f.repo)
	if cfg := readFile(t, filepath.Join(dir, ".git", "config")); strings.Contains(cfg, f.repo.Token) || strings.Contains(cfg, basic(f.repo.Username, f.repo.Token)) {
		t.Errorf(".git/config holds credentials:\n%s", cfg)
	}
}

func TestGitCheckoutTag(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	dir := t.TempDir()
	c, err := vcs.Checkout(ctx(t), f.repo, "v1.0", f.first, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA != f.first || c.Message != "First commit" || c.Ref != "v1.0" {
		t.Errorf("Checkout = %+v", c)
	}
	st, err := os.Stat(filepath.Join(dir, "scripts", "build.sh"))
	if err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Errorf("scripts/build.sh not executable: %v %v", st, err)
	}
}

func TestGitCheckoutOlderCommit(t *testing.T) { testCheckoutOlderCommit(t, true) }

// With protocol v0 the server refuses a commit that is no ref's tip, so
// Checkout falls back to fetching the ref's history.
func TestGitCheckoutOlderCommitFallback(t *testing.T) { testCheckoutOlderCommit(t, false) }

func TestGitCheckoutTip(t *testing.T) {
	t.Parallel()
	for _, v2 := range []bool{true, false} {
		f := newGitFixture(t)
		f.srv.SetProtocolV2(v2)
		dir := t.TempDir() // exists and is empty
		c, err := vcs.Checkout(ctx(t), f.repo, "", strings.ToUpper(f.second), dir, nil)
		if err != nil {
			t.Fatalf("v2=%v: Checkout: %v", v2, err)
		}
		if c.SHA != f.second || c.Message != "Second commit" || c.Ref != "HEAD" {
			t.Errorf("v2=%v: Checkout = %+v", v2, c)
		}
		if got := readFile(t, filepath.Join(dir, "README.md")); got != "second version\n" {
			t.Errorf("v2=%v: README.md = %q", v2, got)
		}
	}
}

func TestGitCheckoutShaNotInRef(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	f.srv.SetProtocolV2(false)
	// A commit that is neither a ref's tip (so v0 refuses it) nor in main.
	f.wt.Git(t, "checkout", "-q", "feature")
	f.wt.WriteFile(t, "feature.txt", "more\n")
	f.wt.Commit(t, "More feature work")
	f.wt.Push(t, "refs/heads/feature")
	var log bytes.Buffer
	_, err := vcs.Checkout(ctx(t), f.repo, "main", f.feature, t.TempDir(), &log)
	if !strings.Contains(log.String(), "fetching main instead") {
		t.Errorf("no fallback:\n%s", log.String())
	}
	if err == nil || !strings.Contains(err.Error(), "is not in main") {
		t.Fatalf("Checkout error = %v", err)
	}
	// An object that does not exist at all.
	_, err = vcs.Checkout(ctx(t), f.repo, "main", strings.Repeat("ab", 20), t.TempDir(), nil)
	if err == nil {
		t.Fatal("Checkout of a missing commit succeeded")
	}
}

func TestGitCheckoutBadArguments(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vcs.Checkout(ctx(t), f.repo, "main", f.first, nonEmpty, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty dir: %v", err)
	}
	for _, sha := range []string{"", "abc123", strings.Repeat("g", 40), "--upload-pack=x"} {
		if _, err := vcs.Checkout(ctx(t), f.repo, "main", sha, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "invalid commit SHA") {
			t.Errorf("sha %q: %v", sha, err)
		}
	}
	if _, err := vcs.Checkout(ctx(t), f.repo, "-x", f.first, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "invalid git ref") {
		t.Errorf("ref -x: %v", err)
	}
}

func TestGitTokenNeverInErrors(t *testing.T) {
	t.Parallel()
	f := newGitFixture(t)
	r := f.repo
	r.Token = "Zx9-very-secret-token-Qw7"
	var log bytes.Buffer
	var texts []string
	_, reason := vcs.Check(ctx(t), r)
	texts = append(texts, reason)
	_, err := vcs.Resolve(ctx(t), r, "main")
	texts = append(texts, errString(err))
	_, err = vcs.Checkout(ctx(t), r, "main", f.middle, t.TempDir(), &log)
	texts = append(texts, errString(err), log.String())
	r.URL = f.srv.RepoURL("nope")
	_, reason = vcs.Check(ctx(t), r)
	texts = append(texts, reason)
	for i, s := range texts {
		if s == "" {
			t.Errorf("text %d is empty: every call should have failed", i)
		}
		noSecret(t, "text "+itoa(i), s, r)
	}
}

func TestGitHostEnvironmentIgnored(t *testing.T) {
	f := newGitFixture(t)
	// Were the host's environment passed on, git would go to port 1.
	t.Setenv("GIT_CONFIG_PARAMETERS", "'url.http://127.0.0.1:1/.insteadOf'='"+f.srv.URL+"/'")
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "http.proxy")
	t.Setenv("GIT_CONFIG_VALUE_0", "http://127.0.0.1:1")
	if st, reason := vcs.Check(ctx(t), f.repo); st != vcs.StatusHealthy {
		t.Fatalf("Check = %q, %q", st, reason)
	}
}

func TestGitCancel(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	r := vcs.Repo{URL: "http://" + l.Addr().String() + "/x.git", VCS: "git", Token: "t0ken-cancel"}
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, reason := vcs.Check(c, r)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Check took %v after cancellation", d)
	}
	if st != vcs.StatusMissing || !strings.Contains(reason, "deadline exceeded") {
		t.Errorf("Check = %q, %q", st, reason)
	}
	_, err = vcs.Resolve(c, r, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Resolve error = %v", err)
	}
}

// svn

func newSVN(t *testing.T) (*testenv.SVNServer, vcs.Repo, string, string) {
	t.Helper()
	srv := testenv.NewSVNServer(t)
	r1 := srv.Commit(t, map[string]string{"trunk/README": "one\n", "trunk/src/main.go": "package main\n"}, "Initial import")
	r2 := srv.Commit(t, map[string]string{"trunk/README": "two\n"}, "Update README\n\nDetails.")
	srv.Commit(t, map[string]string{"branches/other/x": "x\n"}, "Other branch")
	return srv, vcs.Repo{URL: srv.URL, VCS: "svn", Username: srv.Username, Token: srv.Password}, r1, r2
}

func TestSVNCheck(t *testing.T) {
	t.Parallel()
	srv, r, _, _ := newSVN(t)
	if st, reason := vcs.Check(ctx(t), r); st != vcs.StatusHealthy || reason != "" {
		t.Fatalf("Check = %q, %q", st, reason)
	}

	bad := r
	bad.Token = "svn-wrong-Password-1234"
	st, reason := vcs.Check(ctx(t), bad)
	if st != vcs.StatusMissing || !strings.Contains(reason, "svn info "+srv.URL) {
		t.Errorf("wrong password: Check = %q, %q", st, reason)
	}
	noSecret(t, "reason", reason, bad)

	missing := r
	missing.URL = strings.TrimSuffix(srv.URL, "/repo") + "/nope"
	if st, reason := vcs.Check(ctx(t), missing); st != vcs.StatusMissing || reason == "" {
		t.Errorf("missing repo: Check = %q, %q", st, reason)
	}

	down := r
	down.URL = "svn://127.0.0.1:" + itoa(testenv.FreePort(t)) + "/repo"
	if st, reason := vcs.Check(ctx(t), down); st != vcs.StatusMissing || reason == "" {
		t.Errorf("unreachable: Check = %q, %q", st, reason)
	}
}

func TestSVNResolve(t *testing.T) {
	t.Parallel()
	_, r, _, r2 := newSVN(t)
	got, err := vcs.Resolve(ctx(t), r, "")
	if err != nil || got != (vcs.Ref{Name: "", SHA: "3"}) {
		t.Errorf("Resolve(\"\") = %+v, %v", got, err)
	}
	// A path: its last change, not the youngest revision.
	got, err = vcs.Resolve(ctx(t), r, "trunk")
	if err != nil || got != (vcs.Ref{Name: "trunk", SHA: r2}) {
		t.Errorf("Resolve(trunk) = %+v, %v", got, err)
	}
	if _, err := vcs.Resolve(ctx(t), r, "tags/nope"); !errors.Is(err, vcs.ErrRefNotFound) {
		t.Errorf("Resolve(tags/nope) error = %v", err)
	}
	if _, err := vcs.Resolve(ctx(t), r, "../other"); err == nil {
		t.Error("Resolve(../other) succeeded")
	}
	bad := r
	bad.Token = "svn-wrong-Password-5678"
	_, err = vcs.Resolve(ctx(t), bad, "trunk")
	if err == nil {
		t.Fatal("Resolve with a wrong password succeeded")
	}
	noSecret(t, "error", err.Error(), bad)
}

func TestSVNCheckout(t *testing.T) {
	t.Parallel()
	_, r, r1, r2 := newSVN(t)
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "wc")
	c, err := vcs.Checkout(ctx(t), r, "trunk", r1, dir, &log)
	if err != nil {
		t.Fatalf("Checkout: %v\n%s", err, log.String())
	}
	want := vcs.Commit{SHA: r1, Ref: "trunk", Message: "Initial import", Author: r.Username}
	if c != want {
		t.Errorf("Checkout = %+v, want %+v", c, want)
	}
	if got := readFile(t, filepath.Join(dir, "README")); got != "one\n" {
		t.Errorf("README = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "src", "main.go")); got != "package main\n" {
		t.Errorf("src/main.go = %q", got)
	}
	if !strings.Contains(log.String(), "README") {
		t.Errorf("log lacks the checkout progress:\n%s", log.String())
	}
	noSecret(t, "log", log.String(), r)

	// Whole repository at r2.
	dir = t.TempDir()
	c, err = vcs.Checkout(ctx(t), r, "", "r"+r2, dir, nil)
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if c.SHA != r2 || c.Message != "Update README\n\nDetails." {
		t.Errorf("Checkout = %+v", c)
	}
	if got := readFile(t, filepath.Join(dir, "trunk", "README")); got != "two\n" {
		t.Errorf("trunk/README = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "branches")); !os.IsNotExist(err) {
		t.Errorf("branches exists at r%s: %v", r2, err)
	}

	if _, err := vcs.Checkout(ctx(t), r, "", "main", t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "invalid svn revision") {
		t.Errorf("bad revision: %v", err)
	}
	bad := r
	bad.Token = "svn-wrong-Password-9999"
	_, err = vcs.Checkout(ctx(t), bad, "", r2, t.TempDir(), &log)
	if err == nil {
		t.Fatal("Checkout with a wrong password succeeded")
	}
	noSecret(t, "error", err.Error(), bad)
	noSecret(t, "log", log.String(), bad)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

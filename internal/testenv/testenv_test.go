package testenv

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func TestGitServerPushAndAuth(t *testing.T) {
	s := NewGitServer(t)
	w := s.NewRepo(t, "app")
	w.WriteFile(t, "dir/hello.txt", "hello\n")
	w.WriteFileMode(t, "run.sh", "#!/bin/sh\n", 0o755)
	sha := w.Commit(t, "first")
	w.Push(t, "refs/heads/main")
	w.Push(t, "refs/tags/v1.0")
	if len(sha) != 40 {
		t.Fatalf("sha = %q", sha)
	}
	if got := w.Git(t, "log", "-1", "--format=%an <%ae>"); got != "Ada Lovelace <ada@example.com>" {
		t.Errorf("author = %q", got)
	}
	if s.AuthorizedRequests() == 0 {
		t.Errorf("no authorized request recorded: %+v", s.Requests())
	}

	// Without credentials the server refuses.
	home := t.TempDir()
	cmd := exec.Command("git", "ls-remote", s.RepoURL("app"))
	cmd.Env = isolatedEnv(home)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ls-remote without credentials succeeded: %s", out)
	}
	if s.RejectedRequests() == 0 {
		t.Errorf("no rejected request recorded")
	}

	// With credentials (test side: userinfo URL) it works.
	u := strings.Replace(s.RepoURL("app"), "http://", "http://"+s.Username+":"+s.Password+"@", 1)
	cmd = exec.Command("git", "ls-remote", u)
	cmd.Env = isolatedEnv(home)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ls-remote: %v\n%s", err, out)
	}
	for _, want := range []string{sha + "\tHEAD", sha + "\trefs/heads/main", sha + "\trefs/tags/v1.0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ls-remote output lacks %q:\n%s", want, out)
		}
	}
}

func TestSVNServerCommit(t *testing.T) {
	s := NewSVNServer(t)
	r1 := s.Commit(t, map[string]string{"trunk/a.txt": "a\n"}, "first")
	r2 := s.Commit(t, map[string]string{"trunk/a.txt": "a2\n", "trunk/sub/b.txt": "b\n"}, "second")
	if r1 != "1" || r2 != "2" {
		t.Fatalf("revisions = %s, %s", r1, r2)
	}
	out := s.svn(t, "cat", s.URL+"/trunk/sub/b.txt")
	if out != "b\n" {
		t.Errorf("svn cat = %q", out)
	}
	// Anonymous access is refused.
	cmd := exec.Command("svn", "info", "--non-interactive", "--no-auth-cache", "--config-dir", t.TempDir(), s.URL)
	cmd.Env = isolatedEnv(t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("anonymous svn info succeeded: %s", out)
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("port %d", p)
	}
}

// fakeTB records Skip/Fatal instead of acting on the real test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Skip(args ...any)          { f.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any)         { f.failed = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Skipf(s string, a ...any)  { f.Skip(fmt.Sprintf(s, a...)) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.Fatal(fmt.Sprintf(s, a...)) }

func runFake(t *testing.T, fn func(testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestRequireTool(t *testing.T) {
	if p := RequireTool(t, "sh"); p == "" {
		t.Fatal("no path for sh")
	}
	missingTool := func(tb testing.TB) { RequireTool(tb, "fornax-no-such-tool") }

	t.Setenv("CI", "")
	f := runFake(t, missingTool)
	if f.skipped != "missing fornax-no-such-tool: run `make test-deps`" || f.failed != "" {
		t.Errorf("without CI: skipped=%q failed=%q", f.skipped, f.failed)
	}

	t.Setenv("CI", "true")
	f = runFake(t, missingTool)
	if f.skipped != "" || !strings.HasPrefix(f.failed, "missing fornax-no-such-tool: run `make test-deps`") {
		t.Errorf("with CI: skipped=%q failed=%q", f.skipped, f.failed)
	}
}

package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// SVNServer is svnserve serving one repository on 127.0.0.1, readable and
// writable only by Username with Password (anonymous access is refused).
//
// A listener in the test process accepts the connections and hands each to
// "svnserve -i" (inetd mode), so there is no race for a free port.
type SVNServer struct {
	URL      string // svn://127.0.0.1:port/repo
	Username string
	Password string
	Root     string // directory holding the repository "repo"

	wc     string // working copy used by Commit
	home   string
	config string

	mu    sync.Mutex
	procs map[*exec.Cmd]struct{}
	done  bool
	wg    sync.WaitGroup
}

// NewSVNServer creates a repository and starts svnserve for it; both are
// removed by t.Cleanup. The test is skipped (failed in CI) when svnserve,
// svnadmin or svn are missing.
func NewSVNServer(t testing.TB) *SVNServer {
	t.Helper()
	svnserve := RequireTool(t, "svnserve")
	svnadmin := RequireTool(t, "svnadmin")
	RequireTool(t, "svn")

	s := &SVNServer{
		Username: "fornax",
		Password: randomSecret(t),
		Root:     t.TempDir(),
		home:     t.TempDir(),
		procs:    map[*exec.Cmd]struct{}{},
	}
	s.config = filepath.Join(s.home, "svnconfig")
	repo := filepath.Join(s.Root, "repo")
	if out, err := exec.Command(svnadmin, "create", repo).CombinedOutput(); err != nil {
		t.Fatalf("testenv: svnadmin create: %v\n%s", err, out)
	}
	conf := "[general]\nanon-access = none\nauth-access = write\npassword-db = passwd\nrealm = fornax-test\n"
	passwd := "[users]\n" + s.Username + " = " + s.Password + "\n"
	if err := os.WriteFile(filepath.Join(repo, "conf", "svnserve.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "conf", "passwd"), []byte(passwd), 0o600); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	s.URL = fmt.Sprintf("svn://%s/repo", l.Addr())
	s.wg.Add(1)
	go s.accept(l, svnserve)
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		s.done = true
		for cmd := range s.procs {
			cmd.Process.Kill()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})

	s.wc = filepath.Join(t.TempDir(), "wc")
	s.svn(t, "checkout", "-q", s.URL, s.wc)
	return s
}

func (s *SVNServer) accept(l net.Listener, svnserve string) {
	defer s.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		f, err := conn.(*net.TCPConn).File()
		conn.Close()
		if err != nil {
			continue
		}
		cmd := exec.Command(svnserve, "-i", "-r", s.Root)
		cmd.Stdin = f
		cmd.Stdout = f
		cmd.Env = isolatedEnv(s.home)
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			f.Close()
			return
		}
		err = cmd.Start()
		f.Close()
		if err != nil {
			s.mu.Unlock()
			continue
		}
		s.procs[cmd] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			cmd.Wait()
			s.mu.Lock()
			delete(s.procs, cmd)
			s.mu.Unlock()
		}()
	}
}

var committedRe = regexp.MustCompile(`Committed revision (\d+)\.`)

// Commit writes files (slash-separated paths relative to the repository
// root, directories created as needed), commits them with message as
// Username, and returns the new revision number.
func (s *SVNServer) Commit(t testing.TB, files map[string]string, message string) string {
	t.Helper()
	s.svn(t, "update", "-q", s.wc)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(s.wc, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.svn(t, "add", "-q", "--force", s.wc)
	out := s.svn(t, "commit", "-m", message, s.wc)
	m := committedRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("testenv: svn commit: no revision in output:\n%s", out)
	}
	s.svn(t, "update", "-q", s.wc)
	return m[1]
}

// svn runs the svn client as Username, with the password on stdin.
func (s *SVNServer) svn(t testing.TB, args ...string) string {
	t.Helper()
	full := append([]string{
		"--non-interactive", "--no-auth-cache", "--config-dir", s.config,
		"--username", s.Username, "--password-from-stdin",
	}, args...)
	cmd := exec.Command("svn", full...)
	cmd.Env = isolatedEnv(s.home)
	cmd.Stdin = strings.NewReader(s.Password + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testenv: svn %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

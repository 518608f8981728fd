// Package testenv provides real servers and helpers for tests: a git
// smart-HTTP server (git http-backend behind net/http/cgi) that requires
// basic auth, an svnserve server, and small utilities.
//
// It is meant to be imported from _test.go files only.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"testing"
)

// RequireTool makes sure the binary name is on PATH. When it is missing the
// test is skipped with "missing <name>: run `make test-deps`", unless the CI
// environment variable is set: in CI nothing may be skipped, so the test
// fails instead.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "missing "+name+": run `make test-deps`")
	}
	return p
}

// missing skips the test, or fails it when running in CI.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: tests may not be skipped)")
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Prefer listening on port 0 where possible: another process may take the
// port between this call and its use.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: FreePort: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// randomSecret returns a random hex string usable as a password.
func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// isolatedEnv is a minimal environment for helper commands: nothing of the
// host's configuration or secrets, git config limited to what we pass.
func isolatedEnv(home string, extra ...string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + home,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
	}
	return append(env, extra...)
}

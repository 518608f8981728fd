package vcs

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// command is one invocation of a VCS client.
type command struct {
	op    string   // what was tried, for errors: "git ls-remote https://host/x.git"
	name  string   // binary
	args  []string // never holds credentials
	dir   string   // working directory; the temporary HOME if empty
	env   []string // added to the clean environment
	stdin string   // e.g. the svn password
	log   io.Writer
	// stdoutToLog sends stdout to log too (svn prints progress there).
	stdoutToLog bool
}

// session owns a throw-away HOME for the commands of one operation.
type session struct {
	home string
	red  *redactor
}

func newSession(red *redactor) (*session, error) {
	home, err := os.MkdirTemp("", "fornax-vcs-")
	if err != nil {
		return nil, fmt.Errorf("vcs: temporary home: %w", err)
	}
	return &session{home: home, red: red}, nil
}

func (s *session) close() { os.RemoveAll(s.home) }

// baseEnv is the whole environment of a command: nothing is inherited from
// the host except PATH.
func baseEnv(home string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_SYSTEM=/dev/null",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		// Empty, not unset: git then neither runs SSH_ASKPASS nor core.askPass.
		"GIT_ASKPASS=",
		// Only http(s), also for anything git could follow (submodules, redirects).
		"GIT_ALLOW_PROTOCOL=http:https",
		// Never discover a repository above the temporary HOME.
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(home),
	}
}

const waitDelay = 5 * time.Second

// run runs c and returns its stdout. On failure the error starts with c.op
// and holds a short, redacted excerpt of stderr.
func (s *session) run(ctx context.Context, c command) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.op, err)
	}
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.Env = append(baseEnv(s.home), c.env...)
	cmd.Dir = c.dir
	if cmd.Dir == "" {
		cmd.Dir = s.home
	}
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	killGroup(cmd)
	cmd.WaitDelay = waitDelay

	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 64 << 10}
	cmd.Stdout = &stdout
	var logw *redactWriter
	if c.log != nil {
		logw = &redactWriter{w: c.log, red: s.red}
		cmd.Stderr = io.MultiWriter(stderr, logw)
		if c.stdoutToLog {
			cmd.Stdout = io.MultiWriter(&stdout, logw)
		}
	} else {
		cmd.Stderr = stderr
	}
	err := cmd.Run()
	if logw != nil {
		logw.Flush()
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("%s: %w", c.op, ctxErr)
	}
	msg := summarize(s.red.redact(stderr.String()))
	if msg == "" {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = ee.ProcessState.String()
		} else {
			msg = s.red.redact(err.Error())
		}
	}
	return nil, &opError{op: c.op, msg: msg, exit: exitCode(err)}
}

// opError is a failed command.
type opError struct {
	op, msg string
	exit    int
}

func (e *opError) Error() string { return e.op + ": " + e.msg }

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

const maxReason = 400

// summarize keeps the meaningful lines of a client's stderr: the fatal and
// error lines when there are some, and no progress noise; at most
// maxReason bytes.
func summarize(stderr string) string {
	var all, important []string
	for _, line := range strings.FieldsFunc(stderr, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		if line == "" || isProgress(line) {
			continue
		}
		all = append(all, line)
		l := strings.ToLower(line)
		if strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "svn: e") || strings.HasPrefix(l, "svn: warning") {
			important = append(important, line)
		}
	}
	lines := important
	if len(lines) == 0 {
		lines = all
	}
	msg := strings.Join(dedupe(lines), "; ")
	if len(msg) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8Start(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func dedupe(lines []string) []string {
	seen := map[string]bool{}
	out := lines[:0:0]
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

var progressRe = regexp.MustCompile(`^(remote: )?(Counting|Compressing|Receiving|Resolving|Enumerating|Total|Updating files|Unpacking)\b`)

func isProgress(line string) bool { return progressRe.MatchString(line) }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// redactor removes a token, and the forms it takes on the wire, from text.
type redactor struct {
	secrets []string
}

var authHeaderRe = regexp.MustCompile(`(?i)(authorization:\s*(basic|bearer|token)\s+)\S+`)

func newRedactor(user, token string) *redactor {
	r := &redactor{}
	if token == "" {
		return r
	}
	if user == "" {
		user = defaultGitUser
	}
	forms := []string{
		token,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + token)),
		base64.StdEncoding.EncodeToString([]byte(token)),
		base64.RawStdEncoding.EncodeToString([]byte(token)),
		url.QueryEscape(token),
		url.PathEscape(token),
	}
	seen := map[string]bool{}
	for _, f := range forms {
		if f != "" && !seen[f] {
			seen[f] = true
			r.secrets = append(r.secrets, f)
		}
	}
	// Longest first, so a form containing another is removed whole.
	for i := range r.secrets {
		for j := i + 1; j < len(r.secrets); j++ {
			if len(r.secrets[j]) > len(r.secrets[i]) {
				r.secrets[i], r.secrets[j] = r.secrets[j], r.secrets[i]
			}
		}
	}
	return r
}

func (r *redactor) redact(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return authHeaderRe.ReplaceAllString(s, "${1}[REDACTED]")
}

// redactWriter passes a client's progress on line by line (a line ends at
// '\n' or '\r'), redacted.
type redactWriter struct {
	mu   sync.Mutex
	w    io.Writer
	red  *redactor
	line []byte
}

const maxLine = 8 << 10

func (rw *redactWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for _, b := range p {
		rw.line = append(rw.line, b)
		if b == '\n' || b == '\r' || len(rw.line) >= maxLine {
			rw.flushLocked()
		}
	}
	return len(p), nil
}

func (rw *redactWriter) Flush() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.flushLocked()
}

func (rw *redactWriter) flushLocked() {
	if len(rw.line) == 0 {
		return
	}
	// Errors of the log writer must not fail the checkout.
	io.WriteString(rw.w, rw.red.redact(string(rw.line)))
	rw.line = rw.line[:0]
}

package vcs

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const token = "p@ss/w0rd+x"
	r := newRedactor("alice", token)
	in := strings.Join([]string{
		"token " + token,
		"basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+token)),
		"query " + "p%40ss%2Fw0rd%2Bx",
		"Authorization: Bearer something-else",
	}, "\n")
	out := r.redact(in)
	for _, leak := range []string{token, "p%40ss%2Fw0rd%2Bx", base64.StdEncoding.EncodeToString([]byte("alice:" + token)), "something-else"} {
		if strings.Contains(out, leak) {
			t.Errorf("redacted text holds %q:\n%s", leak, out)
		}
	}
	if strings.Count(out, "[REDACTED]") != 4 {
		t.Errorf("redacted text:\n%s", out)
	}
	if got := newRedactor("", "").redact("nothing to hide"); got != "nothing to hide" {
		t.Errorf("empty token: %q", got)
	}
}

func TestRedactWriterAcrossWrites(t *testing.T) {
	var buf bytes.Buffer
	w := &redactWriter{w: &buf, red: newRedactor("u", "secret-token")}
	for _, part := range []string{"progress 10%\rsec", "ret-tok", "en here\nlast secret-", "token"} {
		w.Write([]byte(part))
	}
	w.Flush()
	if strings.Contains(buf.String(), "secret-token") || !strings.Contains(buf.String(), "last [REDACTED]") {
		t.Errorf("log = %q", buf.String())
	}
}

func TestSummarize(t *testing.T) {
	in := "remote: Counting objects: 100% (5/5), done.\nhint: something\nfatal: first\nerror: second\nfatal: first\n"
	if got := summarize(in); got != "fatal: first; error: second" {
		t.Errorf("summarize = %q", got)
	}
	if got := summarize("just a line\n\n"); got != "just a line" {
		t.Errorf("summarize = %q", got)
	}
	long := summarize("fatal: " + strings.Repeat("é", 1000))
	if len(long) > maxReason+len("…") || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "fatal: ") {
		t.Errorf("long reason: %d bytes %q", len(long), long)
	}
}

func TestBaseEnvIsClean(t *testing.T) {
	t.Setenv("FORNAX_HOST_SECRET", "leak")
	t.Setenv("GIT_CONFIG_PARAMETERS", "'http.proxy'='x'")
	t.Setenv("SSH_ASKPASS", "/bin/true")
	env := baseEnv("/tmp/home")
	joined := strings.Join(env, "\n")
	for _, bad := range []string{"FORNAX_HOST_SECRET", "GIT_CONFIG_PARAMETERS", "SSH_ASKPASS"} {
		if strings.Contains(joined, bad) {
			t.Errorf("env holds %s", bad)
		}
	}
	for _, want := range []string{"HOME=/tmp/home", "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_ASKPASS="} {
		found := false
		for _, e := range env {
			found = found || e == want
		}
		if !found {
			t.Errorf("env lacks %s", want)
		}
	}
}

func TestGitAuthEnv(t *testing.T) {
	g := &gitRepo{token: "tok"}
	env := strings.Join(g.authEnv(), "\n")
	if !strings.Contains(env, "GIT_CONFIG_VALUE_0=Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("git:tok"))) {
		t.Errorf("token alone: %s", env)
	}
	if (&gitRepo{user: "u"}).authEnv() != nil {
		t.Error("credentials sent without a token")
	}
}

func TestCheckURL(t *testing.T) {
	got, err := checkURL(" HTTPS://example.com/x.git#frag ", []string{"https"})
	if err != nil || got != "https://example.com/x.git" {
		t.Errorf("checkURL = %q, %v", got, err)
	}
	for _, bad := range []string{"", "https://", "https:foo", "https://u:pw@h/x", "https://h/x y"} {
		if _, err := checkURL(bad, []string{"https"}); err == nil {
			t.Errorf("checkURL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("checkURL(%q) error holds the password: %v", bad, err)
		}
	}
}

package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/testenv"
	"github.com/fornax-dev/fornax/local/stack"
)

const appDockerfile = `FROM {{BASE}}
ARG GREETING=hello
ENV GREETING=${GREETING} APP_HOME=/app
WORKDIR /app
COPY out/ /app/
LABEL org.opencontainers.image.title="app" team=core
EXPOSE 8080
CMD ["/app/server", "--port", "8080"]
`

const appCaicloud = `# a Cyclone-style file: Docker keys such as volumes are warned about, not fatal
pre_build:
  image: golang:1.22
  volumes:
    - .:/go/src/app
  environment:
    - TARGET=out
  commands:
    - mkdir -p $TARGET
    - echo "built $FORNAX_VERSION from $FORNAX_COMMIT" > $TARGET/build-info.txt
    - printf '#!/bin/sh\necho serving\n' > $TARGET/server && chmod 755 $TARGET/server
build:
  dockerfile_name: Dockerfile
post_build:
  commands:
    - echo "post-build saw $FORNAX_IMAGE"
    - env
`

// newApp makes a repository with the sample application and returns its work tree.
func newApp(t *testing.T, git *testenv.GitServer, name, base string) *testenv.WorkTree {
	t.Helper()
	w := git.NewRepo(t, name)
	w.WriteFile(t, "Dockerfile", strings.ReplaceAll(appDockerfile, "{{BASE}}", base))
	w.WriteFile(t, "caicloud.yml", appCaicloud)
	w.WriteFile(t, ".dockerignore", "secret.txt\n")
	w.WriteFile(t, "secret.txt", "do not ship\n")
	w.WriteFile(t, "main.go", "package main\n")
	return w
}

// TestPushBuildsImage is the user's story: register a service, push a
// commit, see the signed webhook turn into a version, see it succeed, and
// pull the image it published.
func TestPushBuildsImage(t *testing.T) {
	// Fornax's own environment holds its secrets: none of it may reach the
	// user's commands.
	t.Setenv("FORNAX_SECRET_MARKER", "must-not-leak-7f3a")
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	base := pushBase(t, fx.Registry, "library/base:1.0")

	w := newApp(t, git, "app", base)
	svc := fx.createService(aliceToken, "app", git, "app", "hook-secret-1")
	if svc.Repository.Status != "healthy" {
		t.Fatalf("repository status %q (%s)", svc.Repository.Status, svc.Repository.Reason)
	}
	if svc.Webhook.Secret != "" {
		t.Fatal("a webhook secret the user chose was echoed back")
	}

	sha := w.Commit(t, "Add the app\n\nWith a body.")
	w.Push(t, "refs/heads/main")

	body := pushPayload(t, w, "refs/heads/main")
	code, out := fx.webhook(svc.ID, "push", "delivery-1", body, "hook-secret-1")
	if code != http.StatusAccepted {
		t.Fatalf("webhook: %d %v", code, out)
	}
	id, _ := out["version_id"].(string)
	v := fx.waitVersion(aliceToken, id)
	log := fx.logs(aliceToken, id)
	if v.Status != "success" {
		t.Fatalf("version %s: %s (%s)\n%s", id, v.Status, v.Error, log)
	}
	if v.Name != sha[:7] || v.Commit.SHA != sha || v.Commit.Ref != "refs/heads/main" || v.Trigger != "push" {
		t.Fatalf("version %+v", v)
	}
	if !strings.HasPrefix(v.Commit.Message, "Add the app") || !strings.Contains(v.Commit.Author, "Ada Lovelace") {
		t.Fatalf("commit %+v", v.Commit)
	}
	var names []string
	for _, s := range v.Stages {
		names = append(names, s.Name)
		if s.Status != "success" || s.StartedAt == nil || s.FinishedAt == nil {
			t.Errorf("stage %+v", s)
		}
	}
	if want := []string{"clone", "pre_build", "build", "push", "post_build"}; !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v", names, want)
	}

	// The log shows every command with its output, and the warning.
	for _, want := range []string{"$ mkdir -p $TARGET", "post-build saw " + fx.Registry + "/alice/app:" + sha[:7], "volumes", "pushed "} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, git.Password) {
		t.Fatal("the repository password is in the log")
	}
	if !strings.Contains(log, "FORNAX_VERSION="+sha[:7]) || !strings.Contains(log, "CI=true") {
		t.Fatalf("the commands' environment is not the clean one:\n%s", log)
	}
	if strings.Contains(log, "must-not-leak-7f3a") {
		t.Fatal("Fornax's own environment reached the user's commands")
	}

	// The image is in the registry under the version's name, by digest.
	wantRef := fx.Registry + "/alice/app:" + sha[:7]
	if v.Image.Ref != wantRef || !strings.HasPrefix(v.Image.Digest, "sha256:") {
		t.Fatalf("image %+v, want ref %s", v.Image, wantRef)
	}
	img := pull(t, wantRef+"@"+v.Image.Digest)
	tagged := pull(t, wantRef)
	if d, _ := tagged.Digest(); d.String() != v.Image.Digest {
		t.Fatalf("tag points at %s, version recorded %s", d, v.Image.Digest)
	}
	layers, _ := img.Layers()
	if len(layers) < 2 {
		t.Fatalf("want the base layer plus the app's, got %d layers", len(layers))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/app/server", "--port", "8080"}) {
		t.Errorf("CMD %v", cf.Config.Cmd)
	}
	if !slices.Contains(cf.Config.Env, "GREETING=hello") || !slices.Contains(cf.Config.Env, "PATH=/usr/bin:/bin") {
		t.Errorf("ENV %v", cf.Config.Env)
	}
	if cf.Config.Labels["team"] != "core" || cf.Config.WorkingDir != "/app" {
		t.Errorf("labels %v workdir %q", cf.Config.Labels, cf.Config.WorkingDir)
	}
	if got, ok := fileInImage(t, img, "app/build-info.txt"); !ok || got != "built "+sha[:7]+" from "+sha+"\n" {
		t.Errorf("build-info.txt = %q (found %v)", got, ok)
	}
	if got, ok := fileInImage(t, img, "etc/base-release"); !ok || got != "base 1.0\n" {
		t.Errorf("base layer file = %q (found %v)", got, ok)
	}

	// GitHub retries a delivery: no second version.
	code, out = fx.webhook(svc.ID, "push", "delivery-1", body, "hook-secret-1")
	if code != http.StatusOK || out["duplicate"] != true || out["version_id"] != id {
		t.Fatalf("repeated delivery: %d %v", code, out)
	}
	var list struct{ Items []versionOut }
	fx.call(aliceToken, "GET", "/api/v1/services/"+svc.ID+"/versions", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("%d versions after a repeated delivery", len(list.Items))
	}
}

func TestWebhookVerification(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	svc := fx.createService(aliceToken, "app", git, "app", "right-secret")
	w, _ := scratchRepo(t, git, "app", "a\n")
	body := pushPayload(t, w, "refs/heads/main")

	if code, _ := fx.webhook(svc.ID, "ping", "p-1", []byte(`{"zen":"hi"}`), "right-secret"); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
	for name, secret := range map[string]string{"forged": "wrong-secret", "unsigned": ""} {
		code, out := fx.webhook(svc.ID, "push", "forged-"+name, body, secret)
		if code != http.StatusUnauthorized {
			t.Fatalf("%s delivery: %d %v", name, code, out)
		}
	}
	// A forged delivery records nothing: not even its delivery id.
	var list struct{ Items []versionOut }
	fx.call(aliceToken, "GET", "/api/v1/services/"+svc.ID+"/versions", nil, &list)
	if len(list.Items) != 0 {
		t.Fatalf("forged deliveries made %d versions", len(list.Items))
	}
	if code, out := fx.webhook(svc.ID, "push", "forged-forged", body, "right-secret"); code != http.StatusAccepted {
		t.Fatalf("the genuine delivery with a previously forged id: %d %v", code, out)
	}
	if code, _ := fx.webhook("svc_nothere", "push", "x", body, "right-secret"); code != http.StatusNotFound {
		t.Fatalf("unknown service: %d", code)
	}

	// Deleting a branch builds nothing.
	del := []byte(`{"ref":"refs/heads/old","before":"` + strings.Repeat("1", 40) + `","after":"` + strings.Repeat("0", 40) + `","deleted":true,"head_commit":null}`)
	if code, out := fx.webhook(svc.ID, "push", "del-1", del, "right-secret"); code != http.StatusOK || out["ignored"] == nil {
		t.Fatalf("branch deletion: %d %v", code, out)
	}
	fx.call(aliceToken, "GET", "/api/v1/services/"+svc.ID+"/versions", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("want 1 version, got %d", len(list.Items))
	}
}

func TestTagPushAndNames(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	svc := fx.createService(aliceToken, "app", git, "app", "s3cret-tag")
	w, sha := scratchRepo(t, git, "app", "a\n")
	w.Git(t, "tag", "v1.0.0+build.7")
	w.Push(t, "refs/tags/v1.0.0+build.7")

	code, out := fx.webhook(svc.ID, "push", "t-1", pushPayload(t, w, "refs/tags/v1.0.0+build.7"), "s3cret-tag")
	if code != http.StatusAccepted {
		t.Fatalf("tag push: %d %v", code, out)
	}
	v := fx.waitVersion(aliceToken, out["version_id"].(string))
	if v.Status != "success" || v.Name != "v1.0.0-build.7" || v.Trigger != "tag" {
		t.Fatalf("tag version: %+v", v)
	}
	pull(t, fx.Registry+"/alice/app:v1.0.0-build.7")

	// The same commit pushed twice on branches: the second name gets a suffix.
	_, a := fx.webhook(svc.ID, "push", "b-1", pushPayload(t, w, "refs/heads/main"), "s3cret-tag")
	_, b := fx.webhook(svc.ID, "push", "b-2", pushPayload(t, w, "refs/heads/other"), "s3cret-tag")
	if a["name"] != sha[:7] || b["name"] != sha[:7]+"-2" {
		t.Fatalf("names %v and %v", a["name"], b["name"])
	}
	fx.waitVersion(aliceToken, a["version_id"].(string))
	fx.waitVersion(aliceToken, b["version_id"].(string))
}

func TestFailingCommandFailsVersion(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	svc := fx.createService(aliceToken, "app", git, "app", "s3cret-fail")
	w := git.NewRepo(t, "app")
	w.WriteFile(t, "Dockerfile", "FROM scratch\nCOPY a /a\n")
	w.WriteFile(t, "a", "a\n")
	w.WriteFile(t, "caicloud.yml", "integration:\n  commands:\n    - echo running the tests\n    - echo 'expected 2, got 3' >&2; exit 3\n    - echo never reached\n")
	w.Commit(t, "broken test")
	w.Push(t, "refs/heads/main")

	var v versionOut
	if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID}, &v); code != http.StatusAccepted {
		t.Fatalf("create version: %d %+v", code, v)
	}
	v = fx.waitVersion(aliceToken, v.ID)
	log := fx.logs(aliceToken, v.ID)
	if v.Status != "failed" || !strings.Contains(v.Error, "exited with status 3") {
		t.Fatalf("version %s %q", v.Status, v.Error)
	}
	if st, msg := v.stage("integration"); st != "failed" || !strings.Contains(msg, "status 3") {
		t.Fatalf("integration stage %s %q", st, msg)
	}
	if st, _ := v.stage("build"); st != "skipped" {
		t.Fatalf("build stage %s after a failed integration", st)
	}
	if !strings.Contains(log, "expected 2, got 3") || strings.Contains(log, "never reached") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestBrokenInputsFailWithReasons(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	cases := []struct {
		name, caicloud, dockerfile, want string
	}{
		{"malformed caicloud.yml", "pre_build:\n  commands:\n    first: oops\n", "FROM scratch\n", "caicloud.yml:3:"},
		{"RUN needs kaniko", "", "FROM scratch\nRUN make\n", "kaniko"},
		{"sidecars need containers", "integration:\n  services:\n    db:\n      image: postgres:16\n  commands:\n    - true\n", "FROM scratch\n", "needs a container executor"},
		{"no Dockerfile", "", "", "no Dockerfile"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := "r" + strconv.Itoa(i)
			svc := fx.createService(aliceToken, repo, git, repo, "s3cret-"+repo)
			w := git.NewRepo(t, repo)
			w.WriteFile(t, "README", "x\n")
			if c.caicloud != "" {
				w.WriteFile(t, "caicloud.yml", c.caicloud)
			}
			if c.dockerfile != "" {
				w.WriteFile(t, "Dockerfile", c.dockerfile)
			}
			w.Commit(t, c.name)
			w.Push(t, "refs/heads/main")
			var v versionOut
			if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID, "ref": "main"}, &v); code != http.StatusAccepted {
				t.Fatalf("create version: %d", code)
			}
			v = fx.waitVersion(aliceToken, v.ID)
			if v.Status != "failed" || !strings.Contains(v.Error, c.want) {
				t.Fatalf("want failed with %q, got %s %q\n%s", c.want, v.Status, v.Error, fx.logs(aliceToken, v.ID))
			}
			if log := fx.logs(aliceToken, v.ID); !strings.Contains(log, c.want) {
				t.Fatalf("log does not say %q:\n%s", c.want, log)
			}
		})
	}
}

// startSleeper pushes a repository whose build starts a background sleep
// and waits for it, writing the sleep's pid where the test can see it.
func startSleeper(t *testing.T, fx *fornax, git *testenv.GitServer) (versionOut, string) {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "pid")
	svc := fx.createService(aliceToken, "sleepy", git, "sleepy", "s3cret-sleep")
	w := git.NewRepo(t, "sleepy")
	w.WriteFile(t, "Dockerfile", "FROM scratch\n")
	w.WriteFile(t, "caicloud.yml", "pre_build:\n  environment:\n    PIDFILE: "+pidfile+"\n  commands:\n    - sleep 300 & echo $! > $PIDFILE; wait\n")
	w.Commit(t, "slow build")
	w.Push(t, "refs/heads/main")
	var v versionOut
	if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID}, &v); code != http.StatusAccepted {
		t.Fatalf("create version: %d", code)
	}
	return v, pidfile
}

func readPid(t *testing.T, pidfile string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(pidfile)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the build never started its sleep")
	return 0
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH || zombie(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("process %d outlived its version", pid)
}

// zombie reports whether pid has exited and only waits to be reaped by
// its new parent (here PID 1, which may reap late): it runs no more code.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestCancelStopsTheBuild(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	v, pidfile := startSleeper(t, fx, git)
	pid := readPid(t, pidfile)
	// The log can be read while the version runs.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fx.logs(aliceToken, v.ID), "$ sleep 300 & echo $! > $PIDFILE; wait") {
		if time.Now().After(deadline) {
			t.Fatalf("the running version's log does not show its command:\n%s", fx.logs(aliceToken, v.ID))
		}
		time.Sleep(20 * time.Millisecond)
	}

	var out versionOut
	if code := fx.call(aliceToken, "POST", "/api/v1/versions/"+v.ID+"/cancel", nil, &out); code != http.StatusOK || out.Status != "cancelled" {
		t.Fatalf("cancel: %d %+v", code, out)
	}
	waitGone(t, pid)
	v = fx.waitVersion(aliceToken, v.ID)
	if v.Status != "cancelled" {
		t.Fatalf("status %s", v.Status)
	}
	if st, _ := v.stage("pre_build"); st != "cancelled" {
		t.Fatalf("pre_build stage %s", st)
	}
	if code := fx.call(aliceToken, "POST", "/api/v1/versions/"+v.ID+"/cancel", nil, &out); code != http.StatusConflict {
		t.Fatalf("cancelling a finished version: %d", code)
	}
}

func TestTimeoutFailsTheBuild(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), func(c *stack.Config) { c.BuildTimeout = 2 * time.Second })
	v, pidfile := startSleeper(t, fx, git)
	pid := readPid(t, pidfile)
	v = fx.waitVersion(aliceToken, v.ID)
	if v.Status != "failed" || !strings.Contains(v.Error, "timed out after 2s") {
		t.Fatalf("version %s %q", v.Status, v.Error)
	}
	waitGone(t, pid)
}

// Deleting a service while it builds stops the build, and nothing of the
// version is left behind — not even log chunks its runner wrote late.
func TestDeleteWhileBuilding(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	v, pidfile := startSleeper(t, fx, git)
	pid := readPid(t, pidfile)
	if code := fx.call(aliceToken, "DELETE", "/api/v1/services/"+v.ServiceID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	waitGone(t, pid)
	if code := fx.call(aliceToken, "GET", "/api/v1/versions/"+v.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("version after delete: %d", code)
	}
	dir := filepath.Join(fx.Config.DataDir, "blobs", "logs", v.ID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		chunks, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		if len(chunks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log chunks left behind: %v", chunks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FORNAX_MAX_BUILDS bounds the builds under way; the rest wait queued and
// all of them finish.
func TestMaxBuildsBoundsConcurrency(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), func(c *stack.Config) { c.MaxBuilds = 2 })
	journal := filepath.Join(t.TempDir(), "journal")
	w := git.NewRepo(t, "busy")
	w.WriteFile(t, "Dockerfile", "FROM scratch\n")
	// Each build notes its start and end around a short sleep.
	w.WriteFile(t, "caicloud.yml", "pre_build:\n  environment:\n    JOURNAL: "+journal+"\n  commands:\n    - echo start >> $JOURNAL; sleep 1; echo end >> $JOURNAL\n")
	w.Commit(t, "busy")
	w.Push(t, "refs/heads/main")
	svc := fx.createService(aliceToken, "busy", git, "busy", "s3cret-busy")
	var ids []string
	for i := 0; i < 5; i++ {
		var v versionOut
		if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID}, &v); code != http.StatusAccepted {
			t.Fatalf("version %d: %d", i, code)
		}
		ids = append(ids, v.ID)
	}
	for _, id := range ids {
		if v := fx.waitVersion(aliceToken, id); v.Status != "success" {
			t.Fatalf("version %s: %s %s", id, v.Status, v.Error)
		}
	}
	b, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	running, most := 0, 0
	for _, line := range strings.Fields(string(b)) {
		if line == "start" {
			running++
		} else {
			running--
		}
		most = max(most, running)
	}
	if most != 2 {
		t.Fatalf("at most %d builds ran at once, want exactly 2 (journal %q)", most, b)
	}
}

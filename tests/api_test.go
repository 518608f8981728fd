package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fornax-dev/fornax/internal/testenv"
	"github.com/fornax-dev/fornax/local/stack"
)

func TestAuthAndIsolation(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	svc := fx.createService(aliceToken, "app", git, "app", "s3cret-iso")
	scratchRepo(t, git, "app", "a\n")
	var v versionOut
	fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID}, &v)
	fx.waitVersion(aliceToken, v.ID)

	for _, tok := range []string{"", "not-a-token-at-all"} {
		if code := fx.call(tok, "GET", "/api/v1/services", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("token %q: %d", tok, code)
		}
	}
	// Bob cannot see, change, build or cancel Alice's things, and cannot
	// tell them from things that do not exist.
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/services/" + svc.ID},
		{"PATCH", "/api/v1/services/" + svc.ID},
		{"DELETE", "/api/v1/services/" + svc.ID},
		{"GET", "/api/v1/services/" + svc.ID + "/versions"},
		{"GET", "/api/v1/versions/" + v.ID},
		{"GET", "/api/v1/versions/" + v.ID + "/logs"},
		{"POST", "/api/v1/versions/" + v.ID + "/cancel"},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"description": "mine now"}
		}
		if code := fx.call(bobToken, c.method, c.path, body, nil); code != http.StatusNotFound {
			t.Errorf("bob %s %s: %d, want 404", c.method, c.path, code)
		}
	}
	if code := fx.call(bobToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID}, nil); code != http.StatusNotFound {
		t.Errorf("bob builds alice's service: %d", code)
	}
	var list struct{ Items []serviceOut }
	fx.call(bobToken, "GET", "/api/v1/services", nil, &list)
	if len(list.Items) != 0 {
		t.Fatalf("bob lists %d services", len(list.Items))
	}
	// Bob may use the same service name: names are per user.
	fx.createService(bobToken, "app", git, "app", "s3cret-bob")
	var got serviceOut
	fx.call(aliceToken, "GET", "/api/v1/services/"+svc.ID, nil, &got)
	if got.Name != "app" {
		t.Fatalf("alice's service changed: %+v", got)
	}
}

func TestServiceLifecycle(t *testing.T) {
	git := testenv.NewGitServer(t)
	fx := startFornax(t, t.TempDir(), nil)

	// No secret given: one is generated and shown once.
	var svc serviceOut
	code := fx.call(aliceToken, "POST", "/api/v1/services", map[string]any{
		"name": "web", "repository": map[string]any{"url": git.RepoURL("web"), "vcs": "git", "username": git.Username, "token": git.Password},
	}, &svc)
	if code != http.StatusCreated || len(svc.Webhook.Secret) < 32 || !strings.HasSuffix(svc.Webhook.URL, "/webhooks/github/"+svc.ID) {
		t.Fatalf("create: %d %+v", code, svc)
	}
	raw := fx.rawGet(aliceToken, "/api/v1/services/"+svc.ID)
	if strings.Contains(raw, svc.Webhook.Secret) || strings.Contains(raw, git.Password) {
		t.Fatalf("a secret leaks from GET: %s", raw)
	}
	if !strings.Contains(raw, `"has_token": true`) {
		t.Fatalf("GET does not say a token is set: %s", raw)
	}
	// Secrets are encrypted at rest too.
	fx.Close()
	data, _ := os.ReadFile(filepath.Join(fx.Config.DataDir, "docstore.json"))
	if len(data) == 0 || strings.Contains(string(data), git.Password) || strings.Contains(string(data), svc.Webhook.Secret) {
		t.Fatalf("the records file holds a secret in clear (or is empty: %d bytes)", len(data))
	}
	fx = restartFornax(t, fx.cfg)

	// Same name again: 409.
	var e serviceOut
	if code := fx.call(aliceToken, "POST", "/api/v1/services", map[string]any{"name": "web", "repository": map[string]any{"url": git.RepoURL("x")}}, &e); code != http.StatusConflict {
		t.Fatalf("duplicate name: %d %+v", code, e)
	}
	// Bad input: clear 400s.
	for _, body := range []string{`{"name":"Web!","repository":{"url":"http://x"}}`, `{"name":"ok"}`, `{"name":"ok","repository":{"url":"http://x"},"colour":"red"}`, `not json`} {
		if code := fx.post(aliceToken, "/api/v1/services", body); code != http.StatusBadRequest {
			t.Errorf("body %s: %d, want 400", body, code)
		}
	}
	// An unreachable repository, a wrong password and an unknown VCS are
	// recorded, not refused.
	closed := fmt.Sprintf("http://127.0.0.1:%d/git/none.git", freePort(t))
	for _, c := range []struct{ name, url, vcs, token, want string }{
		{"gone", closed, "git", "", "missing"},
		{"wrongpw", git.RepoURL("web"), "git", "wrong-password", "missing"},
		{"hg", git.RepoURL("web"), "mercurial", "", "unknownvcs"},
	} {
		var s serviceOut
		code := fx.call(aliceToken, "POST", "/api/v1/services", map[string]any{
			"name": c.name, "repository": map[string]any{"url": c.url, "vcs": c.vcs, "username": git.Username, "token": c.token},
		}, &s)
		if code != http.StatusCreated || s.Repository.Status != c.want {
			t.Errorf("%s: %d status %q (%s), want %s", c.name, code, s.Repository.Status, s.Repository.Reason, c.want)
		}
		if c.token != "" && strings.Contains(s.Repository.Reason, c.token) {
			t.Errorf("%s: the token is in the status reason", c.name)
		}
	}
	// Building from an unreachable repository is refused with the reason.
	var gone struct{ Items []serviceOut }
	fx.call(aliceToken, "GET", "/api/v1/services", nil, &gone)
	if len(gone.Items) != 4 {
		t.Fatalf("%d services listed", len(gone.Items))
	}
	for _, s := range gone.Items {
		if s.Name == "gone" {
			var e struct{ Error string }
			if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": s.ID}, &e); code != http.StatusUnprocessableEntity || !strings.Contains(e.Error, "127.0.0.1") {
				t.Fatalf("version of an unreachable repository: %d %q", code, e.Error)
			}
		}
	}

	// PATCH: fix the repository, and its status is checked again.
	scratchRepo(t, git, "web", "a\n")
	var patched serviceOut
	if code := fx.call(aliceToken, "PATCH", "/api/v1/services/"+svc.ID, map[string]any{"description": "the web app"}, &patched); code != 200 {
		t.Fatalf("patch: %d", code)
	}
	// Renaming onto another service's name is refused; a free name is taken
	// and the old one freed.
	if code := fx.call(aliceToken, "PATCH", "/api/v1/services/"+svc.ID, map[string]any{"name": "hg"}, nil); code != http.StatusConflict {
		t.Fatalf("rename onto a taken name: %d", code)
	}
	if code := fx.call(aliceToken, "PATCH", "/api/v1/services/"+svc.ID, map[string]any{"name": "site"}, &patched); code != 200 || patched.Name != "site" {
		t.Fatalf("rename: %d %+v", code, patched)
	}
	if code := fx.call(aliceToken, "PATCH", "/api/v1/services/"+svc.ID, map[string]any{"name": "web"}, &patched); code != 200 || patched.Name != "web" {
		t.Fatalf("rename back: %d %+v", code, patched)
	}
	for _, s := range gone.Items {
		if s.Name == "wrongpw" {
			fx.call(aliceToken, "PATCH", "/api/v1/services/"+s.ID, map[string]any{"repository": map[string]any{"token": git.Password}}, &patched)
			if patched.Repository.Status != "healthy" {
				t.Fatalf("after fixing the token: %+v", patched.Repository)
			}
		}
	}

	// Delete: versions and logs go with the service.
	var v versionOut
	fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID, "name": "first-build"}, &v)
	v = fx.waitVersion(aliceToken, v.ID)
	if v.Name != "first-build" || v.Status != "success" {
		t.Fatalf("named version %+v", v)
	}
	if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID, "name": "first-build"}, nil); code != http.StatusConflict {
		t.Fatalf("reusing a version name: %d", code)
	}
	if code := fx.call(aliceToken, "DELETE", "/api/v1/services/"+svc.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code := fx.call(aliceToken, "GET", "/api/v1/versions/"+v.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("version after delete: %d", code)
	}
	if code := fx.call(aliceToken, "GET", "/api/v1/services/"+svc.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("service after delete: %d", code)
	}
	logs, _ := filepath.Glob(filepath.Join(fx.Config.DataDir, "blobs", "logs", v.ID, "*"))
	if len(logs) != 0 {
		t.Fatalf("log chunks left after delete: %v", logs)
	}
	// The name is free again.
	fx.createService(aliceToken, "web", git, "web", "s3cret-again")
}

func (f *fornax) rawGet(token, path string) string {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	json.NewDecoder(resp.Body).Decode(&v)
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func (f *fornax) post(token, path, body string) int {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRestartKeepsEverything stops Fornax and starts it again on the same
// data directory: services, versions, logs and images are all still there,
// and a version that was running when it stopped is failed with a reason.
func TestRestartKeepsEverything(t *testing.T) {
	git := testenv.NewGitServer(t)
	dir := t.TempDir()
	fx := startFornax(t, dir, func(c *stack.Config) { c.MaxBuilds = 1 })
	svc := fx.createService(aliceToken, "app", git, "app", "s3cret-restart")
	w, _ := scratchRepo(t, git, "app", "kept\n")
	code, out := fx.webhook(svc.ID, "push", "r-1", pushPayload(t, w, "refs/heads/main"), "s3cret-restart")
	if code != http.StatusAccepted {
		t.Fatalf("webhook %d %v", code, out)
	}
	done := fx.waitVersion(aliceToken, out["version_id"].(string))
	log := fx.logs(aliceToken, done.ID)

	slow, pidfile := startSleeper(t, fx, git)
	pid := readPid(t, pidfile)
	// The only build slot is taken: this one waits in the queue.
	var waiting versionOut
	fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID, "name": "waiting"}, &waiting)
	if waiting.Status != "queued" {
		t.Fatalf("second version %s", waiting.Status)
	}
	if err := fx.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitGone(t, pid)

	fx = restartFornax(t, fx.cfg)
	var again versionOut
	fx.call(aliceToken, "GET", "/api/v1/versions/"+done.ID, nil, &again)
	if again.Status != "success" || again.Image.Digest != done.Image.Digest {
		t.Fatalf("after restart: %+v", again)
	}
	if got := fx.logs(aliceToken, done.ID); got != log {
		t.Fatalf("log changed across restart:\n%s\n---\n%s", log, got)
	}
	img := pull(t, done.Image.Ref+"@"+done.Image.Digest)
	if got, _ := fileInImage(t, img, "a"); got != "kept\n" {
		t.Fatalf("image file %q", got)
	}
	slow = fx.waitVersion(aliceToken, slow.ID)
	if slow.Status != "failed" || !strings.Contains(slow.Error, "Fornax stopped") {
		t.Fatalf("the interrupted version: %s %q", slow.Status, slow.Error)
	}
	// The queued version was queued again and built.
	if waiting = fx.waitVersion(aliceToken, waiting.ID); waiting.Status != "success" {
		t.Fatalf("the queued version after restart: %s %q", waiting.Status, waiting.Error)
	}
	// The delivery is remembered across the restart too.
	if code, out := fx.webhook(svc.ID, "push", "r-1", pushPayload(t, w, "refs/heads/main"), "s3cret-restart"); code != http.StatusOK || out["duplicate"] != true {
		t.Fatalf("repeated delivery after restart: %d %v", code, out)
	}
}

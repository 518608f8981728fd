// Package tests holds Fornax's end-to-end suites. They start the same
// wiring `make run` starts, in-process, against real dependencies: git
// repositories served by git http-backend, the embedded OCI registry, the
// git client, and the process executor running real shell commands.
package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/fornax-dev/fornax/internal/forge/github"
	"github.com/fornax-dev/fornax/internal/testenv"
	"github.com/fornax-dev/fornax/local/stack"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789"
)

type fornax struct {
	*stack.Stack
	t   testing.TB
	cfg stack.Config
}

// startFornax starts local mode on free loopback ports in dir.
func startFornax(t testing.TB, dir string, mod func(*stack.Config)) *fornax {
	t.Helper()
	cfg := stack.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.RegistryAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.DataDir = dir
	cfg.APITokens = "alice=" + aliceToken + ",bob=" + bobToken
	cfg.MaxBuilds = 2
	if mod != nil {
		mod(&cfg)
	}
	return restartFornax(t, cfg)
}

func restartFornax(t testing.TB, cfg stack.Config) *fornax {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := stack.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start fornax: %v", err)
	}
	f := &fornax{Stack: s, t: t, cfg: cfg}
	t.Cleanup(func() { s.Close() })
	return f
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// call makes an API request and decodes a JSON answer into out (if not nil).
func (f *fornax) call(token, method, path string, body any, out any) int {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			f.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	if resp.StatusCode >= 400 && !strings.Contains(string(data), `"error"`) {
		f.t.Errorf("%s %s: %d without a JSON error: %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

type serviceOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Repository struct {
		URL      string `json:"url"`
		VCS      string `json:"vcs"`
		Status   string `json:"status"`
		Reason   string `json:"status_reason"`
		HasToken bool   `json:"has_token"`
	} `json:"repository"`
	Webhook struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	} `json:"webhook"`
	Error string `json:"error"`
}

type versionOut struct {
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Trigger   string `json:"trigger"`
	Commit    struct {
		SHA, Ref, Message, Author string
	} `json:"commit"`
	Image struct {
		Ref    string `json:"ref"`
		Digest string `json:"digest"`
	} `json:"image"`
	Stages []struct {
		Name       string     `json:"name"`
		Status     string     `json:"status"`
		StartedAt  *time.Time `json:"started_at"`
		FinishedAt *time.Time `json:"finished_at"`
		Error      string     `json:"error"`
	} `json:"stages"`
	Error string `json:"error"`
}

func (v *versionOut) stage(name string) (status, errMsg string) {
	for _, s := range v.Stages {
		if s.Name == name {
			return s.Status, s.Error
		}
	}
	return "absent", ""
}

// createService registers a repository of the git server for a user.
func (f *fornax) createService(token, name string, git *testenv.GitServer, repo, secret string) serviceOut {
	f.t.Helper()
	var out serviceOut
	code := f.call(token, "POST", "/api/v1/services", map[string]any{
		"name": name, "description": "test service",
		"repository":     map[string]any{"url": git.RepoURL(repo), "vcs": "git", "username": git.Username, "token": git.Password},
		"webhook_secret": secret,
	}, &out)
	if code != http.StatusCreated {
		f.t.Fatalf("create service: %d %+v", code, out)
	}
	return out
}

// waitVersion polls a version until it is finished, or fails the test
// after a generous bound (a hang, not a speed check).
func (f *fornax) waitVersion(token, id string) versionOut {
	f.t.Helper()
	return f.waitVersionStatus(token, id, "success", "failed", "cancelled")
}

func (f *fornax) waitVersionStatus(token, id string, statuses ...string) versionOut {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var v versionOut
		if code := f.call(token, "GET", "/api/v1/versions/"+id, nil, &v); code != 200 {
			f.t.Fatalf("get version %s: %d", id, code)
		}
		for _, s := range statuses {
			if v.Status == s {
				return v
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("version %s still %s after 60s; want %v\nlog:\n%s", id, v.Status, statuses, f.logs(token, id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fornax) logs(token, id string) string {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.URL+"/api/v1/versions/"+id+"/logs", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		f.t.Fatalf("logs of %s: %d %s", id, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		f.t.Fatalf("logs content type %q", ct)
	}
	return string(b)
}

// pushPayload is a GitHub push event for a real commit of a work tree.
func pushPayload(t testing.TB, w *testenv.WorkTree, ref string) []byte {
	t.Helper()
	sha := w.Git(t, "rev-parse", "HEAD")
	msg := w.Git(t, "log", "-1", "--format=%B")
	name := w.Git(t, "log", "-1", "--format=%an")
	email := w.Git(t, "log", "-1", "--format=%ae")
	p := map[string]any{
		"ref": ref, "before": strings.Repeat("0", 39) + "1", "after": sha, "created": false, "deleted": false,
		"repository": map[string]any{"full_name": "alice/app", "clone_url": w.RemoteURL},
		"head_commit": map[string]any{"id": sha, "message": msg, "timestamp": time.Now().Format(time.RFC3339),
			"author": map[string]any{"name": name, "email": email}},
	}
	b, _ := json.Marshal(p)
	return b
}

// webhook posts a GitHub delivery signed with secret ("" = unsigned).
func (f *fornax) webhook(serviceID, event, delivery string, body []byte, secret string) (int, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.URL+"/webhooks/github/"+serviceID, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", github.Sign(body, []byte(secret)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// pushBase puts a small base image into the registry: one layer holding
// /etc/base-release and a PATH in its config.
func pushBase(t testing.TB, registry, repo string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"etc/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	content := []byte("base 1.0\n")
	tw.WriteHeader(&tar.Header{Name: "etc/base-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
	tw.Write(content)
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref := registry + "/" + repo
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push base image: %v", err)
	}
	return ref
}

// pull fetches an image by reference over plain HTTP (loopback registry).
func pull(t testing.TB, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// fileInImage reads a file from the image's flattened filesystem.
func fileInImage(t testing.TB, img v1.Image, path string) (string, bool) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == strings.TrimPrefix(path, "/") {
			b, _ := io.ReadAll(tr)
			return string(b), true
		}
	}
}

// scratchRepo pushes to main a repository whose Dockerfile copies one file,
// a, into a FROM scratch image. It returns the work tree and the commit.
func scratchRepo(t testing.TB, git *testenv.GitServer, name, content string) (*testenv.WorkTree, string) {
	t.Helper()
	w := git.NewRepo(t, name)
	w.WriteFile(t, "Dockerfile", "FROM scratch\nCOPY a /a\n")
	w.WriteFile(t, "a", content)
	sha := w.Commit(t, "first")
	w.Push(t, "refs/heads/main")
	return w, sha
}

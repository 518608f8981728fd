package registry

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sirupsen/logrus"
)

func startRegistry(t *testing.T, dir string) *Registry {
	t.Helper()
	r, err := Start(t.Context(), "127.0.0.1:0", dir)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatalf("ParseReference(%q): %v", s, err)
	}
	return r
}

// pullAndCheck pulls ref and checks that it is want: same manifest digest,
// every blob present with the right content.
func pullAndCheck(t *testing.T, r name.Reference, want v1.Image) {
	t.Helper()
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", r, err)
	}
	gotDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := want.Digest()
	if gotDigest != wantDigest {
		t.Fatalf("pull %s: digest %s, want %s", r, gotDigest, wantDigest)
	}
	checkBlobs(t, r, img, want)
}

// checkBlobs downloads the config and every layer of got and compares them
// byte for byte with want's.
func checkBlobs(t *testing.T, r name.Reference, got, want v1.Image) {
	t.Helper()
	gotConfig, err := got.RawConfigFile()
	if err != nil {
		t.Fatalf("%s: config blob: %v", r, err)
	}
	wantConfig, _ := want.RawConfigFile()
	if !bytes.Equal(gotConfig, wantConfig) {
		t.Fatalf("%s: config blob differs", r)
	}
	gotLayers, err := got.Layers()
	if err != nil {
		t.Fatalf("%s: layers: %v", r, err)
	}
	wantLayers, _ := want.Layers()
	if len(gotLayers) != len(wantLayers) {
		t.Fatalf("%s: %d layers, want %d", r, len(gotLayers), len(wantLayers))
	}
	for i := range gotLayers {
		d, _ := wantLayers[i].Digest()
		if gd, _ := gotLayers[i].Digest(); gd != d {
			t.Fatalf("%s: layer %d is %s, want %s", r, i, gd, d)
		}
		if !bytes.Equal(readBlob(t, gotLayers[i]), readBlob(t, wantLayers[i])) {
			t.Fatalf("%s: layer %s differs", r, d)
		}
	}
}

func readBlob(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc) // remote layers check the digest while reading
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	return b
}

func TestPushPullAndRestart(t *testing.T) {
	dir := t.TempDir()
	r1 := startRegistry(t, dir)
	if host, _, err := net.SplitHostPort(r1.Addr()); err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q", r1.Addr())
	}

	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	tag := ref(t, r1.Addr()+"/fornax/app:build-1")
	if err := remote.Write(tag, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push: %v", err)
	}
	pullAndCheck(t, tag, img)
	pullAndCheck(t, ref(t, r1.Addr()+"/fornax/app@"+digest.String()), img)

	if err := r1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get("http://" + r1.Addr() + "/v2/"); err == nil {
		t.Fatal("registry still answering after Close")
	}

	// Same directory, new process-like start on a new port: the tag, the
	// manifest and the blobs are still there.
	r2 := startRegistry(t, dir)
	pullAndCheck(t, ref(t, r2.Addr()+"/fornax/app:build-1"), img)
	pullAndCheck(t, ref(t, r2.Addr()+"/fornax/app@"+digest.String()), img)

	// And each blob by itself.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		blob, err := remote.Layer(ref(t, r2.Addr()+"/fornax/app@"+d.String()).(name.Digest))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readBlob(t, blob), readBlob(t, l)) {
			t.Fatalf("blob %s differs after restart", d)
		}
	}
}

func TestDeleteTag(t *testing.T) {
	r := startRegistry(t, t.TempDir())
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag := ref(t, r.Addr()+"/fornax/tmp:old")
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := remote.Delete(tag); err != nil {
		t.Fatalf("delete tag: %v", err)
	}
	_, err = remote.Head(tag)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD after delete: %v, want 404", err)
	}
	// Deleting by digest works too.
	digest, _ := img.Digest()
	byDigest := ref(t, r.Addr()+"/fornax/tmp@"+digest.String())
	if err := remote.Delete(byDigest); err != nil {
		t.Fatalf("delete manifest: %v", err)
	}
	if _, err := remote.Head(byDigest); err == nil {
		t.Fatal("manifest still there after delete")
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{
		"0.0.0.0:7098",
		"[::]:7098",
		"10.1.2.3:7098",
		"192.168.0.10:0",
		"8.8.8.8:0",
		"registry.example.com:7098",
	} {
		r, err := Start(t.Context(), addr, t.TempDir())
		if err == nil {
			r.Close()
			t.Errorf("Start(%q) succeeded, want a refusal", addr)
			continue
		}
		if !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Start(%q): error %q does not explain the loopback rule", addr, err)
		}
	}
	if _, err := Start(t.Context(), "127.0.0.1", t.TempDir()); err == nil {
		t.Error("Start without a port succeeded")
	}
	if _, err := Start(t.Context(), "127.0.0.1:0", ""); err == nil {
		t.Error("Start without a directory succeeded")
	}
}

func TestLoopbackAddresses(t *testing.T) {
	tests := map[string]string{
		"":               DefaultAddr,
		":0":             "127.0.0.1:0",
		"localhost:0":    "127.0.0.1:0",
		"127.0.0.1:7098": "127.0.0.1:7098",
		"127.0.0.2:7098": "127.0.0.2:7098",
		"[::1]:7098":     "[::1]:7098",
	}
	for in, want := range tests {
		got, err := loopbackAddr(in)
		if err != nil || got != want {
			t.Errorf("loopbackAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// ":0" binds loopback, not every interface.
	r2, err := Start(t.Context(), ":0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if host, _, _ := net.SplitHostPort(r2.Addr()); host != "127.0.0.1" {
		t.Errorf("Start(\":0\") listens on %q", r2.Addr())
	}
}

func TestStopsWhenContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r, err := Start(ctx, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	resp, err := http.Get("http://" + r.Addr() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("/v2/: %s %v", resp.Status, resp.Header)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("registry still listening after its context was cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// distribution logs every request through logrus (Info) and every 404, like
// the HEAD before a push, at Error level. None of that may reach the
// terminal; logrus users outside distribution must still be heard.
func TestDistributionLogsAreQuiet(t *testing.T) {
	var logBuf bytes.Buffer
	std := logrus.StandardLogger()
	oldOut := std.Out
	std.SetOutput(&logBuf)
	defer std.SetOutput(oldOut)

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldStdout := os.Stdout
	os.Stdout = stdoutW
	captured := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(stdoutR)
		captured <- b
	}()

	func() {
		defer func() { os.Stdout = oldStdout }()
		r, err := Start(t.Context(), "127.0.0.1:0", t.TempDir())
		if err != nil {
			t.Errorf("Start: %v", err)
			return
		}
		defer r.Close()
		img, _ := random.Image(256, 1)
		tag := ref(t, r.Addr()+"/quiet/app:v1")
		if err := remote.Write(tag, img); err != nil {
			t.Errorf("push: %v", err)
		}
		if _, err := remote.Image(tag); err != nil {
			t.Errorf("pull: %v", err)
		}
		if _, err := remote.Head(ref(t, r.Addr()+"/quiet/app:missing")); err == nil {
			t.Error("HEAD of a missing tag succeeded")
		}
	}()
	stdoutW.Close()
	out := <-captured

	if len(out) != 0 {
		t.Errorf("registry wrote to stdout:\n%s", out)
	}
	if logBuf.Len() != 0 {
		t.Errorf("distribution logged through logrus:\n%s", logBuf.String())
	}

	logrus.Info("not from distribution")
	if !strings.Contains(logBuf.String(), "not from distribution") {
		t.Errorf("other logrus output was swallowed: %q", logBuf.String())
	}

	// With slog at Debug level, distribution's entries are available there.
	logBuf.Reset()
	var slogBuf bytes.Buffer
	oldDefault := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&slogBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(oldDefault)
	r := startRegistry(t, t.TempDir())
	if _, err := remote.Head(ref(t, r.Addr()+"/quiet/app:missing")); err == nil {
		t.Error("HEAD of a missing tag succeeded")
	}
	r.Close()
	if !strings.Contains(slogBuf.String(), "registry: response completed with error") {
		t.Errorf("distribution entries not forwarded to slog at debug level:\n%s", slogBuf.String())
	}
	if logBuf.Len() != 0 {
		t.Errorf("distribution logged through logrus:\n%s", logBuf.String())
	}
}

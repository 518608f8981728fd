package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// startRegistry runs go-containerregistry's OCI registry on 127.0.0.1 and
// returns its host:port.
func startRegistry(tb testing.TB) string {
	tb.Helper()
	quiet := log.New(io.Discard, "", 0)
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(quiet)))
	// The client first tries TLS against loopback; the failed handshakes
	// are expected and not worth printing.
	srv.Config.ErrorLog = quiet
	srv.Start()
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// writeContext creates files (path → contents) under a new directory. A
// path ending in "/" makes a directory.
func writeContext(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func tryBuild(t testing.TB, dir string, args map[string]string) (Artifact, string, error) {
	t.Helper()
	var logBuf bytes.Buffer
	art, err := Daemonless{}.Build(context.Background(), Request{ContextDir: dir, BuildArgs: args, Log: &logBuf})
	return art, logBuf.String(), err
}

func mustBuild(t testing.TB, dir string, args map[string]string) (Artifact, string) {
	t.Helper()
	art, logs, err := tryBuild(t, dir, args)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, logs)
	}
	return art, logs
}

// pushAndPull pushes art to ref and pulls it back by the digest Push
// returned, checking that it is the artifact's digest.
func pushAndPull(t testing.TB, art Artifact, ref string) v1.Image {
	t.Helper()
	want, err := art.Digest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := art.Push(context.Background(), ref, nil)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got != want {
		t.Fatalf("Push returned %s, Digest() said %s", got, want)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r.Context().Digest(got))
	if err != nil {
		t.Fatalf("pulling by digest: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != want {
		t.Fatalf("pulled %s, built %s", d, want)
	}
	return img
}

type file struct {
	hdr  *tar.Header
	data string
}

// layerFiles lists one layer's entries by clean absolute path.
func layerFiles(t testing.TB, l v1.Layer) map[string]file {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return tarFiles(t, rc)
}

func tarFiles(t testing.TB, r io.Reader) map[string]file {
	t.Helper()
	out := map[string]file{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Clean("/"+hdr.Name)] = file{hdr, string(b)}
	}
}

// imageFiles lists the merged filesystem of img.
func imageFiles(t testing.TB, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	return tarFiles(t, rc)
}

func configOf(t testing.TB, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

func layersOf(t testing.TB, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func wantFile(t testing.TB, files map[string]file, p, data string, mode int64, uid, gid int) {
	t.Helper()
	f, ok := files[p]
	if !ok {
		t.Errorf("%s missing; have %v", p, slices.Sorted(mapKeys(files)))
		return
	}
	if f.hdr.Typeflag != tar.TypeReg {
		t.Errorf("%s: type %q, want a regular file", p, f.hdr.Typeflag)
	}
	if f.data != data {
		t.Errorf("%s: contents %q, want %q", p, f.data, data)
	}
	if f.hdr.Mode&0o7777 != mode {
		t.Errorf("%s: mode %o, want %o", p, f.hdr.Mode, mode)
	}
	if f.hdr.Uid != uid || f.hdr.Gid != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, f.hdr.Uid, f.hdr.Gid, uid, gid)
	}
	if !f.hdr.ModTime.Equal(time.Unix(0, 0)) {
		t.Errorf("%s: mtime %v, want the Unix epoch", p, f.hdr.ModTime)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestScratchCopyAndConfig(t *testing.T) {
	host := startRegistry(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM scratch
COPY hello.txt /hello.txt
COPY app /srv/app
ENV GREETING=hi NAME="fornax app"
LABEL org.example.team=ci "with space"="yes"
WORKDIR /srv
USER 1000:1000
EXPOSE 8080 9090/udp
ENTRYPOINT ["/srv/app/main"]
CMD ["--port", "8080"]
`,
		"hello.txt":        "hello\n",
		"app/main":         "#!/bin/true\n",
		"app/sub/data.txt": "data\n",
	})
	if err := os.Chmod(filepath.Join(dir, "app/main"), 0o755); err != nil {
		t.Fatal(err)
	}
	art, logs := mustBuild(t, dir, nil)
	for _, line := range []string{"Step 1/10 : FROM scratch", "Step 2/10 : COPY hello.txt /hello.txt", "Step 10/10 : CMD [\"--port\", \"8080\"]"} {
		if !strings.Contains(logs, line+"\n") {
			t.Errorf("log lacks %q:\n%s", line, logs)
		}
	}

	img := pushAndPull(t, art, host+"/alice/scratch:v1")
	cf := configOf(t, img)
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v, want the epoch", cf.Created)
	}
	wantEnv := []string{"PATH=" + defaultPath, "GREETING=hi", "NAME=fornax app"}
	if !slices.Equal(c.Env, wantEnv) {
		t.Errorf("env %q, want %q", c.Env, wantEnv)
	}
	if c.Labels["org.example.team"] != "ci" || c.Labels["with space"] != "yes" {
		t.Errorf("labels %v", c.Labels)
	}
	if c.WorkingDir != "/srv" || c.User != "1000:1000" {
		t.Errorf("workdir %q user %q", c.WorkingDir, c.User)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["9090/udp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if !slices.Equal(c.Entrypoint, []string{"/srv/app/main"}) || !slices.Equal(c.Cmd, []string{"--port", "8080"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}

	// One layer per COPY; WORKDIR /srv already exists, so it adds none.
	layers := layersOf(t, img)
	if len(layers) != 2 {
		t.Fatalf("%d layers, want 2", len(layers))
	}
	if len(cf.History) != 9 {
		t.Errorf("%d history entries, want 9", len(cf.History))
	}
	first := layerFiles(t, layers[0])
	wantFile(t, first, "/hello.txt", "hello\n", 0o644, 0, 0)
	if len(first) != 1 {
		t.Errorf("first layer has %v, want only hello.txt", slices.Sorted(mapKeys(first)))
	}
	second := layerFiles(t, layers[1])
	wantFile(t, second, "/srv/app/main", "#!/bin/true\n", 0o755, 0, 0)
	wantFile(t, second, "/srv/app/sub/data.txt", "data\n", 0o644, 0, 0)
	for _, d := range []string{"/srv", "/srv/app", "/srv/app/sub"} {
		if f, ok := second[d]; !ok || f.hdr.Typeflag != tar.TypeDir {
			t.Errorf("%s: want a directory entry in the layer", d)
		}
	}
}

func TestShellFormAndWorkdirLayer(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM scratch
CMD ["inherited"]
WORKDIR app
WORKDIR data
ENTRYPOINT exec /app/server --verbose
ENV WHO=fornax
COPY <<EOF motd
hello $WHO
EOF
`,
	})
	art, _ := mustBuild(t, dir, nil)
	img := art.(*artifact).img
	c := configOf(t, img).Config
	if want := []string{"/bin/sh", "-c", "exec /app/server --verbose"}; !slices.Equal(c.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", c.Entrypoint, want)
	}
	// CMD set in the same stage survives a later ENTRYPOINT.
	if !slices.Equal(c.Cmd, []string{"inherited"}) {
		t.Errorf("cmd %q", c.Cmd)
	}
	if c.WorkingDir != "/app/data" {
		t.Errorf("workdir %q, want /app/data (relative WORKDIRs stack)", c.WorkingDir)
	}
	files := imageFiles(t, img)
	wantFile(t, files, "/app/data/motd", "hello fornax\n", 0o644, 0, 0)
	for _, d := range []string{"/app", "/app/data"} {
		if f, ok := files[d]; !ok || f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode&0o777 != 0o755 {
			t.Errorf("%s: want a 0755 directory, have %+v", d, f.hdr)
		}
	}
}

// pushBase pushes a small base image: a layer with a tool, a sticky /tmp,
// a /bin symlink as in merged-/usr distributions, and PATH in its config.
func pushBase(t testing.TB, ref string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len("tool v1\n"))},
		{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin", Mode: 0o777},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	}
	for _, h := range entries {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			io.WriteString(tw, "tool v1\n")
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"}
	cf.Config.Cmd = []string{"tool"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFromBaseImage(t *testing.T) {
	host := startRegistry(t)
	base := pushBase(t, host+"/base/tools:1")
	dir := writeContext(t, map[string]string{
		"Dockerfile": fmt.Sprintf(`FROM %s/base/tools:1
ENV PATH=/opt/app/bin:$PATH
COPY --chown=1000:2000 --chmod=750 run.sh /opt/app/bin/run.sh
COPY notes.txt /tmp/
COPY tool2 /bin/
ENTRYPOINT ["run.sh"]
`, host),
		"run.sh":    "#!/bin/sh\necho run\n",
		"notes.txt": "notes\n",
		"tool2":     "tool v2\n",
	})
	art, _ := mustBuild(t, dir, nil)
	img := pushAndPull(t, art, host+"/alice/app:v1")

	baseLayers, newLayers := layersOf(t, base), layersOf(t, img)
	if len(newLayers) != len(baseLayers)+3 {
		t.Fatalf("%d layers, want the base's %d plus 3", len(newLayers), len(baseLayers))
	}
	bd, _ := baseLayers[0].Digest()
	nd, _ := newLayers[0].Digest()
	if bd != nd {
		t.Errorf("base layer %s became %s", bd, nd)
	}

	cf := configOf(t, img)
	wantEnv := []string{"PATH=/opt/app/bin:/usr/local/bin:/usr/bin", "LANG=C.UTF-8"}
	if !slices.Equal(cf.Config.Env, wantEnv) {
		t.Errorf("env %q, want %q", cf.Config.Env, wantEnv)
	}
	if cf.Config.Cmd != nil {
		t.Errorf("cmd %q: an inherited CMD must be dropped by ENTRYPOINT", cf.Config.Cmd)
	}

	runLayer := layerFiles(t, newLayers[1])
	wantFile(t, runLayer, "/opt/app/bin/run.sh", "#!/bin/sh\necho run\n", 0o750, 1000, 2000)
	for _, d := range []string{"/opt", "/opt/app", "/opt/app/bin"} {
		if f := runLayer[d]; f.hdr == nil || f.hdr.Uid != 1000 || f.hdr.Gid != 2000 {
			t.Errorf("%s: want a directory created for --chown's owner, have %+v", d, f.hdr)
		}
	}

	// Existing directories are not rewritten (tmp keeps its sticky bit)
	// and symlinked ones are followed (the file lands in /usr/bin).
	tmpLayer := layerFiles(t, newLayers[2])
	if _, ok := tmpLayer["/tmp"]; ok {
		t.Error("COPY to /tmp/ rewrote /tmp")
	}
	wantFile(t, tmpLayer, "/tmp/notes.txt", "notes\n", 0o644, 0, 0)
	binLayer := layerFiles(t, newLayers[3])
	wantFile(t, binLayer, "/usr/bin/tool2", "tool v2\n", 0o644, 0, 0)

	files := imageFiles(t, img)
	wantFile(t, files, "/usr/bin/tool", "tool v1\n", 0o755, 0, 0)
	if f := files["/tmp"]; f.hdr == nil || f.hdr.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp lost its mode: %+v", f.hdr)
	}
	if f := files["/bin"]; f.hdr == nil || f.hdr.Typeflag != tar.TypeSymlink {
		t.Errorf("/bin is no longer a symlink: %+v", f.hdr)
	}
}

func TestDockerignore(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile":     "FROM scratch\nCOPY . /ctx/\n",
		".dockerignore":  "# comment\nsecret.txt\n*.log\n!keep.log\nDockerfile\nbuild/\n",
		"main.go":        "package main\n",
		"secret.txt":     "hunter2\n",
		"debug.log":      "noise\n",
		"keep.log":       "keep\n",
		"build/out.bin":  "junk\n",
		"sub/secret.txt": "nested secrets are not excluded by a root pattern\n",
	})
	art, _ := mustBuild(t, dir, nil)
	files := imageFiles(t, art.(*artifact).img)
	wantFile(t, files, "/ctx/main.go", "package main\n", 0o644, 0, 0)
	wantFile(t, files, "/ctx/keep.log", "keep\n", 0o644, 0, 0)
	wantFile(t, files, "/ctx/.dockerignore", "# comment\nsecret.txt\n*.log\n!keep.log\nDockerfile\nbuild/\n", 0o644, 0, 0)
	wantFile(t, files, "/ctx/sub/secret.txt", "nested secrets are not excluded by a root pattern\n", 0o644, 0, 0)
	for _, p := range []string{"/ctx/secret.txt", "/ctx/debug.log", "/ctx/Dockerfile", "/ctx/build", "/ctx/build/out.bin"} {
		if _, ok := files[p]; ok {
			t.Errorf("%s was copied despite .dockerignore", p)
		}
	}

	// Naming an excluded file fails the same way as naming a missing one.
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY secret.txt /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := tryBuild(t, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), "secret.txt") {
		t.Fatalf("COPY of an ignored file: err = %v", err)
	}
}

func TestArgs(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE=scratch
FROM ${BASE}
ARG VERSION=1.0
ARG CHANNEL=stable
ARG BASE
ENV APP_VERSION=$VERSION APP_CHANNEL=${CHANNEL} FROM_IMAGE=${BASE}
COPY app-${VERSION}.txt /opt/${CHANNEL}/
`,
		"app-1.0.txt": "one\n",
	})
	check := func(args map[string]string, wantEnv []string, wantFilePath string) {
		t.Helper()
		art, logs := mustBuild(t, dir, args)
		img := art.(*artifact).img
		env := configOf(t, img).Config.Env
		for _, e := range wantEnv {
			if !slices.Contains(env, e) {
				t.Errorf("args %v: env %q lacks %q", args, env, e)
			}
		}
		if _, ok := imageFiles(t, img)[wantFilePath]; !ok {
			t.Errorf("args %v: %s missing", args, wantFilePath)
		}
		if args["UNUSED"] != "" && !strings.Contains(logs, "not declared by any ARG: UNUSED") {
			t.Errorf("no warning about an unused build arg:\n%s", logs)
		}
		if strings.Contains(logs, "s3cr3t") {
			t.Errorf("log shows a build arg's value:\n%s", logs)
		}
	}
	check(nil, []string{"APP_VERSION=1.0", "APP_CHANNEL=stable", "FROM_IMAGE=scratch"}, "/opt/stable/app-1.0.txt")
	check(map[string]string{"CHANNEL": "beta", "UNUSED": "s3cr3t"},
		[]string{"APP_VERSION=1.0", "APP_CHANNEL=beta"}, "/opt/beta/app-1.0.txt")
}

func TestAddLocalArchive(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range []struct {
		hdr  tar.Header
		data string
	}{
		{tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "pkg/bin/tool", Typeflag: tar.TypeReg, Mode: 0o700, Uid: 42, Gid: 43}, "binary"},
		{tar.Header{Name: "../../escape.txt", Typeflag: tar.TypeReg, Mode: 0o644}, "confined"},
	} {
		h.hdr.Size = int64(len(h.data))
		if err := tw.WriteHeader(&h.hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, h.data)
	}
	tw.Close()
	gz.Close()

	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nADD bundle.tgz /opt\nADD plain.txt /opt/plain.txt\nADD --unpack=false bundle.tgz /keep/\n",
		"bundle.tgz": buf.String(),
		"plain.txt":  "not an archive\n",
	})
	art, _ := mustBuild(t, dir, nil)
	files := imageFiles(t, art.(*artifact).img)
	wantFile(t, files, "/opt/pkg/bin/tool", "binary", 0o700, 42, 43)
	wantFile(t, files, "/opt/escape.txt", "confined", 0o644, 0, 0)
	wantFile(t, files, "/opt/plain.txt", "not an archive\n", 0o644, 0, 0)
	wantFile(t, files, "/keep/bundle.tgz", buf.String(), 0o644, 0, 0)

	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n\nADD https://example.com/x.tgz /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := tryBuild(t, dir, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:3: ADD:") || !strings.Contains(err.Error(), "remote URLs are not supported") {
		t.Fatalf("ADD of a URL: err = %v", err)
	}
}

func TestRunIsRejected(t *testing.T) {
	// The base is on a port where nothing listens: the RUN must be
	// rejected before anything is pulled.
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM 127.0.0.1:1/nothing/here\nCOPY a /a\n# comment\nRUN echo hi\n",
		"a":          "a",
	})
	_, _, err := tryBuild(t, dir, nil)
	want := "Dockerfile:4: RUN needs a builder that can execute commands (the kaniko builder); the daemonless builder supports FROM, COPY, ADD, ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, CMD, ENTRYPOINT"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	var ue *UnsupportedError
	if !errors.As(err, &ue) || ue.Line != 4 || ue.Instruction != "RUN" {
		t.Fatalf("err is not an *UnsupportedError for line 4: %#v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nVOLUME /data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = tryBuild(t, dir, nil)
	if !errors.As(err, &ue) || ue.Line != 2 || !strings.HasPrefix(err.Error(), "Dockerfile:2: VOLUME is not supported") {
		t.Fatalf("VOLUME: err = %v", err)
	}
}

func TestBrokenDockerfile(t *testing.T) {
	for _, tc := range []struct {
		dockerfile, want string
	}{
		{"FROM scratch\nCOPY onlyone\n", "Dockerfile:2: "},
		{"FROM scratch\n\nFROMM scratch\n", "Dockerfile:3: unknown instruction: FROMM"},
		{"COPY a /a\nFROM scratch\n", "Dockerfile:1: "},
		{"FROM scratch\nENV X=${Y\n", "Dockerfile:2: "},
		{"FROM scratch\nCOPY --chown=app a /a\n", "Dockerfile:2: COPY: --chown=app"},
		{"FROM scratch\nCOPY missing.txt /\n", "Dockerfile:2: COPY: \"missing.txt\" in the build context: not found"},
		{"FROM scratch\nCOPY a b /dest\n", "Dockerfile:2: COPY: when using COPY with more than one source file"},
		{"FROM scratch\nCOPY ../../etc/passwd /\n", "Dockerfile:2: COPY: \"etc/passwd\" in the build context: not found"},
		{"# only a comment\n", "Dockerfile:1: file with no instructions"},
	} {
		dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile, "a": "a", "b": "b"})
		_, _, err := tryBuild(t, dir, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want prefix %q", tc.dockerfile, err, tc.want)
		}
	}
}

func TestSymlinkOutOfContextIsRefused(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY leak /leak\n"})
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("runner secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "leak")); err != nil {
		t.Fatal(err)
	}
	_, _, err := tryBuild(t, dir, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:2: COPY:") {
		t.Fatalf("COPY through a symlink leaving the context: err = %v", err)
	}
}

func TestMultiStage(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM scratch AS build
COPY out /out/
FROM scratch AS unused
RUN never runs
FROM build AS test
COPY out/main.txt /test/
FROM scratch
COPY --from=build /out/main.txt /main.txt
COPY --from=test /out /all
`,
		"out/main.txt":  "main\n",
		"out/lib/x.txt": "x\n",
	})
	art, logs := mustBuild(t, dir, nil)
	if !strings.Contains(logs, "Step 7/7 : COPY --from=test /out /all") {
		t.Errorf("unused stage counted or steps misnumbered:\n%s", logs)
	}
	img := art.(*artifact).img
	files := imageFiles(t, img)
	wantFile(t, files, "/main.txt", "main\n", 0o644, 0, 0)
	wantFile(t, files, "/all/lib/x.txt", "x\n", 0o644, 0, 0)
	if _, ok := files["/out"]; ok {
		t.Error("the build stage's files leaked into the final image")
	}
	if n := len(layersOf(t, img)); n != 2 {
		t.Errorf("%d layers, want 2", n)
	}
}

func TestDeterministic(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY . /src/\nLABEL a=b\n",
		"b.txt":      "b",
		"a/z.txt":    "z",
		"a/y.txt":    "y",
	})
	art1, _ := mustBuild(t, dir, nil)
	// Touching files changes their mtimes, not the image.
	later := time.Now().Add(time.Hour)
	for _, p := range []string{"b.txt", "a/z.txt", "a"} {
		if err := os.Chtimes(filepath.Join(dir, p), later, later); err != nil {
			t.Fatal(err)
		}
	}
	art2, _ := mustBuild(t, dir, nil)
	d1, _ := art1.Digest()
	d2, _ := art2.Digest()
	if d1 != d2 || !strings.HasPrefix(d1, "sha256:") {
		t.Fatalf("two builds gave %s and %s", d1, d2)
	}
	art3, _ := mustBuild(t, dir, map[string]string{"SOURCE_DATE_EPOCH": "1700000000"})
	d3, _ := art3.Digest()
	if d3 == d1 {
		t.Error("SOURCE_DATE_EPOCH did not change the image")
	}
	if got := configOf(t, art3.(*artifact).img).Created.Unix(); got != 1700000000 {
		t.Errorf("created %d, want SOURCE_DATE_EPOCH", got)
	}
}

func TestPushByTagThenPullByDigest(t *testing.T) {
	host := startRegistry(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	art, _ := mustBuild(t, dir, nil)
	ref := host + "/alice/app:v1"
	img := pushAndPull(t, art, ref)
	byTag, err := remote.Image(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := byTag.Digest()
	d2, _ := img.Digest()
	if d1 != d2 {
		t.Errorf("tag points at %s, pushed %s", d1, d2)
	}
	// Credentials go along when given; the test registry ignores them.
	if _, err := art.Push(context.Background(), host+"/alice/app:v2", &authn.Basic{Username: "alice", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3": true, "localhost:5000": true, "[::1]:5000": true,
		"10.0.0.1:5000": false, "registry.example.com": false, "localhost.example.com:5000": false,
	} {
		if got := isLoopbackRegistry(host); got != want {
			t.Errorf("isLoopbackRegistry(%q) = %v", host, got)
		}
		r, err := parseReference(host + "/a/b:1")
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Registry.Scheme() == "http"; want && !got {
			t.Errorf("%s: scheme %s", host, r.Context().Registry.Scheme())
		}
	}
	// go-containerregistry would fall back to HTTP for private addresses;
	// the guard refuses before anything is sent.
	rt := guardTransport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("request reached the network")
		return nil, nil
	}))
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.1:5000/v2/", nil)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Error("plain HTTP to a private address was allowed")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrorsDoNotLeakCredentials(t *testing.T) {
	const secret = "s3cr3t-t0ken-value"
	// A registry that echoes what it was sent, as some do in errors. This is
	// a stand-in on purpose: no real registry here misbehaves this way.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return // no auth challenge: the client then sends its token everywhere
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad request, got Authorization: %s", r.Header.Get("Authorization"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + host + "/base/img:1\n"})
	kc := staticKeychain{&authn.Bearer{Token: secret}}
	_, err := Daemonless{}.Build(context.Background(), Request{ContextDir: dir, Keychain: kc})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("pull error leaks the token or is nil: %v", err)
	}

	art, _ := mustBuild(t, writeContext(t, map[string]string{"Dockerfile": "FROM scratch\n"}), nil)
	_, err = art.Push(context.Background(), host+"/alice/app:v1", &authn.Bearer{Token: secret})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("push error leaks the token or is nil: %v", err)
	}
}

type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

func BenchmarkDaemonlessScratch(b *testing.B) {
	host := startRegistry(b)
	dir := writeContext(b, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n",
		"app":        strings.Repeat("fornax", 1024),
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		art, err := Daemonless{}.Build(ctx, Request{ContextDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := art.Push(ctx, host+"/bench/app:latest", nil); err != nil {
			b.Fatal(err)
		}
	}
}

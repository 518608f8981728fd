package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fornax-dev/fornax/internal/testenv"
)

// An SVN service: the repository is probed with svn, a version builds the
// latest revision, and the image carries the checked-out files.
func TestSVNServiceBuilds(t *testing.T) {
	svn := testenv.NewSVNServer(t)
	fx := startFornax(t, t.TempDir(), nil)
	rev := svn.Commit(t, map[string]string{
		"Dockerfile":   "FROM scratch\nCOPY version.txt /version.txt\n",
		"version.txt":  "from svn\n",
		"caicloud.yml": "pre_build:\n  commands:\n    - test -f version.txt\n",
	}, "Import the app")

	var svc serviceOut
	code := fx.call(aliceToken, "POST", "/api/v1/services", map[string]any{
		"name": "legacy", "repository": map[string]any{"url": svn.URL, "vcs": "svn", "username": svn.Username, "token": svn.Password},
	}, &svc)
	if code != http.StatusCreated || svc.Repository.Status != "healthy" || svc.Repository.VCS != "svn" {
		t.Fatalf("create: %d %+v", code, svc)
	}
	var v versionOut
	if code := fx.call(aliceToken, "POST", "/api/v1/versions", map[string]any{"service_id": svc.ID}, &v); code != http.StatusAccepted {
		t.Fatalf("create version: %d", code)
	}
	v = fx.waitVersion(aliceToken, v.ID)
	if v.Status != "success" || v.Commit.SHA != rev || v.Name != rev {
		t.Fatalf("version %+v\n%s", v, fx.logs(aliceToken, v.ID))
	}
	if !strings.HasPrefix(v.Commit.Message, "Import the app") {
		t.Errorf("commit message %q", v.Commit.Message)
	}
	if log := fx.logs(aliceToken, v.ID); strings.Contains(log, svn.Password) {
		t.Fatal("the svn password is in the log")
	}
	img := pull(t, v.Image.Ref+"@"+v.Image.Digest)
	if got, _ := fileInImage(t, img, "version.txt"); got != "from svn\n" {
		t.Fatalf("version.txt = %q", got)
	}

	// A wrong password is recorded as missing, with no password in the reason.
	var bad serviceOut
	fx.call(aliceToken, "POST", "/api/v1/services", map[string]any{
		"name": "legacy2", "repository": map[string]any{"url": svn.URL, "vcs": "svn", "username": svn.Username, "token": "not-the-password"},
	}, &bad)
	if bad.Repository.Status != "missing" || strings.Contains(bad.Repository.Reason, "not-the-password") {
		t.Fatalf("wrong svn password: %+v", bad.Repository)
	}
}

package github

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/fornax-dev/fornax/internal/forge"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func push(ref, after string) []byte {
	return []byte(`{"ref":"` + ref + `","before":"` + strings.Repeat("1", 40) + `","after":"` + after + `",
	"head_commit":{"id":"` + after + `","message":"Fix the thing\n\nLonger text","author":{"name":"Ada","email":"ada@example.com"}}}`)
}

func headers(event, delivery, sig string) http.Header {
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	if sig != "" {
		h.Set("X-Hub-Signature-256", sig)
	}
	return h
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := push("refs/heads/main", sha)
	f := Forge{}
	cases := []struct {
		name string
		sig  string
		ok   bool
	}{
		{"good", Sign(body, secret), true},
		{"forged with another secret", Sign(body, []byte("guess")), false},
		{"signature of another body", Sign(append(body, ' '), secret), false},
		{"missing", "", false},
		{"sha1 form", "sha1=" + strings.Repeat("0", 40), false},
		{"not hex", "sha256=zz", false},
		{"truncated", Sign(body, secret)[:30], false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.Verify(headers("push", "d1", c.sig), body, secret)
			if c.ok && err != nil {
				t.Fatalf("want accepted, got %v", err)
			}
			if !c.ok && !errors.Is(err, forge.ErrUnauthorized) {
				t.Fatalf("want ErrUnauthorized, got %v", err)
			}
		})
	}
}

func TestParsePush(t *testing.T) {
	f := Forge{}
	ev, err := f.Parse(headers("push", "d-1", ""), push("refs/heads/main", sha))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != forge.KindPush || ev.DeliveryID != "d-1" || ev.Push.SHA != sha || ev.Push.Branch() != "main" || ev.Push.Tag() != "" {
		t.Fatalf("bad event %+v %+v", ev, ev.Push)
	}
	if ev.Push.Author != "Ada <ada@example.com>" || !strings.HasPrefix(ev.Push.Message, "Fix the thing") {
		t.Fatalf("author/message: %+v", ev.Push)
	}
}

func TestParseTagAndDeletion(t *testing.T) {
	f := Forge{}
	ev, err := f.Parse(headers("push", "d-2", ""), push("refs/tags/v1.2.0", sha))
	if err != nil || ev.Push.Tag() != "v1.2.0" || ev.Push.Deleted {
		t.Fatalf("tag push: %+v %v", ev, err)
	}
	del := []byte(`{"ref":"refs/heads/gone","after":"` + strings.Repeat("0", 40) + `","deleted":true,"head_commit":null}`)
	ev, err = f.Parse(headers("push", "d-3", ""), del)
	if err != nil || !ev.Push.Deleted {
		t.Fatalf("deletion: %+v %v", ev, err)
	}
}

func TestParseOthers(t *testing.T) {
	f := Forge{}
	if ev, err := f.Parse(headers("ping", "d", ""), []byte(`{"zen":"x"}`)); err != nil || ev.Kind != forge.KindPing {
		t.Fatalf("ping: %+v %v", ev, err)
	}
	if ev, err := f.Parse(headers("issues", "d", ""), []byte(`{}`)); err != nil || ev.Kind != forge.KindIgnored {
		t.Fatalf("issues: %+v %v", ev, err)
	}
	if _, err := f.Parse(headers("push", "d", ""), []byte(`{not json`)); err == nil {
		t.Fatal("broken JSON accepted")
	}
	if _, err := f.Parse(headers("push", "", ""), push("refs/heads/main", sha)); err == nil {
		t.Fatal("push without delivery id accepted")
	}
	if _, err := f.Parse(headers("push", "d", ""), []byte(`{"ref":"refs/heads/main","after":"nothex"}`)); err == nil {
		t.Fatal("push without commit id accepted")
	}
}

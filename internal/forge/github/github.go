// Package github reads GitHub webhooks: push and ping events signed with
// X-Hub-Signature-256.
package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/fornax-dev/fornax/internal/forge"
)

// Forge handles GitHub webhooks.
type Forge struct{}

// Name implements forge.Forge.
func (Forge) Name() string { return "github" }

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify implements forge.Forge.
func (Forge) Verify(h http.Header, body, secret []byte) error {
	got := h.Get("X-Hub-Signature-256")
	if got == "" {
		return fmt.Errorf("%w: no X-Hub-Signature-256 header", forge.ErrUnauthorized)
	}
	sig, ok := strings.CutPrefix(got, "sha256=")
	if !ok {
		return fmt.Errorf("%w: X-Hub-Signature-256 is not sha256=<hex>", forge.ErrUnauthorized)
	}
	want := hmac.New(sha256.New, secret)
	want.Write(body)
	gotRaw, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(gotRaw, want.Sum(nil)) {
		return fmt.Errorf("%w: X-Hub-Signature-256", forge.ErrUnauthorized)
	}
	return nil
}

type pushPayload struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	HeadCommit *struct {
		ID      string `json:"id"`
		Message string `json:"message"`
		Author  struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"author"`
	} `json:"head_commit"`
}

// Parse implements forge.Forge.
func (Forge) Parse(h http.Header, body []byte) (*forge.Event, error) {
	ev := &forge.Event{DeliveryID: h.Get("X-GitHub-Delivery")}
	kind := h.Get("X-GitHub-Event")
	switch kind {
	case "ping":
		ev.Kind = forge.KindPing
		return ev, nil
	case "push":
	case "":
		return nil, fmt.Errorf("no X-GitHub-Event header")
	default:
		ev.Kind = forge.KindIgnored
		ev.Reason = fmt.Sprintf("event %q is not handled; Fornax builds on push", kind)
		return ev, nil
	}
	if ev.DeliveryID == "" {
		return nil, fmt.Errorf("no X-GitHub-Delivery header")
	}
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("push payload is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(p.Ref, "refs/heads/") && !strings.HasPrefix(p.Ref, "refs/tags/") {
		ev.Kind = forge.KindIgnored
		ev.Reason = fmt.Sprintf("ref %q is neither a branch nor a tag", p.Ref)
		return ev, nil
	}
	push := &forge.Push{Ref: p.Ref, SHA: p.After, Deleted: p.Deleted || strings.Trim(p.After, "0") == ""}
	if p.HeadCommit != nil {
		// For an annotated tag, after is the tag object; head_commit is the commit.
		if p.HeadCommit.ID != "" {
			push.SHA = p.HeadCommit.ID
		}
		push.Message = p.HeadCommit.Message
		push.Author = p.HeadCommit.Author.Name
		if p.HeadCommit.Author.Email != "" {
			push.Author += " <" + p.HeadCommit.Author.Email + ">"
		}
	}
	if !push.Deleted && !isSHA(push.SHA) {
		return nil, fmt.Errorf("push payload has no commit id (after/head_commit.id)")
	}
	ev.Kind = forge.KindPush
	ev.Push = push
	return ev, nil
}

func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Package forge is the seam between Fornax and the places code is hosted.
// Each provider (GitHub here; GitLab, Gitea/Gogs, Bitbucket and SVN hooks
// next) verifies its own webhook signature and turns its payload into the
// same Event. A forge only reads requests: it never records or enqueues.
package forge

import (
	"errors"
	"net/http"
	"strings"
)

// ErrUnauthorized means a webhook's signature or token did not match.
var ErrUnauthorized = errors.New("webhook signature does not match")

// Event kinds.
const (
	KindPush    = "push"
	KindPing    = "ping"
	KindIgnored = "ignored"
)

// Event is a verified webhook delivery.
type Event struct {
	Kind       string
	DeliveryID string
	Push       *Push
	// Reason says why an event is ignored.
	Reason string
}

// Push is a ref update.
type Push struct {
	Ref     string // full ref, "refs/heads/main" or "refs/tags/v1.0"
	SHA     string // the commit now at Ref
	Deleted bool   // the ref was deleted
	Message string
	Author  string // "Name <email>"
}

// Branch returns the branch name of a branch push, or "".
func (p *Push) Branch() string {
	if b, ok := strings.CutPrefix(p.Ref, "refs/heads/"); ok {
		return b
	}
	return ""
}

// Tag returns the tag name of a tag push, or "".
func (p *Push) Tag() string {
	if t, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
		return t
	}
	return ""
}

// Forge verifies and parses one provider's webhooks.
type Forge interface {
	// Name is the provider's name as it appears in webhook URLs.
	Name() string
	// Verify checks the delivery against the service's webhook secret in
	// constant time; it returns an error wrapping ErrUnauthorized when the
	// signature is missing or wrong.
	Verify(h http.Header, body, secret []byte) error
	// Parse turns a verified delivery into an Event.
	Parse(h http.Header, body []byte) (*Event, error)
}

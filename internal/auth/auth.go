// Package auth maps bearer tokens to users. Tokens are compared in
// constant time and never logged.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// userRE keeps user names usable as the first path part of an image name.
var userRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?$`)

// Tokens authenticates bearer tokens.
type Tokens struct {
	byHash map[[32]byte]string
}

// ParseTokens reads "alice=tokenA,bob=tokenB".
func ParseTokens(spec string) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]string{}}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		user, token, ok := strings.Cut(part, "=")
		if !ok || token == "" {
			// The entry may be a mistyped token: name it by position only.
			return nil, fmt.Errorf("FORNAX_API_TOKENS: entry %d is not user=token", i+1)
		}
		if err := t.Add(user, token); err != nil {
			return nil, err
		}
	}
	if len(t.byHash) == 0 {
		return nil, fmt.Errorf("FORNAX_API_TOKENS: no user=token entries")
	}
	return t, nil
}

// Add registers a user's token.
func (t *Tokens) Add(user, token string) error {
	if t.byHash == nil {
		t.byHash = map[[32]byte]string{}
	}
	if !userRE.MatchString(user) {
		return fmt.Errorf("user name %q must be lower-case letters, digits, '.', '_' or '-' (it becomes part of image names)", user)
	}
	if len(token) < 8 {
		return fmt.Errorf("token of user %q is shorter than 8 characters", user)
	}
	h := sha256.Sum256([]byte(token))
	if other, ok := t.byHash[h]; ok && other != user {
		return fmt.Errorf("users %q and %q have the same token; every user needs a token of their own", other, user)
	}
	t.byHash[h] = user
	return nil
}

// User returns the user a token belongs to. Comparing fixed-size hashes
// keeps the time taken independent of how much of a token matches.
func (t *Tokens) User(token string) (string, bool) {
	h := sha256.Sum256([]byte(token))
	var found string
	for k, u := range t.byHash {
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			found = u
		}
	}
	return found, found != ""
}

type ctxKey struct{}

// WithUser returns a context carrying the authenticated user.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, ctxKey{}, user)
}

// UserFrom returns the authenticated user of a request context.
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(ctxKey{}).(string)
	return u
}

// Middleware rejects requests without a known bearer token with 401 and
// passes the user on in the request context.
func (t *Tokens) Middleware(next http.Handler, unauthorized func(w http.ResponseWriter, msg string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			unauthorized(w, "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		user, ok := t.User(strings.TrimSpace(token))
		if !ok {
			unauthorized(w, "unknown token")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), user)))
	})
}

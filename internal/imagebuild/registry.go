package imagebuild

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// parseReference parses an image reference, marking loopback registries
// insecure: a registry on this machine (a developer's, or one started by a
// test) normally has no certificate, and traffic to it never leaves the host.
func parseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, err
	}
	if isLoopbackRegistry(ref.Context().RegistryStr()) {
		return name.ParseReference(s, name.Insecure)
	}
	return ref, nil
}

// isLoopbackRegistry reports whether a registry "host[:port]" is on loopback.
func isLoopbackRegistry(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(registry, "["), "]")
	}
	return isLoopbackHost(host)
}

// isLoopbackHost reports whether host (without port or brackets) is
// localhost or a loopback address. It does not resolve names: what a name
// resolves to can change, what is written cannot.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsUnlessLoopback refuses plain-HTTP requests to anything but loopback.
// go-containerregistry falls back to HTTP for private (RFC 1918) addresses
// too, and follows whatever token realm a registry names; either would send
// credentials in the clear.
type tlsUnlessLoopback struct{ next http.RoundTripper }

func (t tlsUnlessLoopback) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !isLoopbackHost(req.URL.Hostname()) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain-HTTP request to %s: only loopback registries are reached without TLS", req.URL.Host)
	}
	return t.next.RoundTrip(req)
}

func guardTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = remote.DefaultTransport
	}
	return tlsUnlessLoopback{next: rt}
}

// secretsOf returns the secret parts of what auth would send, so that they
// can be scrubbed from errors. Registries and HTTP libraries sometimes echo
// a request back in an error; an error ends up in a build log that many
// people can read.
func secretsOf(ctx context.Context, auth authn.Authenticator) []string {
	if auth == nil || auth == authn.Anonymous {
		return nil
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil || cfg == nil {
		return nil
	}
	var out []string
	for _, s := range []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken} {
		if len(s) >= 4 { // shorter strings would scrub ordinary words and hide nothing worth hiding
			out = append(out, s)
		}
	}
	return out
}

// redactedError carries a scrubbed message while still letting callers
// match the cause (context.Canceled, transport errors) with errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, "[REDACTED]")
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// artifact is an image built in memory. Layers it added are held
// compressed; base layers stay in their registry until Push copies or
// mounts them.
type artifact struct {
	img       v1.Image
	transport http.RoundTripper
}

func (a *artifact) Digest() (string, error) {
	h, err := a.img.Digest()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (a *artifact) Push(ctx context.Context, ref string, auth authn.Authenticator) (string, error) {
	r, err := parseReference(ref)
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	secrets := secretsOf(ctx, auth)
	err = remote.Write(r, a.img,
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithTransport(a.transport))
	if err != nil {
		return "", redact(fmt.Errorf("push %s: %w", r, err), secrets)
	}
	return a.Digest()
}

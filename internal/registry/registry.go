// Package registry embeds an OCI (Docker) registry for Fornax's local mode.
//
// The registry listens on loopback only (DefaultAddr, 127.0.0.1:7098) and
// keeps manifests, tags and blobs on disk under a directory of the caller's
// choosing, so that image references Fornax hands out stay valid across
// restarts. It is the CNCF distribution registry used as a library, with its
// filesystem storage driver, no authentication (hence loopback only) and
// deletion enabled so that tags can be removed.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // registers the "filesystem" storage driver
)

// DefaultAddr is the address the local-mode registry listens on.
const DefaultAddr = "127.0.0.1:7098"

// shutdownTimeout bounds how long Close waits for requests in flight (a
// large blob upload, say) before cutting connections.
const shutdownTimeout = 5 * time.Second

// Registry is a running embedded registry. Create it with Start; stop it
// with Close.
type Registry struct {
	addr   string
	dir    string
	app    *handlers.App
	server *http.Server

	served    chan struct{} // closed when Serve has returned
	serveErr  error         // Serve's error, other than http.ErrServerClosed
	closeOnce sync.Once
	closeErr  error
	stopWatch context.CancelFunc
}

// Start listens on addr and serves a registry whose content lives in dir
// (created if missing). addr must be a loopback address such as
// "127.0.0.1:7098" or "[::1]:7098"; "localhost" and an empty host (":0")
// mean 127.0.0.1, port 0 picks a free port, and an empty addr means
// DefaultAddr. Any other host is refused: the registry has no
// authentication.
//
// The registry runs until Close is called or ctx is cancelled.
func Start(ctx context.Context, addr, dir string) (*Registry, error) {
	listenAddr, err := loopbackAddr(addr)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("registry: no storage directory given")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: storage directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("registry: storage directory: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	quietDistributionLogs()

	secret, err := randomSecret()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	app, err := newApp(context.WithoutCancel(ctx), config(root, secret))
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		_ = app.Shutdown()
		return nil, fmt.Errorf("registry: %w", err)
	}

	r := &Registry{
		addr: ln.Addr().String(),
		dir:  root,
		app:  app,
		server: &http.Server{
			Handler:           app,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(r.served)
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.serveErr = err
		}
	}()

	// Stop with the caller's context.
	watchCtx, stopWatch := context.WithCancel(ctx)
	r.stopWatch = stopWatch
	go func() {
		<-watchCtx.Done()
		if ctx.Err() != nil {
			_ = r.Close()
		}
	}()
	return r, nil
}

// Addr returns the host:port the registry actually listens on, e.g.
// "127.0.0.1:7098". Image references use it as their registry host.
func (r *Registry) Addr() string { return r.addr }

// Dir returns the absolute directory the registry keeps its content in.
func (r *Registry) Dir() string { return r.dir }

// Close stops the registry. Requests in flight get a few seconds to finish,
// then their connections are closed. Content on disk is kept. Close may be
// called more than once.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		if r.stopWatch != nil {
			r.stopWatch()
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := r.server.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = r.server.Close()
		}
		<-r.served
		err = errors.Join(err, r.serveErr, r.app.Shutdown())
		if err != nil {
			r.closeErr = fmt.Errorf("registry: close: %w", err)
		}
	})
	return r.closeErr
}

// loopbackAddr checks that addr is a loopback address and returns the
// address to listen on.
func loopbackAddr(addr string) (string, error) {
	if addr == "" {
		return DefaultAddr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("registry: address %q: %w", addr, err)
	}
	switch {
	case host == "" || strings.EqualFold(host, "localhost"):
		// Never all interfaces, and no resolver surprises.
		host = "127.0.0.1"
	default:
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("registry: refusing to listen on %q: the embedded registry has no authentication, so it only listens on loopback addresses (127.0.0.1, ::1)", addr)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// config builds the distribution configuration: filesystem storage under
// root, deletes enabled, no auth, no redirects (the filesystem driver has
// none), a small in-memory blob descriptor cache.
func config(root, secret string) *configuration.Configuration {
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
			"redirect":   configuration.Parameters{"disable": true},
			"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
		},
	}
	// Logging, access logs and health checks are set up by distribution's
	// own main (registry.NewRegistry), not by handlers.NewApp; see
	// logging.go for how its log output is kept off the terminal.
	cfg.HTTP.Secret = secret
	return cfg
}

// newApp wraps handlers.NewApp, which panics on configuration errors.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			app, err = nil, fmt.Errorf("registry: starting distribution: %v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// randomSecret returns the key distribution signs upload state with. A new
// one per start is fine: an upload does not survive a restart anyway.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

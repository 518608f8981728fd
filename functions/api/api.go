// Package api is Fornax's REST function: services, versions and their logs
// under /api/v1. It is an http.Handler with its dependencies passed in, so
// the same code serves behind API Gateway, in a container or in local mode.
//
// It never runs builds itself: it records versions and queues build jobs,
// and asks the build function (through the events topic) to stop runners.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/pubsub"
	"gocloud.dev/secrets"

	"github.com/fornax-dev/fornax/internal/auth"
	"github.com/fornax-dev/fornax/internal/httpx"
	"github.com/fornax-dev/fornax/internal/ids"
	"github.com/fornax-dev/fornax/internal/logstore"
	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/trigger"
	"github.com/fornax-dev/fornax/internal/vcs"
)

// RepoProber reaches users' repositories.
type RepoProber interface {
	Check(ctx context.Context, r vcs.Repo) (vcs.Status, string)
	Resolve(ctx context.Context, r vcs.Repo, ref string) (vcs.Ref, error)
}

// Deps are what the api function works with.
type Deps struct {
	Store   *records.Store
	Keeper  *secrets.Keeper
	Trigger *trigger.Trigger
	Events  *pubsub.Topic
	Logs    *blob.Bucket
	Tokens  *auth.Tokens
	Repos   RepoProber
	// PublicURL is the base URL webhooks are reached at, e.g. http://127.0.0.1:7099.
	PublicURL string
	Now       func() time.Time
	Log       *slog.Logger
}

type handler struct{ Deps }

// New returns the api function's handler, serving /api/v1/.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	h := &handler{d}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/services", h.createService)
	mux.HandleFunc("GET /api/v1/services", h.listServices)
	mux.HandleFunc("GET /api/v1/services/{id}", h.getService)
	mux.HandleFunc("PATCH /api/v1/services/{id}", h.patchService)
	mux.HandleFunc("DELETE /api/v1/services/{id}", h.deleteService)
	mux.HandleFunc("GET /api/v1/services/{id}/versions", h.listVersions)
	mux.HandleFunc("POST /api/v1/versions", h.createVersion)
	mux.HandleFunc("GET /api/v1/versions/{id}", h.getVersion)
	mux.HandleFunc("POST /api/v1/versions/{id}/cancel", h.cancelVersion)
	mux.HandleFunc("GET /api/v1/versions/{id}/logs", h.versionLogs)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		httpx.Errorf(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
	return d.Tokens.Middleware(mux, func(w http.ResponseWriter, msg string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fornax"`)
		httpx.Error(w, http.StatusUnauthorized, msg)
	})
}

// repoTimeout bounds how long a request waits for a user's repository.
const repoTimeout = 30 * time.Second

var serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?$`)

func validServiceName(n string) error {
	if !serviceNameRE.MatchString(n) {
		return fmt.Errorf("name %q must be 1-64 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit (it becomes part of image names)", n)
	}
	return nil
}

// ownerKey namespaces service-name reservations in the names collection.
func ownerKey(owner string) string { return "owner:" + owner }

func (h *handler) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.Log.Error("api: "+what, "method", r.Method, "path", r.URL.Path, "err", err)
	httpx.Errorf(w, http.StatusInternalServerError, "%s: internal error", what)
}

// ownedService returns the caller's service, or writes 404: another user's
// service is reported exactly like one that does not exist.
func (h *handler) ownedService(w http.ResponseWriter, r *http.Request, id string) *records.Service {
	svc, err := h.Store.GetService(r.Context(), id)
	if err == nil && svc.Owner == auth.UserFrom(r.Context()) {
		return svc
	}
	if err != nil && !errors.Is(err, records.ErrNotFound) {
		h.internal(w, r, "read service", err)
		return nil
	}
	httpx.Errorf(w, http.StatusNotFound, "service %q not found", id)
	return nil
}

func (h *handler) ownedVersion(w http.ResponseWriter, r *http.Request, id string) *records.Version {
	v, err := h.Store.GetVersion(r.Context(), id)
	if err == nil && v.Owner == auth.UserFrom(r.Context()) {
		return v
	}
	if err != nil && !errors.Is(err, records.ErrNotFound) {
		h.internal(w, r, "read version", err)
		return nil
	}
	httpx.Errorf(w, http.StatusNotFound, "version %q not found", id)
	return nil
}

// checkRepo probes a repository and records what it found on the service.
func (h *handler) checkRepo(ctx context.Context, svc *records.Service, token string) {
	ctx, cancel := context.WithTimeout(ctx, repoTimeout)
	defer cancel()
	st, reason := h.Repos.Check(ctx, vcs.Repo{URL: svc.Repository.URL, VCS: svc.Repository.VCS, Username: svc.Repository.Username, Token: token})
	svc.Repository.Status = string(st)
	svc.Repository.StatusReason = reason
	svc.Repository.CheckedAt = h.Now().UTC()
}

func (h *handler) repoToken(ctx context.Context, svc *records.Service) (string, error) {
	if len(svc.Repository.Token) == 0 {
		return "", nil
	}
	b, err := h.Keeper.Decrypt(ctx, svc.Repository.Token)
	if err != nil {
		return "", fmt.Errorf("decrypt repository token: %w", err)
	}
	return string(b), nil
}

func (h *handler) webhookURL(svc *records.Service) string {
	return strings.TrimRight(h.PublicURL, "/") + "/webhooks/github/" + svc.ID
}

type repoIn struct {
	URL      *string `json:"url"`
	VCS      *string `json:"vcs"`
	Username *string `json:"username"`
	Token    *string `json:"token"`
}

type serviceIn struct {
	Name          *string `json:"name"`
	Description   *string `json:"description"`
	Repository    *repoIn `json:"repository"`
	WebhookSecret *string `json:"webhook_secret"`
}

func (h *handler) createService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	user := auth.UserFrom(ctx)
	var in serviceIn
	if err := httpx.Decode(r, &in); err != nil {
		httpx.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.Name == nil {
		httpx.Error(w, http.StatusBadRequest, "name is required")
		return
	}
	if err := validServiceName(*in.Name); err != nil {
		httpx.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.Repository == nil || in.Repository.URL == nil || strings.TrimSpace(*in.Repository.URL) == "" {
		httpx.Error(w, http.StatusBadRequest, "repository.url is required")
		return
	}
	now := h.Now().UTC()
	svc := &records.Service{
		ID:        ids.New("svc"),
		Owner:     user,
		Name:      *in.Name,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if in.Description != nil {
		svc.Description = *in.Description
	}
	token := applyRepo(&svc.Repository, in.Repository)
	if svc.Repository.VCS == "" {
		svc.Repository.VCS = "git"
	}
	secret, generated := "", false
	if in.WebhookSecret != nil && *in.WebhookSecret != "" {
		secret = *in.WebhookSecret
	} else {
		secret, generated = ids.Secret(32), true
	}
	var err error
	if svc.WebhookSecret, err = h.Keeper.Encrypt(ctx, []byte(secret)); err != nil {
		h.internal(w, r, "encrypt webhook secret", err)
		return
	}
	if token != "" {
		if svc.Repository.Token, err = h.Keeper.Encrypt(ctx, []byte(token)); err != nil {
			h.internal(w, r, "encrypt repository token", err)
			return
		}
	}
	// Reserve the name before probing the repository, so a clash answers at once.
	if _, err := h.Store.ReserveName(ctx, ownerKey(user), svc.Name, svc.ID, true); err != nil {
		if errors.Is(err, records.ErrExists) {
			httpx.Errorf(w, http.StatusConflict, "you already have a service named %q", svc.Name)
			return
		}
		h.internal(w, r, "reserve service name", err)
		return
	}
	h.checkRepo(ctx, svc, token)
	if err := h.Store.CreateService(ctx, svc); err != nil {
		_ = h.Store.ReleaseName(ctx, ownerKey(user), svc.Name)
		h.internal(w, r, "record service", err)
		return
	}
	out := h.serviceView(svc)
	if generated {
		out.Webhook.Secret = secret // shown once, here
	}
	httpx.JSON(w, http.StatusCreated, out)
}

// applyRepo copies given repository fields and returns a new token, if any.
func applyRepo(repo *records.Repository, in *repoIn) string {
	if in == nil {
		return ""
	}
	if in.URL != nil {
		repo.URL = strings.TrimSpace(*in.URL)
	}
	if in.VCS != nil {
		repo.VCS = strings.ToLower(strings.TrimSpace(*in.VCS))
	}
	if in.Username != nil {
		repo.Username = *in.Username
	}
	if in.Token != nil {
		return *in.Token
	}
	return ""
}

func (h *handler) listServices(w http.ResponseWriter, r *http.Request) {
	svcs, err := h.Store.ListServices(r.Context(), auth.UserFrom(r.Context()))
	if err != nil {
		h.internal(w, r, "list services", err)
		return
	}
	items := make([]serviceView, 0, len(svcs))
	for _, s := range svcs {
		items = append(items, h.serviceView(s))
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"items": items})
}

func (h *handler) getService(w http.ResponseWriter, r *http.Request) {
	if svc := h.ownedService(w, r, r.PathValue("id")); svc != nil {
		httpx.JSON(w, http.StatusOK, h.serviceView(svc))
	}
}

func (h *handler) patchService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	svc := h.ownedService(w, r, r.PathValue("id"))
	if svc == nil {
		return
	}
	var in serviceIn
	if err := httpx.Decode(r, &in); err != nil {
		httpx.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.Name != nil && *in.Name != svc.Name {
		if err := validServiceName(*in.Name); err != nil {
			httpx.Error(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if in.Repository != nil && in.Repository.URL != nil && strings.TrimSpace(*in.Repository.URL) == "" {
		httpx.Error(w, http.StatusBadRequest, "repository.url cannot be empty")
		return
	}
	var encToken, encSecret []byte
	var err error
	if in.Repository != nil && in.Repository.Token != nil && *in.Repository.Token != "" {
		if encToken, err = h.Keeper.Encrypt(ctx, []byte(*in.Repository.Token)); err != nil {
			h.internal(w, r, "encrypt repository token", err)
			return
		}
	}
	if in.WebhookSecret != nil {
		if *in.WebhookSecret == "" {
			httpx.Error(w, http.StatusBadRequest, "webhook_secret cannot be empty")
			return
		}
		if encSecret, err = h.Keeper.Encrypt(ctx, []byte(*in.WebhookSecret)); err != nil {
			h.internal(w, r, "encrypt webhook secret", err)
			return
		}
	}
	// Reserve a new name last, once nothing else can refuse the request.
	if in.Name != nil && *in.Name != svc.Name {
		if _, err := h.Store.ReserveName(ctx, ownerKey(svc.Owner), *in.Name, svc.ID, true); err != nil {
			if errors.Is(err, records.ErrExists) {
				httpx.Errorf(w, http.StatusConflict, "you already have a service named %q", *in.Name)
				return
			}
			h.internal(w, r, "reserve service name", err)
			return
		}
	}
	oldName := svc.Name
	var probe *records.Service
	updated, err := h.Store.UpdateService(ctx, svc.ID, func(s *records.Service) error {
		if in.Name != nil {
			s.Name = *in.Name
		}
		if in.Description != nil {
			s.Description = *in.Description
		}
		if in.Repository != nil {
			applyRepo(&s.Repository, in.Repository)
			if in.Repository.Token != nil {
				s.Repository.Token = encToken // "" clears the token
			}
			probe = s
		}
		if encSecret != nil {
			s.WebhookSecret = encSecret
		}
		s.UpdatedAt = h.Now().UTC()
		return nil
	})
	if err != nil {
		if in.Name != nil && *in.Name != oldName {
			_ = h.Store.ReleaseName(ctx, ownerKey(svc.Owner), *in.Name)
		}
		h.internal(w, r, "update service", err)
		return
	}
	if in.Name != nil && *in.Name != oldName {
		_ = h.Store.ReleaseName(ctx, ownerKey(svc.Owner), oldName)
	}
	if probe != nil {
		// The repository changed: probe it again and record what was found.
		token, err := h.repoToken(ctx, updated)
		if err != nil {
			h.internal(w, r, "read repository token", err)
			return
		}
		h.checkRepo(ctx, updated, token)
		st := updated.Repository
		if updated, err = h.Store.UpdateService(ctx, svc.ID, func(s *records.Service) error {
			s.Repository.Status, s.Repository.StatusReason, s.Repository.CheckedAt = st.Status, st.StatusReason, st.CheckedAt
			return nil
		}); err != nil {
			h.internal(w, r, "update service", err)
			return
		}
	}
	httpx.JSON(w, http.StatusOK, h.serviceView(updated))
}

func (h *handler) deleteService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	svc := h.ownedService(w, r, r.PathValue("id"))
	if svc == nil {
		return
	}
	versions, err := h.Store.ListVersions(ctx, svc.ID)
	if err != nil {
		h.internal(w, r, "list versions", err)
		return
	}
	for _, v := range versions {
		if !records.Terminal(v.Status) {
			if _, err := h.cancel(ctx, v.ID, "service deleted"); err != nil && !errors.Is(err, records.ErrNoChange) {
				h.internal(w, r, "cancel version", err)
				return
			}
		}
		if err := logstore.Delete(ctx, h.Logs, v.ID); err != nil {
			h.internal(w, r, "delete log", err)
			return
		}
		if err := h.Store.DeleteVersion(ctx, v); err != nil {
			h.internal(w, r, "delete version", err)
			return
		}
	}
	if err := h.Store.DeleteService(ctx, svc.ID); err != nil {
		h.internal(w, r, "delete service", err)
		return
	}
	_ = h.Store.ReleaseName(ctx, ownerKey(svc.Owner), svc.Name)
	w.WriteHeader(http.StatusNoContent)
}

// cancel moves a version to cancelled and asks the build function to stop
// its runner. It returns records.ErrNoChange for a finished version.
func (h *handler) cancel(ctx context.Context, id, reason string) (*records.Version, error) {
	v, err := h.Store.UpdateVersion(ctx, id, func(v *records.Version) error {
		return trigger.Finish(v, records.StatusCancelled, reason, h.Now().UTC())
	})
	if err != nil {
		return v, err
	}
	body, err := messages.Encode(&messages.Event{VersionID: v.ID, Kind: messages.EventCancel, Time: h.Now().UTC(), Runner: v.Runner})
	if err == nil {
		err = h.Events.Send(ctx, &pubsub.Message{Body: body})
	}
	if err != nil {
		// The record says cancelled, so the runner's reports are ignored
		// from now on and the build watchdog stops it at its deadline.
		h.Log.Warn("api: could not ask the build function to stop a runner", "version", v.ID, "err", err)
	}
	return v, nil
}

type versionIn struct {
	ServiceID string `json:"service_id"`
	Ref       string `json:"ref"`
	Name      string `json:"name"`
}

func (h *handler) createVersion(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in versionIn
	if err := httpx.Decode(r, &in); err != nil {
		httpx.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.ServiceID == "" {
		httpx.Error(w, http.StatusBadRequest, "service_id is required")
		return
	}
	if in.Name != "" && !trigger.ValidName(in.Name) {
		httpx.Errorf(w, http.StatusBadRequest, "name %q is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", in.Name)
		return
	}
	svc := h.ownedService(w, r, in.ServiceID)
	if svc == nil {
		return
	}
	token, err := h.repoToken(ctx, svc)
	if err != nil {
		h.internal(w, r, "read repository token", err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, repoTimeout)
	defer cancel()
	ref, err := h.Repos.Resolve(rctx, vcs.Repo{URL: svc.Repository.URL, VCS: svc.Repository.VCS, Username: svc.Repository.Username, Token: token}, in.Ref)
	if err != nil {
		httpx.Errorf(w, http.StatusUnprocessableEntity, "cannot resolve ref %q of %s: %v", in.Ref, svc.Repository.URL, err)
		return
	}
	how := records.TriggerAPI
	v, err := h.Trigger.Start(ctx, trigger.Request{
		Service:   svc,
		Commit:    records.Commit{SHA: ref.SHA, Ref: ref.Name},
		How:       how,
		Name:      in.Name,
		ExactName: in.Name != "",
	})
	switch {
	case errors.Is(err, records.ErrExists):
		httpx.Errorf(w, http.StatusConflict, "service %s already has a version named %q", svc.Name, in.Name)
	case errors.Is(err, trigger.ErrQueue):
		h.Log.Error("api: queue build", "version", v.ID, "err", err)
		httpx.Errorf(w, http.StatusServiceUnavailable, "version %s recorded but its build could not be queued; it is marked failed", v.ID)
	case err != nil:
		h.internal(w, r, "start version", err)
	default:
		httpx.JSON(w, http.StatusAccepted, versionViewOf(v))
	}
}

func (h *handler) getVersion(w http.ResponseWriter, r *http.Request) {
	if v := h.ownedVersion(w, r, r.PathValue("id")); v != nil {
		httpx.JSON(w, http.StatusOK, versionViewOf(v))
	}
}

func (h *handler) listVersions(w http.ResponseWriter, r *http.Request) {
	svc := h.ownedService(w, r, r.PathValue("id"))
	if svc == nil {
		return
	}
	vs, err := h.Store.ListVersions(r.Context(), svc.ID)
	if err != nil {
		h.internal(w, r, "list versions", err)
		return
	}
	items := make([]versionView, 0, len(vs))
	for _, v := range vs {
		items = append(items, versionViewOf(v))
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"items": items})
}

func (h *handler) cancelVersion(w http.ResponseWriter, r *http.Request) {
	v := h.ownedVersion(w, r, r.PathValue("id"))
	if v == nil {
		return
	}
	v, err := h.cancel(r.Context(), v.ID, "cancelled by "+auth.UserFrom(r.Context()))
	if errors.Is(err, records.ErrNoChange) {
		httpx.Errorf(w, http.StatusConflict, "version %s is already %s", v.ID, v.Status)
		return
	}
	if err != nil {
		h.internal(w, r, "cancel version", err)
		return
	}
	httpx.JSON(w, http.StatusOK, versionViewOf(v))
}

func (h *handler) versionLogs(w http.ResponseWriter, r *http.Request) {
	v := h.ownedVersion(w, r, r.PathValue("id"))
	if v == nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Fornax-Version-Status", v.Status)
	if err := logstore.Copy(r.Context(), h.Logs, v.ID, w); err != nil {
		h.Log.Error("api: read log", "version", v.ID, "err", err)
	}
}

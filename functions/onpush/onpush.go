// Package onpush is Fornax's webhook function: POST /webhooks/{provider}/{service_id}.
// It verifies a forge's delivery against the service's secret, records the
// delivery (so a repeat makes no second version), records a queued version
// and publishes its build job — and nothing slower, so it answers in
// milliseconds. It never clones, builds or calls back to the forge.
package onpush

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"gocloud.dev/secrets"

	"github.com/fornax-dev/fornax/internal/forge"
	"github.com/fornax-dev/fornax/internal/httpx"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/trigger"
)

// Deps are what the onpush function works with.
type Deps struct {
	Store   *records.Store
	Keeper  *secrets.Keeper
	Trigger *trigger.Trigger
	// Forges by the provider name used in the URL.
	Forges map[string]forge.Forge
	Now    func() time.Time
	Log    *slog.Logger
}

type handler struct{ Deps }

// New returns the onpush handler, serving /webhooks/.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	h := &handler{d}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/{provider}/{service}", h.serve)
	mux.HandleFunc("/webhooks/", func(w http.ResponseWriter, r *http.Request) {
		httpx.Error(w, http.StatusNotFound, "webhooks are POST /webhooks/{provider}/{service_id}")
	})
	return mux
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, ok := h.Forges[r.PathValue("provider")]
	if !ok {
		httpx.Errorf(w, http.StatusNotFound, "unknown webhook provider %q", r.PathValue("provider"))
		return
	}
	body, err := httpx.ReadBody(r)
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	svc, err := h.Store.GetService(ctx, r.PathValue("service"))
	if errors.Is(err, records.ErrNotFound) {
		httpx.Errorf(w, http.StatusNotFound, "service %q not found", r.PathValue("service"))
		return
	}
	if err != nil {
		h.fail(w, "read service", err)
		return
	}
	secret, err := h.Keeper.Decrypt(ctx, svc.WebhookSecret)
	if err != nil {
		h.fail(w, "decrypt webhook secret", err)
		return
	}
	if err := f.Verify(r.Header, body, secret); err != nil {
		h.Log.Warn("onpush: rejected delivery", "service", svc.ID, "provider", f.Name(), "reason", err.Error(), "remote", r.RemoteAddr)
		httpx.Error(w, http.StatusUnauthorized, err.Error())
		return
	}
	ev, err := f.Parse(r.Header, body)
	if err != nil {
		httpx.Errorf(w, http.StatusBadRequest, "%s webhook: %v", f.Name(), err)
		return
	}
	switch {
	case ev.Kind == forge.KindPing:
		httpx.JSON(w, http.StatusOK, map[string]string{"message": "pong", "service_id": svc.ID})
		return
	case ev.Kind == forge.KindIgnored:
		httpx.JSON(w, http.StatusOK, map[string]string{"ignored": ev.Reason})
		return
	case ev.Push.Deleted:
		httpx.JSON(w, http.StatusOK, map[string]string{"ignored": ev.Push.Ref + " was deleted; nothing to build"})
		return
	}

	deliveryID := svc.ID + "/" + f.Name() + "/" + ev.DeliveryID
	if err := h.Store.RecordDelivery(ctx, &records.Delivery{ID: deliveryID, CreatedAt: h.Now().UTC()}); err != nil {
		if errors.Is(err, records.ErrExists) {
			out := map[string]any{"duplicate": true, "delivery": ev.DeliveryID}
			if d, err := h.Store.GetDelivery(ctx, deliveryID); err == nil && d.VersionID != "" {
				out["version_id"] = d.VersionID
			}
			httpx.JSON(w, http.StatusOK, out)
			return
		}
		h.fail(w, "record delivery", err)
		return
	}
	req := trigger.Request{
		Service: svc,
		Commit:  records.Commit{SHA: ev.Push.SHA, Ref: ev.Push.Ref, Message: ev.Push.Message, Author: ev.Push.Author},
		How:     records.TriggerPush,
	}
	if tag := ev.Push.Tag(); tag != "" {
		req.How = records.TriggerTag
		req.Name = trigger.NameFor(tag)
	}
	v, err := h.Trigger.Start(ctx, req)
	if err != nil {
		// Forget the delivery so that the forge's retry is taken.
		if ferr := h.Store.ForgetDelivery(ctx, deliveryID); ferr != nil {
			h.Log.Error("onpush: forget delivery", "delivery", deliveryID, "err", ferr)
		}
		h.fail(w, "start version", err)
		return
	}
	if err := h.Store.SetDeliveryVersion(ctx, deliveryID, v.ID); err != nil {
		h.Log.Warn("onpush: link delivery to version", "delivery", deliveryID, "err", err)
	}
	httpx.JSON(w, http.StatusAccepted, map[string]string{"version_id": v.ID, "name": v.Name, "status": v.Status})
}

func (h *handler) fail(w http.ResponseWriter, what string, err error) {
	h.Log.Error("onpush: "+what, "err", err)
	httpx.Errorf(w, http.StatusServiceUnavailable, "%s failed; retry the delivery", what)
}

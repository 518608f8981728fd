package api

import (
	"time"

	"github.com/fornax-dev/fornax/internal/records"
)

// The views are the API's JSON shapes. They leave out what must never leave
// Fornax (tokens, webhook secrets) and keep field names stable when the
// records change.

type repoView struct {
	URL          string    `json:"url"`
	VCS          string    `json:"vcs"`
	Username     string    `json:"username,omitempty"`
	HasToken     bool      `json:"has_token"`
	Status       string    `json:"status"`
	StatusReason string    `json:"status_reason,omitempty"`
	CheckedAt    time.Time `json:"checked_at"`
}

type webhookView struct {
	URL string `json:"url"`
	// Secret is only set in the response that generated it.
	Secret string `json:"secret,omitempty"`
}

type serviceView struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Owner       string      `json:"owner"`
	Description string      `json:"description"`
	Repository  repoView    `json:"repository"`
	Webhook     webhookView `json:"webhook"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

func (h *handler) serviceView(s *records.Service) serviceView {
	return serviceView{
		ID: s.ID, Name: s.Name, Owner: s.Owner, Description: s.Description,
		Repository: repoView{
			URL: s.Repository.URL, VCS: s.Repository.VCS, Username: s.Repository.Username,
			HasToken: len(s.Repository.Token) > 0, Status: s.Repository.Status,
			StatusReason: s.Repository.StatusReason, CheckedAt: s.Repository.CheckedAt,
		},
		Webhook:   webhookView{URL: h.webhookURL(s)},
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

type stageView struct {
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error"`
}

type versionView struct {
	ID         string         `json:"id"`
	ServiceID  string         `json:"service_id"`
	Name       string         `json:"name"`
	Status     string         `json:"status"`
	Trigger    string         `json:"trigger"`
	Commit     records.Commit `json:"commit"`
	Image      records.Image  `json:"image"`
	Stages     []stageView    `json:"stages"`
	Error      string         `json:"error"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  *time.Time     `json:"started_at"`
	FinishedAt *time.Time     `json:"finished_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func versionViewOf(v *records.Version) versionView {
	out := versionView{
		ID: v.ID, ServiceID: v.ServiceID, Name: v.Name, Status: v.Status, Trigger: v.Trigger,
		Commit: v.Commit, Image: v.Image, Error: v.Error, CreatedAt: v.CreatedAt,
		StartedAt: timePtr(v.StartedAt), FinishedAt: timePtr(v.FinishedAt),
		Stages: make([]stageView, 0, len(v.Stages)),
	}
	for _, s := range v.Stages {
		out.Stages = append(out.Stages, stageView{
			Name: s.Name, Status: s.Status, Error: s.Error,
			StartedAt: timePtr(s.StartedAt), FinishedAt: timePtr(s.FinishedAt),
		})
	}
	return out
}

// Package records holds Fornax's durable records (services, versions,
// webhook deliveries) and the rules for changing them.
//
// Every state change is a docstore write guarded by the record's revision,
// so concurrent or repeated messages can neither lose an update nor move a
// status backwards. The package never talks to a queue or runs anything.
package records

import (
	"errors"
	"time"
)

// Version statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSuccess   = "success"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Stage statuses add pending and skipped to the version statuses.
const (
	StagePending = "pending"
	StageSkipped = "skipped"
)

// Stage names, in the order a runner goes through them.
const (
	StageClone       = "clone"
	StageIntegration = "integration"
	StagePreBuild    = "pre_build"
	StageBuild       = "build"
	StagePush        = "push"
	StagePostBuild   = "post_build"
)

// StageOrder lists every stage name in running order.
var StageOrder = []string{StageClone, StageIntegration, StagePreBuild, StageBuild, StagePush, StagePostBuild}

// Repository statuses recorded on a service.
const (
	RepoHealthy    = "healthy"
	RepoMissing    = "missing"
	RepoUnknownVCS = "unknownvcs"
)

// Triggers: what made a version.
const (
	TriggerPush = "push"
	TriggerTag  = "tag"
	TriggerAPI  = "api"
)

// ErrNoChange, returned by an update function, skips the write.
var ErrNoChange = errors.New("no change")

// Service is a repository that Fornax turns into versions.
type Service struct {
	ID          string     `docstore:"id" json:"id"`
	Owner       string     `docstore:"owner" json:"owner"`
	Name        string     `docstore:"name" json:"name"`
	Description string     `docstore:"description" json:"description,omitempty"`
	Repository  Repository `docstore:"repository" json:"repository"`
	// WebhookSecret is encrypted with the secrets keeper.
	WebhookSecret []byte    `docstore:"webhook_secret" json:"webhook_secret"`
	CreatedAt     time.Time `docstore:"created_at" json:"created_at"`
	UpdatedAt     time.Time `docstore:"updated_at" json:"updated_at"`

	DocstoreRevision any `docstore:"DocstoreRevision" json:"-"`
}

// Repository says where a service's code lives.
type Repository struct {
	URL      string `docstore:"url" json:"url"`
	VCS      string `docstore:"vcs" json:"vcs"`
	Username string `docstore:"username" json:"username,omitempty"`
	// Token is encrypted with the secrets keeper; empty when none was given.
	Token        []byte    `docstore:"token" json:"token,omitempty"`
	Status       string    `docstore:"status" json:"status"`
	StatusReason string    `docstore:"status_reason" json:"status_reason,omitempty"`
	CheckedAt    time.Time `docstore:"checked_at" json:"checked_at"`
}

// Version is one commit of a service run through its pipeline.
type Version struct {
	ID        string  `docstore:"id" json:"id"`
	ServiceID string  `docstore:"service_id" json:"service_id"`
	Owner     string  `docstore:"owner" json:"owner"`
	Name      string  `docstore:"name" json:"name"`
	Trigger   string  `docstore:"trigger" json:"trigger"`
	Commit    Commit  `docstore:"commit" json:"commit"`
	Status    string  `docstore:"status" json:"status"`
	Stages    []Stage `docstore:"stages" json:"stages"`
	Image     Image   `docstore:"image" json:"image"`
	Error     string  `docstore:"error" json:"error,omitempty"`
	// Runner is the executor's handle of the runner building this version.
	Runner string `docstore:"runner" json:"runner,omitempty"`
	// EventSeq is the highest runner event sequence number applied.
	EventSeq   int64     `docstore:"event_seq" json:"event_seq"`
	CreatedAt  time.Time `docstore:"created_at" json:"created_at"`
	StartedAt  time.Time `docstore:"started_at" json:"started_at,omitzero"`
	FinishedAt time.Time `docstore:"finished_at" json:"finished_at,omitzero"`
	// Deadline is when a running version is failed for taking too long.
	Deadline time.Time `docstore:"deadline" json:"deadline,omitzero"`

	DocstoreRevision any `docstore:"DocstoreRevision" json:"-"`
}

// Commit identifies the code a version was built from.
type Commit struct {
	SHA     string `docstore:"sha" json:"sha"`
	Ref     string `docstore:"ref" json:"ref"`
	Message string `docstore:"message" json:"message"`
	Author  string `docstore:"author" json:"author"`
}

// Image is what a version published.
type Image struct {
	Ref    string `docstore:"ref" json:"ref"`
	Digest string `docstore:"digest" json:"digest"`
}

// Stage is one step of a version's pipeline.
type Stage struct {
	Name       string    `docstore:"name" json:"name"`
	Status     string    `docstore:"status" json:"status"`
	StartedAt  time.Time `docstore:"started_at" json:"started_at,omitzero"`
	FinishedAt time.Time `docstore:"finished_at" json:"finished_at,omitzero"`
	Error      string    `docstore:"error" json:"error,omitempty"`
}

// Delivery remembers a webhook delivery so a repeated one makes no second version.
type Delivery struct {
	ID        string    `docstore:"id" json:"id"` // service id + "/" + provider delivery id
	VersionID string    `docstore:"version_id" json:"version_id"`
	CreatedAt time.Time `docstore:"created_at" json:"created_at"`

	DocstoreRevision any `docstore:"DocstoreRevision" json:"-"`
}

// VersionName reserves a version name within a service, so names stay unique.
type VersionName struct {
	ID        string `docstore:"id" json:"id"` // service id + "/" + name
	VersionID string `docstore:"version_id" json:"version_id"`

	DocstoreRevision any `docstore:"DocstoreRevision" json:"-"`
}

// Terminal reports whether a version status is final.
func Terminal(status string) bool {
	return status == StatusSuccess || status == StatusFailed || status == StatusCancelled
}

// CanMove reports whether a version may go from one status to another.
// Statuses only move forward: queued → running → success/failed/cancelled,
// and a queued version may also be failed or cancelled before it runs.
func CanMove(from, to string) bool {
	switch from {
	case StatusQueued:
		return to == StatusRunning || to == StatusFailed || to == StatusCancelled
	case StatusRunning:
		return to == StatusSuccess || to == StatusFailed || to == StatusCancelled
	}
	return false
}

// stageRank orders stage statuses so that an event can only move a stage forward.
func stageRank(s string) int {
	switch s {
	case StagePending, "":
		return 0
	case StatusRunning:
		return 1
	}
	return 2 // success, failed, cancelled, skipped
}

// CanMoveStage reports whether a stage may go from one status to another.
func CanMoveStage(from, to string) bool {
	return stageRank(to) > stageRank(from)
}

// Package messages holds every message Fornax's functions send each other
// over queues, in one place so a reader sees each contract at once.
//
// Messages are JSON. Each carries a schema version V; a consumer rejects a
// version it does not know instead of guessing. Messages never carry
// secrets: a consumer that needs a credential reads it from the records.
package messages

import (
	"encoding/json"
	"fmt"
	"time"
)

// V is the schema version of the messages this package writes.
const V = 1

// Topic names.
const (
	TopicBuilds = "builds" // BuildJob: onpush/api → build
	TopicEvents = "events" // Event: runner/api → build
)

// BuildJob asks the build function to run a queued version.
type BuildJob struct {
	V         int    `json:"v"`
	VersionID string `json:"version_id"`
	ServiceID string `json:"service_id"`
}

// Event kinds.
const (
	// EventPlan: the runner read the pipeline; Stages lists the stages it will run.
	EventPlan = "plan"
	// EventStage: a stage changed status.
	EventStage = "stage"
	// EventCommit: the runner checked out the commit; Commit has its details.
	EventCommit = "commit"
	// EventImage: the image was pushed; Image has its reference and digest.
	EventImage = "image"
	// EventFinished: the runner is done; Status is the version's final status.
	EventFinished = "finished"
	// EventCancel: a user asked to stop the version (sent by the api function).
	EventCancel = "cancel"
)

// Event reports progress of a version. Runner events carry a sequence
// number that increases within one run, so a repeated delivery is ignored.
type Event struct {
	V         int       `json:"v"`
	VersionID string    `json:"version_id"`
	Seq       int64     `json:"seq"`
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	Stage     string    `json:"stage,omitempty"`
	Status    string    `json:"status,omitempty"`
	Error     string    `json:"error,omitempty"`
	Stages    []string  `json:"stages,omitempty"`
	Commit    *Commit   `json:"commit,omitempty"`
	Image     *Image    `json:"image,omitempty"`
	// Runner is the executor handle to stop, on a cancel event.
	Runner string `json:"runner,omitempty"`
}

// Commit is the code a runner checked out.
type Commit struct {
	SHA     string `json:"sha"`
	Ref     string `json:"ref"`
	Message string `json:"message"`
	Author  string `json:"author"`
}

// Image is what a runner pushed.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// RunnerJob is everything a runner needs to build one version, apart from
// credentials, which reach it through the executor's secret channel.
type RunnerJob struct {
	V         int    `json:"v"`
	VersionID string `json:"version_id"`
	Service   string `json:"service"`
	// Name is the version name, the image tag.
	Name     string `json:"name"`
	Owner    string `json:"owner"`
	RepoURL  string `json:"repo_url"`
	VCS      string `json:"vcs"`
	Username string `json:"username,omitempty"`
	Ref      string `json:"ref"`
	SHA      string `json:"sha"`
	// ImageRef is where the image goes, without digest: registry/owner/service:name.
	ImageRef string `json:"image_ref"`
	// Timeout bounds the whole run.
	Timeout time.Duration `json:"timeout"`
}

// RunnerSecrets are the credentials a runner needs; never logged or queued.
type RunnerSecrets struct {
	RepoToken        string `json:"repo_token,omitempty"`
	RegistryUsername string `json:"registry_username,omitempty"`
	RegistryPassword string `json:"registry_password,omitempty"`
}

// Encode marshals a message, stamping the schema version.
func Encode(m any) ([]byte, error) {
	switch t := m.(type) {
	case *BuildJob:
		t.V = V
	case *Event:
		t.V = V
	case *RunnerJob:
		t.V = V
	}
	return json.Marshal(m)
}

// Decode unmarshals a message and checks its schema version.
func Decode(body []byte, m any) error {
	if err := json.Unmarshal(body, m); err != nil {
		return fmt.Errorf("decode %T: %w", m, err)
	}
	var v int
	switch t := m.(type) {
	case *BuildJob:
		v = t.V
	case *Event:
		v = t.V
	case *RunnerJob:
		v = t.V
	default:
		return nil
	}
	if v != V {
		return fmt.Errorf("decode %T: unsupported schema version %d (want %d)", m, v, V)
	}
	return nil
}

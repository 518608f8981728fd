// Package trigger turns a commit of a service into a queued version and a
// build job. The api (by hand) and onpush (by webhook) functions both start
// versions through it, so names, records and queueing follow one rule.
package trigger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gocloud.dev/pubsub"

	"github.com/fornax-dev/fornax/internal/ids"
	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/records"
)

// Trigger starts versions.
type Trigger struct {
	Store  *records.Store
	Builds *pubsub.Topic
	Now    func() time.Time
}

// Request says what to build.
type Request struct {
	Service *records.Service
	Commit  records.Commit
	How     string // records.TriggerPush, TriggerTag or TriggerAPI
	// Name is the wanted version name; empty means the commit's short sha.
	Name string
	// ExactName makes a clash an error (records.ErrExists) instead of a suffix.
	ExactName bool
}

// ErrQueue means the version was recorded but its build job could not be
// queued; the version is failed with the reason.
var ErrQueue = errors.New("could not queue the build")

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidName reports whether s can be a version name, i.e. an image tag.
func ValidName(s string) bool { return tagRE.MatchString(s) }

// NameFor makes a valid image tag from a tag or branch name: characters an
// image tag cannot hold become '-', and it is cut to 128 characters.
func NameFor(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	out := strings.TrimLeft(string(b), ".-")
	if len(out) > 128 {
		out = out[:128]
	}
	return out
}

// ShortSHA is the first 7 characters of a commit id.
func ShortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Start records a queued version and publishes its build job.
func (t *Trigger) Start(ctx context.Context, req Request) (*records.Version, error) {
	name := req.Name
	if name == "" {
		name = ShortSHA(req.Commit.SHA)
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("version name %q is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", name)
	}
	now := t.Now().UTC()
	v := &records.Version{
		ID:        ids.New("ver"),
		ServiceID: req.Service.ID,
		Owner:     req.Service.Owner,
		Trigger:   req.How,
		Commit:    req.Commit,
		Status:    records.StatusQueued,
		Stages:    []records.Stage{{Name: records.StageClone, Status: records.StagePending}},
		CreatedAt: now,
	}
	var err error
	if v.Name, err = t.Store.ReserveName(ctx, v.ServiceID, name, v.ID, req.ExactName); err != nil {
		return nil, err
	}
	if err := t.Store.CreateVersion(ctx, v); err != nil {
		_ = t.Store.ReleaseName(ctx, v.ServiceID, v.Name)
		return nil, fmt.Errorf("record version: %w", err)
	}
	if err := Enqueue(ctx, t.Builds, v); err != nil {
		reason := fmt.Sprintf("%v: %v", ErrQueue, err)
		v, _ = t.Store.UpdateVersion(ctx, v.ID, func(v *records.Version) error {
			return Fail(v, reason, now)
		})
		return v, fmt.Errorf("%w: %v", ErrQueue, err)
	}
	return v, nil
}

// Enqueue publishes the build job of a queued version.
func Enqueue(ctx context.Context, builds *pubsub.Topic, v *records.Version) error {
	body, err := messages.Encode(&messages.BuildJob{VersionID: v.ID, ServiceID: v.ServiceID})
	if err != nil {
		return err
	}
	return builds.Send(ctx, &pubsub.Message{Body: body})
}

// Fail moves a version that is not finished to failed with a reason,
// closing its open stages. It returns records.ErrNoChange for a finished one.
func Fail(v *records.Version, reason string, now time.Time) error {
	return Finish(v, records.StatusFailed, reason, now)
}

// Finish moves a version to a final status, closing its open stages: a
// running stage takes the final status, a pending one is skipped.
func Finish(v *records.Version, status, reason string, now time.Time) error {
	if !records.CanMove(v.Status, status) {
		return records.ErrNoChange
	}
	v.Status = status
	v.Error = reason
	v.FinishedAt = now
	for i := range v.Stages {
		s := &v.Stages[i]
		switch s.Status {
		case records.StatusRunning:
			s.Status = status
			if status == records.StatusSuccess {
				s.Status = records.StatusFailed
			}
			s.FinishedAt = now
			if status == records.StatusFailed && s.Error == "" {
				s.Error = reason
			}
		case records.StagePending, "":
			s.Status = records.StageSkipped
		}
	}
	return nil
}

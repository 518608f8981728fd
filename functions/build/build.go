// Package build is Fornax's build function. It consumes two queues:
//   - builds: a BuildJob starts a runner for a queued version through an
//     executor (a job delivered twice runs once: only the move from queued
//     to running starts anything);
//   - events: the runner's stage events move the version through its
//     statuses (an event delivered twice, or late, changes nothing, because
//     statuses only move forward), and cancel requests stop runners.
//
// It also fails versions whose runner stopped reporting past their
// deadline. It keeps no state between messages.
package build

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/secrets"

	"github.com/fornax-dev/fornax/internal/executor"
	"github.com/fornax-dev/fornax/internal/logstore"
	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/trigger"
)

// Deps are what the build function works with.
type Deps struct {
	Store  *records.Store
	Keeper *secrets.Keeper
	// Logs holds version logs; a runner that finishes after its version
	// was deleted leaves chunks there, which are removed then.
	Logs     *blob.Bucket
	Executor executor.Executor
	// Registry is where images go: "host:port" or "host:port/prefix".
	Registry string
	// Timeout bounds one version's run.
	Timeout time.Duration
	// Grace is how long past its deadline a running version may stay
	// silent before Sweep fails it.
	Grace time.Duration
	Now   func() time.Time
	Log   *slog.Logger
}

// Function is the build function.
type Function struct{ Deps }

// New returns the build function.
func New(d Deps) *Function {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Timeout <= 0 {
		d.Timeout = 30 * time.Minute
	}
	if d.Grace <= 0 {
		d.Grace = time.Minute
	}
	return &Function{d}
}

// HandleJob starts the runner of a queued version and returns it, or nil
// when there is nothing to run (the version is gone, or no longer queued).
// An error means the message should be retried.
func (f *Function) HandleJob(ctx context.Context, body []byte) (executor.Run, error) {
	var job messages.BuildJob
	if err := messages.Decode(body, &job); err != nil {
		f.Log.Error("build: drop undecodable job", "err", err)
		return nil, nil // retrying would not help
	}
	v, err := f.Store.GetVersion(ctx, job.VersionID)
	if errors.Is(err, records.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if v.Status != records.StatusQueued {
		return nil, nil
	}
	svc, err := f.Store.GetService(ctx, v.ServiceID)
	if errors.Is(err, records.ErrNotFound) {
		f.fail(ctx, v.ID, "its service was deleted")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var token string
	if len(svc.Repository.Token) > 0 {
		b, err := f.Keeper.Decrypt(ctx, svc.Repository.Token)
		if err != nil {
			f.fail(ctx, v.ID, "cannot decrypt the repository token: the secrets key changed?")
			return nil, nil
		}
		token = string(b)
	}
	now := f.Now().UTC()
	v, err = f.Store.UpdateVersion(ctx, v.ID, func(v *records.Version) error {
		if v.Status != records.StatusQueued {
			return records.ErrNoChange
		}
		v.Status = records.StatusRunning
		v.StartedAt = now
		v.Deadline = now.Add(f.Timeout)
		return nil
	})
	if errors.Is(err, records.ErrNoChange) || errors.Is(err, records.ErrNotFound) {
		return nil, nil // another delivery of this job got here first
	}
	if err != nil {
		return nil, err
	}
	spec := executor.Spec{
		Job: messages.RunnerJob{
			V: messages.V, VersionID: v.ID, Service: svc.Name, Owner: svc.Owner, Name: v.Name,
			RepoURL: svc.Repository.URL, VCS: svc.Repository.VCS, Username: svc.Repository.Username,
			Ref: v.Commit.Ref, SHA: v.Commit.SHA,
			ImageRef: fmt.Sprintf("%s/%s/%s:%s", f.Registry, svc.Owner, svc.Name, v.Name),
			Timeout:  f.Timeout,
		},
		Secrets: messages.RunnerSecrets{RepoToken: token},
	}
	run, err := f.Executor.Start(ctx, spec)
	if err != nil {
		f.fail(ctx, v.ID, fmt.Sprintf("could not start the runner (%s executor): %v", f.Executor.Name(), err))
		return nil, nil
	}
	v, err = f.Store.UpdateVersion(ctx, v.ID, func(v *records.Version) error {
		v.Runner = run.Handle()
		return nil
	})
	if err != nil || records.Terminal(v.Status) {
		// Cancelled (or deleted) while starting: stop what was started.
		if cerr := f.Executor.Cancel(context.WithoutCancel(ctx), run.Handle()); cerr != nil {
			f.Log.Error("build: cancel runner", "version", job.VersionID, "err", cerr)
		}
	}
	return run, nil
}

func (f *Function) fail(ctx context.Context, id, reason string) {
	_, err := f.Store.UpdateVersion(ctx, id, func(v *records.Version) error {
		return trigger.Fail(v, reason, f.Now().UTC())
	})
	if err != nil && !errors.Is(err, records.ErrNoChange) {
		f.Log.Error("build: fail version", "version", id, "reason", reason, "err", err)
	}
}

// HandleEvent applies one event. An error means the message should be retried.
func (f *Function) HandleEvent(ctx context.Context, body []byte) error {
	var ev messages.Event
	if err := messages.Decode(body, &ev); err != nil {
		f.Log.Error("build: drop undecodable event", "err", err)
		return nil
	}
	if ev.Kind == messages.EventCancel {
		handle := ev.Runner
		if handle == "" {
			if v, err := f.Store.GetVersion(ctx, ev.VersionID); err == nil {
				handle = v.Runner
			}
		}
		if handle == "" {
			return nil // never started, or start will see the cancelled status
		}
		return f.Executor.Cancel(ctx, handle)
	}
	_, err := f.Store.UpdateVersion(ctx, ev.VersionID, func(v *records.Version) error {
		return Apply(v, &ev)
	})
	if errors.Is(err, records.ErrNotFound) && ev.Kind == messages.EventFinished && f.Logs != nil {
		// The version was deleted while its runner was still writing.
		return logstore.Delete(ctx, f.Logs, ev.VersionID)
	}
	if errors.Is(err, records.ErrNoChange) || errors.Is(err, records.ErrNotFound) {
		return nil
	}
	return err
}

// Apply moves a version forward by one runner event. It returns
// records.ErrNoChange when the event changes nothing: a repeat, a late
// event, or a report about a version that is already finished.
func Apply(v *records.Version, ev *messages.Event) error {
	if records.Terminal(v.Status) {
		return records.ErrNoChange
	}
	changed := false
	switch ev.Kind {
	case messages.EventPlan:
		have := map[string]bool{}
		for _, s := range v.Stages {
			have[s.Name] = true
		}
		for _, name := range ev.Stages {
			if !have[name] {
				v.Stages = append(v.Stages, records.Stage{Name: name, Status: records.StagePending})
				changed = true
			}
		}
		sortStages(v.Stages)
	case messages.EventStage:
		i := stageIndex(v, ev.Stage)
		if i < 0 {
			v.Stages = append(v.Stages, records.Stage{Name: ev.Stage, Status: records.StagePending})
			sortStages(v.Stages)
			i = stageIndex(v, ev.Stage)
		}
		s := &v.Stages[i]
		if records.CanMoveStage(s.Status, ev.Status) {
			if s.StartedAt.IsZero() {
				s.StartedAt = ev.Time
			}
			if ev.Status != records.StatusRunning {
				s.FinishedAt = ev.Time
			}
			s.Status = ev.Status
			s.Error = ev.Error
			changed = true
		}
	case messages.EventCommit:
		if ev.Commit != nil {
			if v.Commit.Message == "" {
				v.Commit.Message = ev.Commit.Message
				changed = true
			}
			if v.Commit.Author == "" {
				v.Commit.Author = ev.Commit.Author
				changed = true
			}
		}
	case messages.EventImage:
		if ev.Image != nil && v.Image != *toImage(ev.Image) {
			v.Image = *toImage(ev.Image)
			changed = true
		}
	case messages.EventFinished:
		if err := trigger.Finish(v, ev.Status, ev.Error, ev.Time); err != nil {
			return err
		}
		changed = true
	}
	if ev.Seq > v.EventSeq {
		v.EventSeq = ev.Seq
	}
	if !changed {
		return records.ErrNoChange
	}
	return nil
}

func toImage(i *messages.Image) *records.Image { return &records.Image{Ref: i.Ref, Digest: i.Digest} }

func stageIndex(v *records.Version, name string) int {
	for i, s := range v.Stages {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func sortStages(st []records.Stage) {
	rank := map[string]int{}
	for i, n := range records.StageOrder {
		rank[n] = i
	}
	// Insertion sort: a handful of stages, and stable.
	for i := 1; i < len(st); i++ {
		for j := i; j > 0 && rank[st[j].Name] < rank[st[j-1].Name]; j-- {
			st[j], st[j-1] = st[j-1], st[j]
		}
	}
}

// Sweep fails running versions whose runner has not finished by their
// deadline plus grace, and stops those runners: a runner that died never
// reports, and its version must not stay running forever.
func (f *Function) Sweep(ctx context.Context) error {
	running, err := f.Store.VersionsWithStatus(ctx, records.StatusRunning)
	if err != nil {
		return err
	}
	now := f.Now().UTC()
	for _, v := range running {
		if v.Deadline.IsZero() || now.Before(v.Deadline.Add(f.Grace)) {
			continue
		}
		f.fail(ctx, v.ID, fmt.Sprintf("timed out: no result from the runner %s after it started", now.Sub(v.StartedAt).Round(time.Second)))
		if v.Runner != "" {
			if err := f.Executor.Cancel(ctx, v.Runner); err != nil {
				f.Log.Error("build: cancel overdue runner", "version", v.ID, "err", err)
			}
		}
	}
	return nil
}

// Package runner is what runs inside an ephemeral build environment: it
// checks out one commit, reads its caicloud.yml, runs the stages in order,
// builds and pushes the image, and reports every stage change as an event
// and every line as log. It stops at the first failure.
//
// It never touches Fornax's records: events are its only output besides
// the log and the image, so it can run anywhere an executor puts it. Its
// user commands get a clean environment, never Fornax's own secrets.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"gocloud.dev/blob"
	"gocloud.dev/pubsub"

	"github.com/fornax-dev/fornax/internal/caicloud"
	"github.com/fornax-dev/fornax/internal/executor"
	"github.com/fornax-dev/fornax/internal/imagebuild"
	"github.com/fornax-dev/fornax/internal/logstore"
	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/vcs"
)

// EventSink receives the runner's events.
type EventSink interface {
	Send(ctx context.Context, ev *messages.Event) error
}

// Deps are what a runner works with.
type Deps struct {
	Events  EventSink
	Logs    *blob.Bucket
	Builder imagebuild.Builder
	// FlushInterval is how often the log is written out while a stage runs.
	FlushInterval time.Duration
	Now           func() time.Time
	// Executor names the executor in notes such as "image is ignored".
	Executor string
}

// run is the state of one job.
type run struct {
	Deps
	job     messages.RunnerJob
	secrets messages.RunnerSecrets
	ws      string // workspace: the source lives in ws/src
	src     string
	log     io.Writer

	mu  sync.Mutex
	seq int64
}

// stageError fails a stage with a message meant for the user.
type stageError struct{ msg string }

func (e *stageError) Error() string { return e.msg }

func failf(format string, args ...any) error { return &stageError{fmt.Sprintf(format, args...)} }

// Run builds one job in workspace. It always ends with a finished event
// (unless the event sink itself is broken, which it returns).
func Run(ctx context.Context, d Deps, job messages.RunnerJob, secrets messages.RunnerSecrets, workspace string) error {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.FlushInterval <= 0 {
		d.FlushInterval = 250 * time.Millisecond
	}
	if d.Executor == "" {
		d.Executor = "process"
	}
	lw, err := logstore.NewWriter(context.WithoutCancel(ctx), d.Logs, job.VersionID, d.FlushInterval)
	if err != nil {
		return err
	}
	masked := newMasker(lw, secrets.RepoToken, secrets.RegistryPassword)
	r := &run{Deps: d, job: job, secrets: secrets, ws: workspace, src: filepath.Join(workspace, "src"), log: masked}
	status, reason := r.pipeline(ctx)
	r.logf("\n==> version %s: %s", job.Name, status)
	if reason != "" {
		r.logf(" (%s)", reason)
	}
	r.logf("\n")
	masked.Close()
	lerr := lw.Close()
	// The final report must go out even when ctx was cancelled.
	err = r.emit(context.WithoutCancel(ctx), &messages.Event{Kind: messages.EventFinished, Status: status, Error: reason})
	return errors.Join(err, lerr)
}

func (r *run) logf(format string, args ...any) { fmt.Fprintf(r.log, format, args...) }

func (r *run) emit(ctx context.Context, ev *messages.Event) error {
	r.mu.Lock()
	r.seq++
	ev.Seq = r.seq
	r.mu.Unlock()
	ev.V = messages.V
	ev.VersionID = r.job.VersionID
	if ev.Time.IsZero() {
		ev.Time = r.Now().UTC()
	}
	return r.Events.Send(ctx, ev)
}

// stage runs fn as one stage, reporting its start and end.
func (r *run) stage(ctx context.Context, name string, fn func() error) error {
	r.logf("\n==> stage %s\n", name)
	if err := r.emit(ctx, &messages.Event{Kind: messages.EventStage, Stage: name, Status: records.StatusRunning}); err != nil {
		return err
	}
	start := r.Now()
	err := fn()
	status, msg := records.StatusSuccess, ""
	if err != nil {
		status, msg = records.StatusFailed, err.Error()
		if ctx.Err() != nil {
			status, msg = r.stopped(ctx)
		}
		r.logf("==> stage %s %s after %s: %s\n", name, status, r.Now().Sub(start).Round(time.Millisecond), msg)
	} else {
		r.logf("==> stage %s done in %s\n", name, r.Now().Sub(start).Round(time.Millisecond))
	}
	if eerr := r.emit(context.WithoutCancel(ctx), &messages.Event{Kind: messages.EventStage, Stage: name, Status: status, Error: msg}); eerr != nil && err == nil {
		return eerr
	}
	if err != nil {
		return &stageError{msg}
	}
	return nil
}

// stopped tells a cancellation from a timeout.
func (r *run) stopped(ctx context.Context) (status, reason string) {
	cause := context.Cause(ctx)
	if errors.Is(cause, executor.ErrTimeout) || errors.Is(cause, executor.ErrShutdown) {
		return records.StatusFailed, cause.Error()
	}
	return records.StatusCancelled, "cancelled"
}

// pipeline runs every stage and returns the version's final status.
func (r *run) pipeline(ctx context.Context) (status, reason string) {
	fail := func(err error) (string, string) {
		if ctx.Err() != nil {
			return r.stopped(ctx)
		}
		return records.StatusFailed, err.Error()
	}
	r.logf("Fornax runner: version %s of %s/%s, commit %s (%s), %s executor\n", r.job.Name, r.job.Owner, r.job.Service, r.job.SHA, r.job.Ref, r.Executor)

	repo := vcs.Repo{URL: r.job.RepoURL, VCS: r.job.VCS, Username: r.job.Username, Token: r.secrets.RepoToken}
	err := r.stage(ctx, records.StageClone, func() error {
		c, err := vcs.Checkout(ctx, repo, r.job.Ref, r.job.SHA, r.src, r.log)
		if err != nil {
			return err
		}
		r.logf("checked out %s: %s\n", c.SHA, firstLine(c.Message))
		return r.emit(ctx, &messages.Event{Kind: messages.EventCommit, Commit: &messages.Commit{SHA: c.SHA, Ref: c.Ref, Message: c.Message, Author: c.Author}})
	})
	if err != nil {
		return fail(err)
	}

	cfg, err := r.readConfig()
	if err != nil {
		r.logf("error: %v\n", err)
		return records.StatusFailed, err.Error()
	}
	plan := []string{records.StageClone}
	if cfg.Integration != nil {
		plan = append(plan, records.StageIntegration)
	}
	if cfg.PreBuild != nil {
		plan = append(plan, records.StagePreBuild)
	}
	plan = append(plan, records.StageBuild, records.StagePush)
	if cfg.PostBuild != nil {
		plan = append(plan, records.StagePostBuild)
	}
	if err := r.emit(ctx, &messages.Event{Kind: messages.EventPlan, Stages: plan}); err != nil {
		return fail(err)
	}

	for _, st := range []*caicloud.Stage{cfg.Integration, cfg.PreBuild} {
		if st == nil {
			continue
		}
		if err := r.stage(ctx, st.Name, func() error { return r.commands(ctx, st) }); err != nil {
			return fail(err)
		}
	}

	var art imagebuild.Artifact
	err = r.stage(ctx, records.StageBuild, func() error {
		dockerfile, contextDir, err := cfg.Build.Paths()
		if err != nil {
			return fmt.Errorf("caicloud.yml build: %v", err)
		}
		if _, err := os.Stat(filepath.Join(r.src, dockerfile)); err != nil {
			return failf("no Dockerfile at %s in the repository", dockerfile)
		}
		art, err = r.Builder.Build(ctx, imagebuild.Request{
			ContextDir: filepath.Join(r.src, contextDir),
			Dockerfile: filepath.Join(r.src, dockerfile),
			Log:        r.log,
		})
		return err
	})
	if err != nil {
		return fail(err)
	}
	err = r.stage(ctx, records.StagePush, func() error {
		var auth authn.Authenticator
		if r.secrets.RegistryUsername != "" {
			auth = &authn.Basic{Username: r.secrets.RegistryUsername, Password: r.secrets.RegistryPassword}
		}
		r.logf("pushing %s\n", r.job.ImageRef)
		digest, err := art.Push(ctx, r.job.ImageRef, auth)
		if err != nil {
			return err
		}
		r.logf("pushed %s@%s\n", r.job.ImageRef, digest)
		return r.emit(ctx, &messages.Event{Kind: messages.EventImage, Image: &messages.Image{Ref: r.job.ImageRef, Digest: digest}})
	})
	if err != nil {
		return fail(err)
	}
	if cfg.PostBuild != nil {
		if err := r.stage(ctx, records.StagePostBuild, func() error { return r.commands(ctx, cfg.PostBuild) }); err != nil {
			return fail(err)
		}
	}
	return records.StatusSuccess, ""
}

// readConfig reads caicloud.yml; without one, the root Dockerfile is built.
func (r *run) readConfig() (*caicloud.Config, error) {
	data, err := os.ReadFile(filepath.Join(r.src, "caicloud.yml"))
	if errors.Is(err, os.ErrNotExist) {
		r.logf("no caicloud.yml: building the root Dockerfile\n")
		return &caicloud.Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read caicloud.yml: %v", err)
	}
	cfg, warnings, err := caicloud.Parse(data)
	for _, w := range warnings {
		r.logf("warning: %s\n", w.String())
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// TopicEvents sends events to a pubsub topic.
type TopicEvents struct{ Topic *pubsub.Topic }

// Send implements EventSink.
func (t TopicEvents) Send(ctx context.Context, ev *messages.Event) error {
	body, err := messages.Encode(ev)
	if err != nil {
		return err
	}
	return t.Topic.Send(ctx, &pubsub.Message{Body: body})
}

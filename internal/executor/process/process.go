// Package process runs runners inside the Fornax process, each in a
// workspace directory of its own, with the user's commands in the host
// shell. It isolates nothing: it is for trying Fornax on a laptop and for
// trusted code only. Cancelling a run kills the process groups of its
// commands before Cancel returns.
package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fornax-dev/fornax/internal/executor"
	"github.com/fornax-dev/fornax/internal/ids"
	"github.com/fornax-dev/fornax/internal/messages"
)

// RunnerFunc runs one job in workspace until done or ctx ends.
type RunnerFunc func(ctx context.Context, job messages.RunnerJob, secrets messages.RunnerSecrets, workspace string) error

// Executor is the process executor.
type Executor struct {
	// WorkRoot holds one workspace directory per run, removed when it ends.
	WorkRoot string
	Runner   RunnerFunc

	mu   sync.Mutex
	runs map[string]*run
}

type run struct {
	handle string
	cancel context.CancelCauseFunc
	done   chan struct{}
}

func (r *run) Handle() string        { return r.handle }
func (r *run) Done() <-chan struct{} { return r.done }

// Name implements executor.Executor.
func (e *Executor) Name() string { return "process" }

// Start implements executor.Executor.
func (e *Executor) Start(_ context.Context, spec executor.Spec) (executor.Run, error) {
	handle := "process:" + ids.New("run")
	ws := filepath.Join(e.WorkRoot, spec.Job.VersionID+"-"+handle[len("process:run_"):])
	if err := os.MkdirAll(ws, 0o700); err != nil {
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	// The run outlives the request that started it: it gets its own
	// context, bounded by the job's timeout.
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := context.CancelFunc(func() {})
	if spec.Job.Timeout > 0 {
		ctx, stop = context.WithTimeoutCause(ctx, spec.Job.Timeout, fmt.Errorf("%w after %s", executor.ErrTimeout, spec.Job.Timeout))
	}
	r := &run{handle: handle, cancel: cancel, done: make(chan struct{})}
	e.mu.Lock()
	if e.runs == nil {
		e.runs = map[string]*run{}
	}
	e.runs[handle] = r
	e.mu.Unlock()
	go func() {
		defer close(r.done)
		defer func() {
			e.mu.Lock()
			delete(e.runs, handle)
			e.mu.Unlock()
			stop()
			cancel(nil)
			_ = os.RemoveAll(ws)
		}()
		_ = e.Runner(ctx, spec.Job, spec.Secrets, ws)
	}()
	return r, nil
}

// Cancel implements executor.Executor; it waits (up to ctx) for the run's
// processes to be gone.
func (e *Executor) Cancel(ctx context.Context, handle string) error {
	e.mu.Lock()
	r := e.runs[handle]
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel(context.Canceled)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return fmt.Errorf("run %s did not stop within 30s", handle)
	}
}

// Running returns how many runs are under way.
func (e *Executor) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.runs)
}

// CancelAll stops every run and waits for them, for a clean shutdown.
func (e *Executor) CancelAll() {
	e.mu.Lock()
	runs := make([]*run, 0, len(e.runs))
	for _, r := range e.runs {
		runs = append(runs, r)
	}
	e.mu.Unlock()
	for _, r := range runs {
		r.cancel(executor.ErrShutdown)
	}
	for _, r := range runs {
		<-r.done
	}
}

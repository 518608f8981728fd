// Package executor is the seam between the build function and wherever a
// runner actually runs: a local process (here), a container on a Docker
// API engine, or a Kubernetes Job (next). The build function never knows
// which one is in use.
package executor

import (
	"context"
	"errors"

	"github.com/fornax-dev/fornax/internal/messages"
)

// Spec is what a runner is started with.
type Spec struct {
	Job     messages.RunnerJob
	Secrets messages.RunnerSecrets
}

// Run is a started runner.
type Run interface {
	// Handle identifies the run to Cancel; it is stored on the version so
	// any copy of the build function can stop it.
	Handle() string
	// Done is closed when the runner has exited and its processes are gone.
	Done() <-chan struct{}
}

// Executor starts and stops runners.
type Executor interface {
	Name() string
	// Start launches a runner for the spec and returns without waiting for it.
	Start(ctx context.Context, spec Spec) (Run, error)
	// Cancel stops a run and everything it started. Cancelling a run that
	// has finished or is unknown is not an error.
	Cancel(ctx context.Context, handle string) error
}

// ErrNeedsContainers is returned by executors that cannot run sidecar services.
var ErrNeedsContainers = errors.New("needs a container executor")

// ErrTimeout is the cause of a run's context when the job's timeout passed.
var ErrTimeout = errors.New("build timed out")

// ErrShutdown is the cause of a run's context when Fornax itself stops.
var ErrShutdown = errors.New("Fornax stopped while this version was running; start it again")

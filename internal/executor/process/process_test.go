package process_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/executor"
	"github.com/fornax-dev/fornax/internal/executor/process"
	"github.com/fornax-dev/fornax/internal/messages"
)

// bound is how long a test waits for something that should happen at
// once before calling it a hang.
const bound = 30 * time.Second

var _ executor.Executor = (*process.Executor)(nil)

// shellRun records what one run of shellRunner saw.
type shellRun struct {
	workspace string
	pid       int // of the background sleep
	cause     error
	returned  atomic.Bool
}

// shellRunner runs, like runner/commands.go, a command in its own process
// group that is killed as a whole when ctx ends. The command starts a
// background sleep and waits for it, so only killing the group ends it.
type shellRunner struct {
	mu      sync.Mutex
	runs    map[string]*shellRun // by version id
	started chan string          // version ids whose sleep is running
}

func newShellRunner() *shellRunner {
	return &shellRunner{runs: map[string]*shellRun{}, started: make(chan string, 16)}
}

func (s *shellRunner) run(ctx context.Context, job messages.RunnerJob, _ messages.RunnerSecrets, ws string) error {
	r := &shellRun{workspace: ws}
	s.mu.Lock()
	s.runs[job.VersionID] = r
	s.mu.Unlock()
	defer r.returned.Store(true)

	pidfile := filepath.Join(ws, "pidfile")
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "sleep 300 & echo $! > pidfile.tmp && mv pidfile.tmp pidfile; wait")
	cmd.Dir = ws
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	// Wait for the pid file, or for the command to end early.
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
poll:
	for {
		if b, rerr := os.ReadFile(pidfile); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				s.mu.Lock()
				r.pid = pid
				s.mu.Unlock()
				s.started <- job.VersionID
				err = <-waited
				break poll
			}
		}
		select {
		case err = <-waited:
			break poll
		case <-time.After(5 * time.Millisecond):
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	s.mu.Lock()
	r.cause = context.Cause(ctx)
	s.mu.Unlock()
	return err
}

func (s *shellRunner) get(versionID string) *shellRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[versionID]
}

func (s *shellRunner) waitStarted(t *testing.T, versionID string) *shellRun {
	t.Helper()
	select {
	case id := <-s.started:
		if id != versionID {
			t.Fatalf("run %s started, want %s", id, versionID)
		}
	case <-time.After(bound):
		t.Fatalf("run %s never started its sleep", versionID)
	}
	return s.get(versionID)
}

// gone reports whether pid no longer runs (absent, or a zombie waiting
// for whoever inherited it).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background process %d still runs after the run was cancelled", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, e *process.Executor, job messages.RunnerJob) executor.Run {
	t.Helper()
	r, err := e.Start(context.Background(), executor.Spec{Job: job})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		_ = e.Cancel(ctx, r.Handle())
	})
	return r
}

func isDone(r executor.Run) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

func TestCancelWaitsForRunnerAndCleansUp(t *testing.T) {
	root := t.TempDir()
	sr := newShellRunner()
	e := &process.Executor{WorkRoot: root, Runner: sr.run}
	if e.Name() != "process" {
		t.Errorf("Name = %q", e.Name())
	}
	r := start(t, e, messages.RunnerJob{VersionID: "ver_1"})
	if !strings.HasPrefix(r.Handle(), "process:") {
		t.Errorf("handle %q lacks the executor prefix", r.Handle())
	}
	run := sr.waitStarted(t, "ver_1")
	if filepath.Dir(run.workspace) != root || !strings.HasPrefix(filepath.Base(run.workspace), "ver_1-") {
		t.Errorf("workspace %q is not a ver_1 directory in %s", run.workspace, root)
	}
	if fi, err := os.Stat(run.workspace); err != nil || !fi.IsDir() {
		t.Fatalf("workspace missing while running: %v", err)
	}
	if n := e.Running(); n != 1 {
		t.Errorf("Running = %d, want 1", n)
	}
	if isDone(r) {
		t.Fatal("run done before it was cancelled")
	}

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := e.Cancel(ctx, r.Handle()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	// Everything below must already be true when Cancel returns.
	if !run.returned.Load() {
		t.Error("Cancel returned before the runner function did")
	}
	if !isDone(r) {
		t.Error("Done not closed when Cancel returned")
	}
	if _, err := os.Stat(run.workspace); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace still there after Cancel: %v", err)
	}
	if n := e.Running(); n != 0 {
		t.Errorf("Running = %d after Cancel, want 0", n)
	}
	if !errors.Is(run.cause, context.Canceled) {
		t.Errorf("runner's context cause = %v, want context.Canceled", run.cause)
	}
	// The group was killed: the background sleep goes too.
	waitGone(t, run.pid)

	// Cancelling again, or cancelling what never existed, is not an error.
	if err := e.Cancel(ctx, r.Handle()); err != nil {
		t.Errorf("second Cancel: %v", err)
	}
	if err := e.Cancel(ctx, "process:run_doesnotexist"); err != nil {
		t.Errorf("Cancel of unknown handle: %v", err)
	}
}

func TestRunEndingByItselfCleansUp(t *testing.T) {
	root := t.TempDir()
	var ws string
	e := &process.Executor{WorkRoot: root, Runner: func(ctx context.Context, job messages.RunnerJob, _ messages.RunnerSecrets, workspace string) error {
		ws = workspace
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "echo hi > out.txt")
		cmd.Dir = workspace
		return cmd.Run()
	}}
	r := start(t, e, messages.RunnerJob{VersionID: "ver_1"})
	select {
	case <-r.Done():
	case <-time.After(bound):
		t.Fatal("run never finished")
	}
	if _, err := os.Stat(ws); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace %q left behind: %v", ws, err)
	}
	if n := e.Running(); n != 0 {
		t.Errorf("Running = %d, want 0", n)
	}
	if err := e.Cancel(context.Background(), r.Handle()); err != nil {
		t.Errorf("Cancel of a finished run: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Errorf("work root not empty: %v", entries)
	}
}

func TestTimeout(t *testing.T) {
	sr := newShellRunner()
	e := &process.Executor{WorkRoot: t.TempDir(), Runner: sr.run}
	r := start(t, e, messages.RunnerJob{VersionID: "ver_1", Timeout: 300 * time.Millisecond})
	select {
	case <-r.Done():
	case <-time.After(bound):
		t.Fatal("run outlived its timeout")
	}
	run := sr.get("ver_1")
	if run == nil {
		t.Fatal("runner never ran")
	}
	if !errors.Is(run.cause, executor.ErrTimeout) {
		t.Errorf("runner's context cause = %v, want ErrTimeout", run.cause)
	}
	if run.pid != 0 {
		waitGone(t, run.pid)
	}
	if n := e.Running(); n != 0 {
		t.Errorf("Running = %d, want 0", n)
	}
}

func TestCancelAll(t *testing.T) {
	root := t.TempDir()
	sr := newShellRunner()
	e := &process.Executor{WorkRoot: root, Runner: sr.run}
	ids := []string{"ver_a", "ver_b", "ver_c"}
	var runs []executor.Run
	for _, id := range ids {
		runs = append(runs, start(t, e, messages.RunnerJob{VersionID: id}))
		sr.waitStarted(t, id)
	}
	if n := e.Running(); n != 3 {
		t.Errorf("Running = %d, want 3", n)
	}
	done := make(chan struct{})
	go func() { e.CancelAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatal("CancelAll hung")
	}
	for i, id := range ids {
		run := sr.get(id)
		if !run.returned.Load() || !isDone(runs[i]) {
			t.Errorf("%s: CancelAll returned before the run ended", id)
		}
		if !errors.Is(run.cause, executor.ErrShutdown) {
			t.Errorf("%s: cause = %v, want ErrShutdown", id, run.cause)
		}
		if _, err := os.Stat(run.workspace); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: workspace left: %v", id, err)
		}
		waitGone(t, run.pid)
	}
	if n := e.Running(); n != 0 {
		t.Errorf("Running = %d after CancelAll, want 0", n)
	}
	// With nothing running, CancelAll returns at once.
	e.CancelAll()
}

func TestCancelGivesUpWithCtx(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	e := &process.Executor{WorkRoot: t.TempDir(), Runner: func(ctx context.Context, _ messages.RunnerJob, _ messages.RunnerSecrets, _ string) error {
		close(entered)
		<-release // ignores ctx, like a stuck runner
		return nil
	}}
	r := start(t, e, messages.RunnerJob{VersionID: "ver_1"})
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.Cancel(ctx, r.Handle()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cancel of a stuck run = %v, want the ctx's error", err)
	}
	if isDone(r) {
		t.Error("run reported done while its runner still runs")
	}
	if n := e.Running(); n != 1 {
		t.Errorf("Running = %d, want 1 while stuck", n)
	}
	close(release)
	select {
	case <-r.Done():
	case <-time.After(bound):
		t.Fatal("run never ended after release")
	}
}

func TestRunningCounts(t *testing.T) {
	var mu sync.Mutex
	releases := map[string]chan struct{}{}
	entered := make(chan string, 4)
	e := &process.Executor{WorkRoot: t.TempDir(), Runner: func(ctx context.Context, job messages.RunnerJob, _ messages.RunnerSecrets, _ string) error {
		mu.Lock()
		ch := releases[job.VersionID]
		mu.Unlock()
		entered <- job.VersionID
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return nil
	}}
	if n := e.Running(); n != 0 {
		t.Errorf("Running of a new executor = %d", n)
	}
	var runs []executor.Run
	for i, id := range []string{"ver_1", "ver_2", "ver_3"} {
		mu.Lock()
		releases[id] = make(chan struct{})
		mu.Unlock()
		runs = append(runs, start(t, e, messages.RunnerJob{VersionID: id}))
		<-entered
		if n := e.Running(); n != i+1 {
			t.Errorf("Running = %d after %d starts", n, i+1)
		}
	}
	mu.Lock()
	close(releases["ver_2"])
	mu.Unlock()
	select {
	case <-runs[1].Done():
	case <-time.After(bound):
		t.Fatal("released run never ended")
	}
	if n := e.Running(); n != 2 {
		t.Errorf("Running = %d after one ended, want 2", n)
	}
	// Each run has its own handle.
	if runs[0].Handle() == runs[2].Handle() {
		t.Error("two runs share a handle")
	}
}

package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fornax-dev/fornax/internal/caicloud"
	"github.com/fornax-dev/fornax/internal/executor"
)

// commands runs a stage's commands in the host shell, in order, stopping at
// the first that fails. Each command is its own process group, so stopping
// the run kills whatever the command started too.
func (r *run) commands(ctx context.Context, st *caicloud.Stage) error {
	if len(st.Services) > 0 {
		names := make([]string, len(st.Services))
		for i, s := range st.Services {
			names[i] = s.Name
		}
		return fmt.Errorf("%s.services (%s) %w (docker or kubernetes); the %s executor runs commands in the host shell and cannot start service containers",
			st.Name, strings.Join(names, ", "), executor.ErrNeedsContainers, r.Executor)
	}
	if st.Image != "" {
		r.logf("note: %s.image %q is ignored by the %s executor; commands run in the host shell\n", st.Name, st.Image, r.Executor)
	}
	env := r.commandEnv(st.Environment)
	for _, c := range st.Commands {
		r.logf("$ %s\n", c)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c)
		cmd.Dir = r.src
		cmd.Env = env
		cmd.Stdout = r.log
		cmd.Stderr = r.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error {
			// Kill the whole group: a command's children must not outlive the run.
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		if cmd.Process != nil {
			// Background children of a command that exited are part of the run too.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && ctx.Err() == nil {
				return failf("command %q exited with status %d", c, ee.ExitCode())
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return failf("command %q: %v", c, err)
		}
	}
	return nil
}

// commandEnv is a clean environment: the host's PATH, a HOME of the run's
// own, facts about the build, then the stage's environment.
func (r *run) commandEnv(stageEnv []string) []string {
	home := filepath.Join(r.ws, "home")
	_ = os.MkdirAll(home, 0o700)
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + home,
		"LANG=C.UTF-8",
		"CI=true",
		"FORNAX=true",
		"FORNAX_SERVICE=" + r.job.Service,
		"FORNAX_VERSION=" + r.job.Name,
		"FORNAX_COMMIT=" + r.job.SHA,
		"FORNAX_REF=" + r.job.Ref,
		"FORNAX_IMAGE=" + r.job.ImageRef,
	}
	return append(env, stageEnv...)
}

package imagebuild

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Request says what to build.
type Request struct {
	ContextDir string            // absolute path of the build context
	Dockerfile string            // path of the Dockerfile; relative paths are relative to ContextDir; default "Dockerfile"
	BuildArgs  map[string]string // values for ARG
	Log        io.Writer         // human progress lines ("Step 1/5 : FROM ...", etc.); may be nil
	Keychain   authn.Keychain    // credentials for pulling base images; nil = anonymous

	// Target names the stage to build; empty means the last one. Stages the
	// target does not depend on are not built, as with BuildKit.
	Target string
}

// Builder builds images. Implementations: Daemonless (here), kaniko (later).
type Builder interface {
	Build(ctx context.Context, req Request) (Artifact, error)
}

// Artifact is a built image not yet pushed.
type Artifact interface {
	Digest() (string, error)                                                                   // "sha256:..."
	Push(ctx context.Context, ref string, auth authn.Authenticator) (digest string, err error) // auth nil = anonymous
}

// supportedInstructions is spelled out in errors so that whoever reads a
// failed build log learns what to change without reading this code.
const supportedInstructions = "FROM, COPY, ADD, ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, CMD, ENTRYPOINT"

// UnsupportedError reports a Dockerfile instruction that a builder cannot
// carry out. The runner can tell it apart from a broken Dockerfile with
// errors.As and retry the job with a builder that executes commands.
type UnsupportedError struct {
	Dockerfile  string // as named in the Request, "Dockerfile" by default
	Line        int    // 1-based line of the instruction
	Instruction string // upper case, e.g. "RUN"
}

func (e *UnsupportedError) Error() string {
	if e.Instruction == "RUN" {
		return fmt.Sprintf("%s:%d: RUN needs a builder that can execute commands (the kaniko builder); the daemonless builder supports %s",
			e.Dockerfile, e.Line, supportedInstructions)
	}
	return fmt.Sprintf("%s:%d: %s is not supported by the daemonless builder, which supports %s",
		e.Dockerfile, e.Line, e.Instruction, supportedInstructions)
}

package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Daemonless builds images from Dockerfiles that only assemble files and
// metadata, without a Docker daemon, root, or running anything from the
// build. See the package documentation for what it refuses to do.
//
// The zero value builds linux/amd64 images. A Daemonless is safe for
// concurrent use.
type Daemonless struct {
	Platform *v1.Platform // default linux/amd64

	// Transport carries registry traffic; nil means
	// go-containerregistry's default. Whatever it is, plain HTTP is only
	// allowed to loopback registries.
	Transport http.RoundTripper
}

var _ Builder = Daemonless{}

// defaultPath is what BuildKit puts in PATH when the base image has none,
// so that CMD ["app"] behaves the same as with docker build.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// historyComment marks history entries written by this builder, as
// BuildKit marks its own.
const historyComment = "fornax.imagebuild.daemonless"

// Build builds req's target stage. Its layers are kept in memory until
// the artifact is pushed or dropped.
func (d Daemonless) Build(ctx context.Context, req Request) (Artifact, error) {
	// A pulled base image fetches its layers lazily, with the context it
	// was opened with, also when the artifact is pushed. Cancelling ctx
	// must stop the build, but must not break an artifact already returned.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)

	b, err := d.newBuild(bctx, req)
	if err == nil {
		defer b.ctxFS.close()
		var img v1.Image
		img, err = b.run()
		if err == nil && stop() {
			return &artifact{img: img, transport: b.transport}, nil
		}
	}
	stop()
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if b != nil {
		err = redact(err, b.secrets)
	}
	return nil, err
}

// build is the state of one Build call.
type build struct {
	ctx       context.Context
	log       io.Writer
	platform  v1.Platform
	transport http.RoundTripper
	keychain  authn.Keychain
	target    string

	file       string // the Dockerfile as named in errors
	dockerfile []byte
	ctxFS      *contextFS
	lex        *shell.Lex

	buildArgs map[string]string
	usedArgs  map[string]bool
	global    *vars // ARGs before the first FROM, and the platform ARGs
	epoch     time.Time

	stages  []*stage
	sources map[string]*imageFS // COPY --from sources, by stage or reference
	secrets []string            // credentials used for pulls, scrubbed from errors

	step, steps int
}

func (d Daemonless) newBuild(ctx context.Context, req Request) (*build, error) {
	if req.ContextDir == "" {
		return nil, errors.New("build context directory is not set")
	}
	dir, err := filepath.Abs(req.ContextDir)
	if err != nil {
		return nil, err
	}
	b := &build{
		ctx:       ctx,
		log:       req.Log,
		transport: guardTransport(d.Transport),
		keychain:  req.Keychain,
		target:    req.Target,
		file:      req.Dockerfile,
		buildArgs: req.BuildArgs,
		usedArgs:  map[string]bool{},
		sources:   map[string]*imageFS{},
	}
	if b.log == nil {
		b.log = io.Discard
	}
	if b.file == "" {
		b.file = "Dockerfile"
	}
	b.platform = v1.Platform{OS: "linux", Architecture: "amd64"}
	if d.Platform != nil {
		b.platform = *d.Platform
	}
	if b.epoch, err = sourceDateEpoch(req.BuildArgs); err != nil {
		return nil, err
	}

	if b.ctxFS, err = openContext(dir); err != nil {
		return nil, err
	}
	// A relative Dockerfile is read through the context root so that a
	// symlink committed as "Dockerfile" cannot make the build read, and
	// echo in a parse error, a file of the runner. An absolute path was
	// chosen by whoever configured the job and is read as it is.
	readSibling := func(suffix string) ([]byte, error) {
		if filepath.IsAbs(b.file) {
			return os.ReadFile(b.file + suffix)
		}
		return b.ctxFS.root.ReadFile(filepath.Clean(b.file) + suffix)
	}
	if b.dockerfile, err = readSibling(""); err != nil {
		b.ctxFS.close()
		return nil, fmt.Errorf("reading %s: %w", b.file, err)
	}
	// The Dockerfile and .dockerignore are read whatever .dockerignore
	// says; it only decides what COPY and ADD can see.
	if err := b.ctxFS.loadIgnore(readSibling); err != nil {
		b.ctxFS.close()
		return nil, err
	}
	return b, nil
}

// sourceDateEpoch returns the time written into the image, layers
// included. It is fixed so that the same inputs give the same digest;
// SOURCE_DATE_EPOCH, the reproducible-builds convention BuildKit also
// honours, lets a project pick it (typically its last commit's time).
func sourceDateEpoch(args map[string]string) (time.Time, error) {
	v, ok := args["SOURCE_DATE_EPOCH"]
	if !ok || v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970 as a non-negative integer", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func (b *build) logf(format string, args ...any) {
	fmt.Fprintf(b.log, format+"\n", args...)
}

// lineErr puts the Dockerfile location in front of err, the way compilers
// do, so that CI log viewers can link it.
func (b *build) lineErr(line int, err error) error {
	return fmt.Errorf("%s:%d: %w", b.file, line, err)
}

func lineOf(cmd instructions.Command) int {
	if loc := cmd.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// stage is one FROM section of the Dockerfile.
type stage struct {
	def       *instructions.Stage
	index     int
	line      int
	base      string // FROM's image after ARG expansion, or "scratch"
	baseStage *stage // set when FROM names an earlier stage
	platform  v1.Platform
	needed    bool

	img v1.Image // result, once built
	fs  *fsIndex // img's filesystem, if anyone has needed it
}

func (s *stage) displayName() string {
	if s.def.Name != "" {
		return "stage " + s.def.Name
	}
	return fmt.Sprintf("stage %d", s.index)
}

func (b *build) run() (v1.Image, error) {
	meta, err := b.parse()
	if err != nil {
		return nil, err
	}
	if err := b.setGlobalArgs(meta); err != nil {
		return nil, err
	}
	target, err := b.plan()
	if err != nil {
		return nil, err
	}
	for _, st := range b.stages {
		if !st.needed {
			continue
		}
		if err := b.ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.buildStage(st); err != nil {
			return nil, err
		}
	}
	b.warnUnusedArgs()
	return target.img, nil
}

// parse turns the Dockerfile into stages with BuildKit's own parser, so
// that what is accepted, and how, matches docker build.
func (b *build) parse() ([]*instructions.ArgCommand, error) {
	res, err := parser.Parse(bytes.NewReader(b.dockerfile))
	if err != nil {
		var le *parser.LocationError
		if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			return nil, b.lineErr(le.Locations[0][0].Start.Line, err)
		}
		return nil, fmt.Errorf("%s: %w", b.file, err)
	}
	for _, w := range res.Warnings {
		if w.Location != nil {
			b.logf("warning: %s:%d: %s", b.file, w.Location.Start.Line, w.Short)
		} else {
			b.logf("warning: %s: %s", b.file, w.Short)
		}
	}
	b.lex = shell.NewLex(res.EscapeToken)

	var meta []*instructions.ArgCommand
	for _, node := range res.AST.Children {
		v, err := instructions.ParseInstruction(node)
		if err != nil {
			return nil, b.lineErr(node.StartLine, err)
		}
		switch c := v.(type) {
		case *instructions.Stage:
			b.stages = append(b.stages, &stage{def: c, index: len(b.stages), line: node.StartLine})
		case instructions.Command:
			if len(b.stages) == 0 {
				if a, ok := c.(*instructions.ArgCommand); ok {
					meta = append(meta, a)
					continue
				}
				return nil, b.lineErr(node.StartLine, fmt.Errorf("%s before the first FROM; only ARG may come before FROM", strings.ToUpper(c.Name())))
			}
			cur := b.stages[len(b.stages)-1]
			cur.def.AddCommand(c)
		default:
			return nil, b.lineErr(node.StartLine, fmt.Errorf("unexpected instruction %s", node.Value))
		}
	}
	if len(b.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction", b.file)
	}
	return meta, nil
}

// setGlobalArgs evaluates the ARGs before the first FROM. Like BuildKit,
// it also predefines the platform ARGs there (TARGETARCH and friends), so
// FROM lines written for multi-platform builds work unchanged.
func (b *build) setGlobalArgs(meta []*instructions.ArgCommand) error {
	b.global = newVars(nil)
	target := b.platform
	host := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	for _, p := range []struct {
		prefix string
		plat   v1.Platform
	}{{"TARGET", target}, {"BUILD", host}} {
		b.global.set(p.prefix+"PLATFORM", platformString(p.plat))
		b.global.set(p.prefix+"OS", p.plat.OS)
		b.global.set(p.prefix+"ARCH", p.plat.Architecture)
		b.global.set(p.prefix+"VARIANT", p.plat.Variant)
	}
	for _, c := range meta {
		for _, a := range c.Args {
			b.usedArgs[a.Key] = true
			if v, ok := b.buildArgs[a.Key]; ok {
				b.global.set(a.Key, v)
				continue
			}
			if a.Value == nil {
				b.global.unset(a.Key)
				continue
			}
			v, _, err := b.lex.ProcessWord(*a.Value, b.global)
			if err != nil {
				return b.lineErr(lineOf(c), err)
			}
			b.global.set(a.Key, v)
		}
	}
	return nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// plan resolves each stage's base, picks the stages the target needs,
// rejects what this builder cannot do before anything is downloaded, and
// counts the steps for the log.
func (b *build) plan() (*stage, error) {
	for _, st := range b.stages {
		base, _, err := b.lex.ProcessWord(st.def.BaseName, b.global)
		if err != nil {
			return nil, b.lineErr(st.line, err)
		}
		if base == "" {
			return nil, b.lineErr(st.line, fmt.Errorf("FROM %s: base image name is empty", st.def.BaseName))
		}
		st.base = base
		st.platform = b.platform
		if st.def.Platform != "" {
			ps, _, err := b.lex.ProcessWord(st.def.Platform, b.global)
			if err != nil {
				return nil, b.lineErr(st.line, err)
			}
			p, err := v1.ParsePlatform(ps)
			if err != nil {
				return nil, b.lineErr(st.line, fmt.Errorf("FROM --platform=%s: %w", ps, err))
			}
			st.platform = *p
		}
		for _, prev := range b.stages[:st.index] {
			if prev.def.Name != "" && strings.EqualFold(prev.def.Name, base) {
				st.baseStage = prev
			}
		}
	}

	target := b.stages[len(b.stages)-1]
	if b.target != "" {
		target = nil
		for _, st := range b.stages {
			if strings.EqualFold(st.def.Name, b.target) {
				target = st
			}
		}
		if target == nil {
			return nil, fmt.Errorf("%s: no stage named %q", b.file, b.target)
		}
	}
	if err := b.markNeeded(target); err != nil {
		return nil, err
	}
	for _, st := range b.stages {
		if !st.needed {
			continue
		}
		b.steps += 1 + len(st.def.Commands)
		for _, cmd := range st.def.Commands {
			if err := b.checkSupported(cmd); err != nil {
				return nil, err
			}
		}
	}
	return target, nil
}

// markNeeded marks st and the stages it reads from.
func (b *build) markNeeded(st *stage) error {
	if st.needed {
		return nil
	}
	st.needed = true
	if st.baseStage != nil {
		if err := b.markNeeded(st.baseStage); err != nil {
			return err
		}
	}
	for _, cmd := range st.def.Commands {
		c, ok := cmd.(*instructions.CopyCommand)
		if !ok || c.From == "" {
			continue
		}
		from, err := b.expandFrom(c)
		if err != nil {
			return b.lineErr(lineOf(c), err)
		}
		dep, err := b.stageRef(from, st)
		if err != nil {
			return b.lineErr(lineOf(c), err)
		}
		if dep != nil {
			if err := b.markNeeded(dep); err != nil {
				return err
			}
		}
	}
	return nil
}

// expandFrom expands COPY --from with the global ARGs only, as BuildKit
// does: which stage a COPY reads must not depend on the stage's own state.
func (b *build) expandFrom(c *instructions.CopyCommand) (string, error) {
	from, _, err := b.lex.ProcessWord(c.From, b.global)
	return from, err
}

// stageRef returns the earlier stage that ref names (by name or index), or
// nil if ref is an image reference.
func (b *build) stageRef(ref string, in *stage) (*stage, error) {
	if n, err := strconv.Atoi(ref); err == nil {
		if n < 0 || n >= in.index {
			return nil, fmt.Errorf("--from=%d: a stage can only copy from an earlier stage", n)
		}
		return b.stages[n], nil
	}
	for _, st := range b.stages {
		if st.def.Name == "" || !strings.EqualFold(st.def.Name, ref) {
			continue
		}
		if st.index >= in.index {
			return nil, fmt.Errorf("--from=%s: a stage can only copy from an earlier stage", ref)
		}
		return st, nil
	}
	return nil, nil
}

// checkSupported rejects instructions this builder does not carry out,
// before any work is done. Silently skipping one would produce an image
// that differs from what the Dockerfile says.
func (b *build) checkSupported(cmd instructions.Command) error {
	switch cmd.(type) {
	case *instructions.EnvCommand, *instructions.ArgCommand, *instructions.CopyCommand,
		*instructions.AddCommand, *instructions.WorkdirCommand, *instructions.UserCommand,
		*instructions.ExposeCommand, *instructions.LabelCommand, *instructions.CmdCommand,
		*instructions.EntrypointCommand:
		return nil
	}
	return &UnsupportedError{Dockerfile: b.file, Line: lineOf(cmd), Instruction: strings.ToUpper(cmd.Name())}
}

func (b *build) logStep(code string) {
	b.step++
	b.logf("Step %d/%d : %s", b.step, b.steps, code)
}

// warnUnusedArgs names (never shows) build args that no ARG declared;
// docker build warns the same way, and a typo is otherwise silent.
func (b *build) warnUnusedArgs() {
	var unused []string
	for k := range b.buildArgs {
		if !b.usedArgs[k] && !predefinedArg(k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		b.logf("warning: build args not declared by any ARG: %s", strings.Join(unused, ", "))
	}
}

// predefinedArg reports build args docker build accepts without an ARG.
func predefinedArg(k string) bool {
	switch strings.ToUpper(k) {
	case "SOURCE_DATE_EPOCH", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY":
		return true
	}
	return strings.HasPrefix(k, "BUILDKIT_")
}

// pull opens a registry image for platform. Credentials come from the
// keychain; whatever secret they contain is remembered so that it can be
// scrubbed from errors.
func (b *build) pull(ref string, platform v1.Platform) (v1.Image, error) {
	r, err := parseReference(ref)
	if err != nil {
		return nil, err
	}
	auth := authn.Anonymous
	if b.keychain != nil {
		if auth, err = authn.Resolve(b.ctx, b.keychain, r.Context()); err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", r.Context().RegistryStr(), err)
		}
	}
	b.secrets = append(b.secrets, secretsOf(b.ctx, auth)...)
	img, err := remote.Image(r,
		remote.WithContext(b.ctx),
		remote.WithAuth(auth),
		remote.WithPlatform(platform),
		remote.WithTransport(b.transport))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	b.logf(" ---> %s@%s", r.Context(), d)
	return img, nil
}

// vars is an ordered set of variables for shell.Lex.
type vars struct {
	keys []string
	m    map[string]string
}

var _ shell.EnvGetter = (*vars)(nil)

func newVars(env []string) *vars {
	v := &vars{m: map[string]string{}}
	for _, kv := range env {
		k, val, _ := strings.Cut(kv, "=")
		v.set(k, val)
	}
	return v
}

func (v *vars) Get(k string) (string, bool) {
	val, ok := v.m[k]
	return val, ok
}

func (v *vars) Keys() []string { return v.keys }

func (v *vars) set(k, val string) {
	if _, ok := v.m[k]; !ok {
		v.keys = append(v.keys, k)
	}
	v.m[k] = val
}

func (v *vars) unset(k string) {
	if _, ok := v.m[k]; ok {
		delete(v.m, k)
		v.keys = slices.DeleteFunc(v.keys, func(s string) bool { return s == k })
	}
}

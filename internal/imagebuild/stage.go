package imagebuild

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// stageBuilder carries out one stage's instructions.
type stageBuilder struct {
	b     *build
	st    *stage
	base  v1.Image
	cfg   v1.Config
	vars  *vars // what $VAR expands to: ENV and ARG, the later one winning
	fs    *fsIndex
	adds  []mutate.Addendum
	layer types.MediaType

	cmdSet bool // CMD was given in this stage, so ENTRYPOINT must keep it
}

func (b *build) buildStage(st *stage) error {
	b.logStep(st.def.SourceCode)
	sb := &stageBuilder{b: b, st: st}
	if err := sb.from(); err != nil {
		return b.lineErr(st.line, err)
	}
	for _, cmd := range st.def.Commands {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.logStep(cmd.(fmt.Stringer).String())
		if err := sb.dispatch(cmd); err != nil {
			return b.lineErr(lineOf(cmd), fmt.Errorf("%s: %w", strings.ToUpper(cmd.Name()), err))
		}
	}
	return sb.finish()
}

func (sb *stageBuilder) from() error {
	b, st := sb.b, sb.st
	var cf *v1.ConfigFile
	switch {
	case st.baseStage != nil:
		sb.base = st.baseStage.img
		b.logf(" ---> %s", st.baseStage.displayName())
	case strings.EqualFold(st.base, "scratch"):
		sb.base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		sb.fs = newFSIndex()
	default:
		img, err := b.pull(st.base, st.platform)
		if err != nil {
			return err
		}
		sb.base = img
	}
	cf, err := sb.base.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config of %s: %w", st.base, err)
	}
	if len(cf.Config.OnBuild) > 0 {
		return fmt.Errorf("base image %s has ONBUILD triggers, which the daemonless builder does not run; use the kaniko builder", st.base)
	}
	sb.cfg = *cf.Config.DeepCopy()

	mt, err := sb.base.MediaType()
	if err != nil {
		return err
	}
	// New layers follow the base's manifest format: Docker manifests list
	// Docker layer types, OCI manifests OCI ones.
	sb.layer = types.OCILayer
	if mt == types.DockerManifestSchema2 {
		sb.layer = types.DockerLayer
	}

	if !slices.ContainsFunc(sb.cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		sb.cfg.Env = append(sb.cfg.Env, "PATH="+defaultPath)
	}
	sb.vars = newVars(sb.cfg.Env)
	return nil
}

// filesystem returns the stage's file index, reading the base image's
// layers the first time it is needed.
func (sb *stageBuilder) filesystem() (*fsIndex, error) {
	if sb.fs != nil {
		return sb.fs, nil
	}
	var err error
	if sb.st.baseStage != nil {
		idx, err := sb.b.stageFS(sb.st.baseStage)
		if err != nil {
			return nil, err
		}
		sb.fs = idx.clone()
		return sb.fs, nil
	}
	sb.b.logf(" ---> reading the filesystem of %s", sb.st.base)
	if sb.fs, err = indexImage(sb.b.ctx, sb.base); err != nil {
		return nil, fmt.Errorf("reading %s: %w", sb.st.base, err)
	}
	return sb.fs, nil
}

// stageFS returns the file index of a built stage.
func (b *build) stageFS(st *stage) (*fsIndex, error) {
	if st.fs == nil {
		idx, err := indexImage(b.ctx, st.img)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", st.displayName(), err)
		}
		st.fs = idx
	}
	return st.fs, nil
}

func (sb *stageBuilder) expand(word string) (string, error) {
	s, _, err := sb.b.lex.ProcessWord(word, sb.vars)
	return s, err
}

// expandRaw expands heredoc contents, where quotes are data.
func (sb *stageBuilder) expandRaw(word string) (string, error) {
	lex := shell.NewLex('\\')
	lex.SkipProcessQuotes = true
	s, _, err := lex.ProcessWord(word, sb.vars)
	return s, err
}

func (sb *stageBuilder) history(cmd instructions.Command, layer v1.Layer) {
	sb.adds = append(sb.adds, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			// The Dockerfile text, not its expansion: build args can be
			// secrets, and the history is readable by anyone who can pull.
			CreatedBy:  cmd.(fmt.Stringer).String(),
			Created:    v1.Time{Time: sb.b.epoch},
			Comment:    historyComment,
			EmptyLayer: layer == nil,
		},
	})
}

func (sb *stageBuilder) dispatch(cmd instructions.Command) error {
	// ARG values are expanded below, only when used as defaults.
	if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(sb.expand); err != nil {
				return err
			}
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := ex.ExpandRaw(sb.expandRaw); err != nil {
			return err
		}
	}

	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			sb.cfg.Env = setEnv(sb.cfg.Env, kv.Key, kv.Value)
			sb.vars.set(kv.Key, kv.Value)
		}
	case *instructions.ArgCommand:
		if err := sb.arg(c); err != nil {
			return err
		}
	case *instructions.LabelCommand:
		if sb.cfg.Labels == nil {
			sb.cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			sb.cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.UserCommand:
		sb.cfg.User = c.User
	case *instructions.ExposeCommand:
		if err := sb.expose(c); err != nil {
			return err
		}
	case *instructions.CmdCommand:
		args, err := commandLine(c.ShellDependantCmdLine)
		if err != nil {
			return err
		}
		sb.cfg.Cmd = args
		sb.cmdSet = true
	case *instructions.EntrypointCommand:
		args, err := commandLine(c.ShellDependantCmdLine)
		if err != nil {
			return err
		}
		sb.cfg.Entrypoint = args
		// Docker drops an inherited CMD when ENTRYPOINT changes: it was
		// written as arguments for the old entrypoint.
		if !sb.cmdSet {
			sb.cfg.Cmd = nil
		}
	case *instructions.WorkdirCommand:
		return sb.workdir(c)
	case *instructions.CopyCommand:
		return sb.copyCmd(c)
	case *instructions.AddCommand:
		return sb.addCmd(c)
	default:
		// plan rejects everything else; reaching this is a bug here.
		return fmt.Errorf("instruction not supported")
	}
	sb.history(cmd, nil)
	return nil
}

// arg declares build arguments. The value comes from the request's
// BuildArgs, else the default, else a global ARG of the same name.
func (sb *stageBuilder) arg(c *instructions.ArgCommand) error {
	for _, a := range c.Args {
		sb.b.usedArgs[a.Key] = true
		if v, ok := sb.b.buildArgs[a.Key]; ok {
			sb.vars.set(a.Key, v)
			continue
		}
		if a.Value != nil {
			v, err := sb.expand(*a.Value)
			if err != nil {
				return err
			}
			sb.vars.set(a.Key, v)
			continue
		}
		if v, ok := sb.b.global.Get(a.Key); ok {
			sb.vars.set(a.Key, v)
		}
	}
	return nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// commandLine turns CMD or ENTRYPOINT into the config's argv; the shell
// form runs under /bin/sh -c, as with docker build.
func commandLine(c instructions.ShellDependantCmdLine) ([]string, error) {
	if len(c.Files) > 0 {
		return nil, fmt.Errorf("heredocs are only supported in COPY and ADD")
	}
	if !c.PrependShell {
		return c.CmdLine, nil
	}
	if len(c.CmdLine) == 0 {
		return nil, nil
	}
	return append([]string{"/bin/sh", "-c"}, c.CmdLine...), nil
}

func (sb *stageBuilder) expose(c *instructions.ExposeCommand) error {
	if sb.cfg.ExposedPorts == nil {
		sb.cfg.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range c.Ports {
		words, err := sb.b.lex.ProcessWords(p, sb.vars)
		if err != nil {
			return err
		}
		for _, w := range words {
			ports, err := parsePorts(w)
			if err != nil {
				return err
			}
			for _, port := range ports {
				sb.cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	return nil
}

// parsePorts parses "80", "80/udp" or "8000-8002/tcp" into config keys.
func parsePorts(spec string) ([]string, error) {
	ports, proto, ok := strings.Cut(spec, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid protocol in port %q", spec)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", spec)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q", spec)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

func (sb *stageBuilder) workdirPath() string {
	if sb.cfg.WorkingDir == "" {
		return "/"
	}
	return sb.cfg.WorkingDir
}

// absPath makes a destination absolute against WORKDIR, as Docker does.
func (sb *stageBuilder) absPath(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(sb.workdirPath(), p)
}

// workdir sets the working directory and, like docker build, creates it
// when it is missing, owned by USER when that is numeric.
func (sb *stageBuilder) workdir(c *instructions.WorkdirCommand) error {
	wd := sb.absPath(c.Path)
	sb.cfg.WorkingDir = wd
	if wd == "/" {
		sb.history(c, nil)
		return nil
	}
	fs, err := sb.filesystem()
	if err != nil {
		return err
	}
	own, _ := parseOwner(sb.cfg.User) // a user name would need the image's /etc/passwd; root it is
	w := newLayerWriter(fs, sb.b.epoch)
	created, err := w.ensureDir(wd, own, 0o755)
	if err != nil {
		return err
	}
	if !created {
		sb.history(c, nil)
		return nil
	}
	layer, err := w.finish(sb.layer)
	if err != nil {
		return err
	}
	sb.history(c, layer)
	return nil
}

// parseOwner parses a numeric "uid[:gid]"; a missing gid equals the uid,
// as with Docker's --chown.
func parseOwner(s string) (owner, error) {
	u, g, hasGroup := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 31)
	if err != nil {
		return owner{}, fmt.Errorf("user %q is not numeric; the daemonless builder cannot look up names in the image, use uid[:gid]", s)
	}
	gid := uid
	if hasGroup {
		if gid, err = strconv.ParseUint(g, 10, 31); err != nil {
			return owner{}, fmt.Errorf("group %q is not numeric; the daemonless builder cannot look up names in the image, use uid[:gid]", g)
		}
	}
	return owner{uid: int(uid), gid: int(gid)}, nil
}

// finish assembles the stage's image.
func (sb *stageBuilder) finish() error {
	img, err := mutate.Append(sb.base, sb.adds...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Config = sb.cfg
	cf.Created = v1.Time{Time: sb.b.epoch}
	// These described the container that committed the base's last layer.
	cf.Container = ""
	cf.DockerVersion = ""
	if cf.OS == "" {
		cf.OS = sb.st.platform.OS
		cf.Architecture = sb.st.platform.Architecture
		cf.Variant = sb.st.platform.Variant
		cf.OSVersion = sb.st.platform.OSVersion
	}
	if sb.st.img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	sb.st.fs = sb.fs
	d, err := sb.st.img.Digest()
	if err != nil {
		return err
	}
	sb.b.logf(" ---> %s", d)
	return nil
}

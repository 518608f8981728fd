package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
)

// copyOp is a COPY or ADD after expansion.
type copyOp struct {
	add      bool
	from     string // COPY --from, expanded; "" for the build context
	sources  []string
	contents []instructions.SourceContent // heredocs
	dest     string                       // as written
	chown    string
	chmod    string
	excludes []string
	unpack   bool // ADD: extract local archives
}

func (o *copyOp) name() string {
	if o.add {
		return "ADD"
	}
	return "COPY"
}

func (sb *stageBuilder) copyCmd(c *instructions.CopyCommand) error {
	if c.Parents {
		return errors.New("--parents is not supported by the daemonless builder")
	}
	op := &copyOp{
		sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
		chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns,
	}
	if c.From != "" {
		from, err := sb.b.expandFrom(c)
		if err != nil {
			return err
		}
		op.from = from
	}
	return sb.copy(c, op)
}

func (sb *stageBuilder) addCmd(c *instructions.AddCommand) error {
	if c.Checksum != "" {
		return errors.New("--checksum only applies to remote URLs, which the daemonless builder does not fetch")
	}
	op := &copyOp{
		add: true, sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
		chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, unpack: true,
	}
	if c.Unpack != nil {
		op.unpack = *c.Unpack
	}
	return sb.copy(c, op)
}

// isRemote reports sources that docker build would download.
func isRemote(src string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "ssh://"} {
		if strings.HasPrefix(strings.ToLower(src), p) {
			return true
		}
	}
	return false
}

// copyItem is one thing to write into the layer.
type copyItem struct {
	src     string // path in the source; unused for heredocs
	dst     string // absolute path in the image, before symlink resolution
	info    srcInfo
	data    []byte // heredoc contents
	inline  bool
	topDir  bool // the destination of a directory source: created if missing, else left alone
	archive bool // ADD of a local archive: unpacked into dst
}

// copyFlags are COPY's and ADD's flags, parsed.
type copyFlags struct {
	own  *owner // nil: keep the source's owner (root for the build context)
	mode *int64 // nil: keep the source's mode
	excl *patternmatcher.PatternMatcher
}

func parseCopyFlags(op *copyOp) (copyFlags, error) {
	var f copyFlags
	if op.chown != "" {
		o, err := parseOwner(op.chown)
		if err != nil {
			return f, fmt.Errorf("--chown=%s: %w", op.chown, err)
		}
		f.own = &o
	}
	if op.chmod != "" {
		m, err := strconv.ParseUint(op.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return f, fmt.Errorf("--chmod=%s: want an octal mode between 0 and 7777", op.chmod)
		}
		mode := int64(m)
		f.mode = &mode
	}
	if len(op.excludes) > 0 {
		pm, err := patternmatcher.New(op.excludes)
		if err != nil {
			return f, fmt.Errorf("--exclude: %w", err)
		}
		f.excl = pm
	}
	return f, nil
}

// parentOwner owns the directories a copy has to create on the way.
func (f copyFlags) parentOwner() owner {
	if f.own != nil {
		return *f.own
	}
	return owner{}
}

func (sb *stageBuilder) copy(cmd instructions.Command, op *copyOp) error {
	for _, s := range op.sources {
		if isRemote(s) {
			if op.add {
				return fmt.Errorf("%s: remote URLs are not supported by the daemonless builder; fetch the file in an earlier CI step and ADD it from the build context", s)
			}
			return fmt.Errorf("%s: COPY cannot take a URL", s)
		}
	}
	flags, err := parseCopyFlags(op)
	if err != nil {
		return err
	}
	src, err := sb.copySource(op.from)
	if err != nil {
		return err
	}
	imgFS, err := sb.filesystem()
	if err != nil {
		return err
	}

	// Docker's rules: a trailing slash, or an existing directory, makes
	// the destination a directory; several sources require one.
	dest := sb.absPath(op.dest)
	destIsDir := strings.HasSuffix(op.dest, "/") || op.dest == "." || strings.HasSuffix(op.dest, "/.")
	if !destIsDir {
		if r, err := imgFS.resolve(dest, true); err == nil {
			if e, ok := imgFS.lookup(r); ok && e.isDir() {
				destIsDir = true
			}
		}
	}
	matches, err := expandSources(src, op.sources)
	if err != nil {
		return err
	}
	if len(matches)+len(op.contents) > 1 && !destIsDir {
		return fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", op.name())
	}
	items, err := planItems(src, op, matches, dest, destIsDir, flags.excl)
	if err != nil {
		return err
	}

	if pf, ok := src.(*imageFS); ok {
		var paths []string
		for _, it := range items {
			if it.info.typ == tar.TypeReg && !it.inline {
				paths = append(paths, it.src)
			}
		}
		if err := pf.prefetch(sb.b.ctx, paths); err != nil {
			return err
		}
	}

	w := newLayerWriter(imgFS, sb.b.epoch)
	if destIsDir {
		if _, err := w.ensureDir(dest, flags.parentOwner(), 0o755); err != nil {
			return err
		}
	}
	for _, it := range items {
		if err := sb.b.ctx.Err(); err != nil {
			return err
		}
		if err := writeItem(w, src, it, flags); err != nil {
			return err
		}
	}
	layer, err := w.finish(sb.layer)
	if err != nil {
		return err
	}
	size, _ := layer.Size()
	sb.b.logf(" ---> %d entries, %d bytes compressed", w.files, size)
	sb.history(cmd, layer)
	return nil
}

// srcMatch is one source path of a COPY after glob expansion.
type srcMatch struct {
	path string
	info srcInfo // symlinks followed
}

// expandSources expands globs and checks that every source exists.
// Sources are relative to the source root whatever they start with, so
// "../" cannot leave it.
func expandSources(src source, sources []string) ([]srcMatch, error) {
	var matches []srcMatch
	for _, s := range sources {
		p := strings.TrimPrefix(path.Clean("/"+s), "/")
		paths := []string{p}
		if hasGlob(s) {
			var err error
			if paths, err = glob(src, p); err != nil {
				return nil, err
			}
		}
		for _, p := range paths {
			info, err := src.stat(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: not found", src.describe(p))
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", src.describe(p), err)
			}
			// An excluded directory can still hold files a "!pattern"
			// brings back; walk keeps only those.
			if src.excluded(p) && !(info.isDir() && src.reincludes()) {
				return nil, fmt.Errorf("%s: not found (excluded by .dockerignore)", src.describe(p))
			}
			if !info.isDir() && info.typ != tar.TypeReg {
				return nil, fmt.Errorf("%s is neither a regular file nor a directory", src.describe(p))
			}
			matches = append(matches, srcMatch{p, info})
		}
	}
	return matches, nil
}

// planItems lists what a COPY writes, in the order it is written.
func planItems(src source, op *copyOp, matches []srcMatch, dest string, destIsDir bool, excl *patternmatcher.PatternMatcher) ([]copyItem, error) {
	var items []copyItem
	for _, m := range matches {
		switch {
		case m.info.isDir():
			// A directory's contents are copied, not the directory itself.
			items = append(items, copyItem{src: m.path, dst: dest, info: m.info, topDir: true})
			sub, err := walk(src, m.path, m.path, dest, excl)
			if err != nil {
				return nil, err
			}
			items = append(items, sub...)
		case excl != nil && matchesExclude(excl, path.Base(m.path)):
			// --exclude applies to single files too, by name.
		default:
			if op.add && op.unpack {
				isArchive, err := sniffArchive(src, m.path)
				if err != nil {
					return nil, err
				}
				if isArchive {
					items = append(items, copyItem{src: m.path, dst: dest, info: m.info, archive: true})
					continue
				}
			}
			dst := dest
			if destIsDir {
				dst = path.Join(dest, path.Base(m.path))
			}
			items = append(items, copyItem{src: m.path, dst: dst, info: m.info})
		}
	}
	for _, c := range op.contents {
		dst := dest
		if destIsDir {
			dst = path.Join(dest, path.Base(c.Path))
		}
		items = append(items, copyItem{dst: dst, data: []byte(c.Data), inline: true,
			info: srcInfo{typ: tar.TypeReg, mode: 0o644, size: int64(len(c.Data))}})
	}
	return items, nil
}

// copySource returns what COPY --from=from reads: the build context, an
// earlier stage, or an image from a registry.
func (sb *stageBuilder) copySource(from string) (source, error) {
	b := sb.b
	if from == "" {
		return b.ctxFS, nil
	}
	st, err := b.stageRef(from, sb.st)
	if err != nil {
		return nil, err
	}
	key := "image " + from
	if st != nil {
		key = st.displayName()
	}
	if s, ok := b.sources[key]; ok {
		return s, nil
	}
	s := &imageFS{name: key}
	if st != nil {
		s.img = st.img
		if s.idx, err = b.stageFS(st); err != nil {
			return nil, err
		}
	} else {
		if s.img, err = b.pull(from, sb.st.platform); err != nil {
			return nil, err
		}
		if s.idx, err = indexImage(b.ctx, s.img); err != nil {
			return nil, fmt.Errorf("reading %s: %w", from, err)
		}
	}
	b.sources[key] = s
	return s, nil
}

func writeItem(w *layerWriter, src source, it copyItem, f copyFlags) error {
	e := fsEntry{typ: it.info.typ, mode: it.info.mode, uid: it.info.uid, gid: it.info.gid, link: it.info.link}
	if f.own != nil {
		e.uid, e.gid = f.own.uid, f.own.gid
	}
	if f.mode != nil && e.typ != tar.TypeSymlink {
		e.mode = *f.mode
	}
	switch {
	case it.topDir:
		m := int64(0o755)
		if f.mode != nil {
			m = *f.mode
		}
		_, err := w.ensureDir(it.dst, owner{e.uid, e.gid}, m)
		return err
	case it.inline:
		return w.put(it.dst, e, int64(len(it.data)), bytes.NewReader(it.data), f.parentOwner())
	case it.archive:
		return extractArchive(w, src, it, f)
	case e.typ == tar.TypeReg:
		rc, size, err := src.open(it.src)
		if err != nil {
			return err
		}
		defer rc.Close()
		return w.put(it.dst, e, size, rc, f.parentOwner())
	default:
		return w.put(it.dst, e, 0, nil, f.parentOwner())
	}
}

// walk lists the contents of directory dir (a source path) in a stable
// order, parents before children, mapped below dest. root is the COPY
// source the walk started from, which --exclude patterns are relative to.
func walk(src source, root, dir, dest string, excl *patternmatcher.PatternMatcher) ([]copyItem, error) {
	names, err := src.readDir(dir)
	if err != nil {
		return nil, err
	}
	var items []copyItem
	for _, n := range names {
		p := path.Join(dir, n)
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		excluded := src.excluded(p) || (excl != nil && matchesExclude(excl, rel))
		reinclude := src.reincludes() || (excl != nil && excl.Exclusions())
		if excluded && !reinclude {
			continue
		}
		info, err := src.lstat(p)
		if err != nil {
			return nil, err
		}
		dst := path.Join(dest, n)
		switch {
		case info.isDir():
			sub, err := walk(src, root, p, dst, excl)
			if err != nil {
				return nil, err
			}
			// An excluded directory is only kept for what a "!pattern"
			// brought back inside it.
			if excluded && len(sub) == 0 {
				continue
			}
			items = append(items, copyItem{src: p, dst: dst, info: info})
			items = append(items, sub...)
		case excluded:
		case info.typ == tar.TypeReg, info.typ == tar.TypeSymlink:
			items = append(items, copyItem{src: p, dst: dst, info: info})
		default:
			// Sockets, devices and pipes are not files one can ship.
		}
	}
	return items, nil
}

func matchesExclude(pm *patternmatcher.PatternMatcher, rel string) bool {
	m, err := pm.MatchesOrParentMatches(rel)
	return err != nil || m
}

// Compression magics that docker build recognises in ADD.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// errXz is returned for xz archives: Go has no xz reader, and copying the
// archive unextracted would silently give a different image than docker build.
var errXz = errors.New("xz-compressed archives are not supported by the daemonless builder; use gzip, bzip2 or zstd")

// decompress returns r decompressed by content, not by file name, as
// Docker decides.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return gzip.NewReader(br)
	case bytes.HasPrefix(head, magicBzip2):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, magicZstd):
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case bytes.HasPrefix(head, magicXz):
		return nil, errXz
	}
	return io.NopCloser(br), nil
}

// sniffArchive reports whether a source file is a tar archive, possibly
// compressed; ADD unpacks those and copies anything else as it is.
func sniffArchive(src source, p string) (bool, error) {
	rc, _, err := src.open(p)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	dr, err := decompress(rc)
	if err != nil {
		if errors.Is(err, errXz) {
			return false, fmt.Errorf("%s: %w", src.describe(p), err)
		}
		return false, nil // looked compressed but is not: a plain file
	}
	defer dr.Close()
	_, err = tar.NewReader(dr).Next()
	return err == nil, nil
}

// extractArchive unpacks a local archive below it.dst. Entry names are
// confined to it.dst, whatever "../" or "/" they start with.
func extractArchive(w *layerWriter, src source, it copyItem, f copyFlags) error {
	rc, _, err := src.open(it.src)
	if err != nil {
		return err
	}
	defer rc.Close()
	dr, err := decompress(rc)
	if err != nil {
		return err
	}
	defer dr.Close()
	if _, err := w.ensureDir(it.dst, f.parentOwner(), 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", src.describe(it.src), err)
		}
		name := path.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		e := entryFromHeader(hdr)
		switch e.typ {
		case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
		case tar.TypeLink:
			e.link = path.Join(it.dst, e.link)
			if e.link, err = w.fs.resolve(e.link, false); err != nil {
				return err
			}
		default:
			continue // devices and pipes cannot be created without privileges anyway
		}
		if f.own != nil {
			e.uid, e.gid = f.own.uid, f.own.gid
		}
		if f.mode != nil && e.typ != tar.TypeSymlink {
			e.mode = *f.mode
		}
		var size int64
		if e.typ == tar.TypeReg {
			size = hdr.Size
		}
		if err := w.put(path.Join(it.dst, name), e, size, tr, f.parentOwner()); err != nil {
			return err
		}
	}
}

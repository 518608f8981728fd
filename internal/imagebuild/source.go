package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// srcInfo describes one path of a COPY source.
type srcInfo struct {
	typ      byte // tar type flag
	mode     int64
	uid, gid int
	size     int64
	link     string // symlink target
}

func (i srcInfo) isDir() bool { return i.typ == tar.TypeDir }

// source is where COPY and ADD read from: the build context, or the
// filesystem of an earlier stage or another image (COPY --from). Paths are
// slash-separated and relative to the source's root, "" being the root.
type source interface {
	stat(p string) (srcInfo, error)  // follows symlinks
	lstat(p string) (srcInfo, error) // does not follow the last element
	readDir(p string) ([]string, error)
	open(p string) (io.ReadCloser, int64, error)
	// excluded reports paths that must look absent (.dockerignore);
	// stat and friends do not check it, so that a walk can still enter an
	// excluded directory when a "!pattern" brings back part of it.
	excluded(p string) bool
	// reincludes reports whether any "!pattern" exists at all; without
	// one, nothing below an excluded directory needs to be looked at.
	reincludes() bool
	describe(p string) string // for error messages
}

// contextFS is the build context on disk. All access goes through os.Root
// so that neither "../" in a Dockerfile nor a symlink in the context can
// reach files outside it: a build must never read the runner's own files.
type contextFS struct {
	root   *os.Root
	ignore *patternmatcher.PatternMatcher // nil: nothing excluded
}

func openContext(dir string) (*contextFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening build context: %w", err)
	}
	return &contextFS{root: root}, nil
}

func (c *contextFS) close() error { return c.root.Close() }

// loadIgnore reads the ignore file. BuildKit prefers
// "<Dockerfile>.dockerignore" next to the Dockerfile over the context's
// .dockerignore; readDockerfileSibling reads such a sibling, or is nil.
func (c *contextFS) loadIgnore(readDockerfileSibling func(suffix string) ([]byte, error)) error {
	data, err := []byte(nil), fs.ErrNotExist
	if readDockerfileSibling != nil {
		data, err = readDockerfileSibling(".dockerignore")
	}
	if errors.Is(err, fs.ErrNotExist) {
		data, err = c.root.ReadFile(".dockerignore")
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading .dockerignore: %w", err)
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("reading .dockerignore: %w", err)
	}
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	c.ignore = pm
	return nil
}

func (c *contextFS) osPath(p string) string {
	if p == "" {
		return "."
	}
	return filepath.FromSlash(p)
}

func (c *contextFS) excluded(p string) bool {
	if c.ignore == nil || p == "" {
		return false
	}
	m, err := c.ignore.MatchesOrParentMatches(p)
	// A pattern that cannot be evaluated excludes: leaking a file the user
	// meant to keep out of the image is worse than leaving one out.
	return err != nil || m
}

func (c *contextFS) reincludes() bool { return c.ignore != nil && c.ignore.Exclusions() }

func (c *contextFS) info(fi fs.FileInfo) srcInfo {
	// Ownership on the runner's disk means nothing in the image; Docker
	// resets it to root as well.
	si := srcInfo{mode: tarMode(fi.Mode()), size: fi.Size()}
	switch {
	case fi.Mode().IsRegular():
		si.typ = tar.TypeReg
	case fi.IsDir():
		si.typ = tar.TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		si.typ = tar.TypeSymlink
	default:
		si.typ = tar.TypeFifo // stands for every kind of file that is not copied
	}
	return si
}

func (c *contextFS) stat(p string) (srcInfo, error) {
	fi, err := c.root.Stat(c.osPath(p))
	if err != nil {
		return srcInfo{}, err
	}
	return c.info(fi), nil
}

func (c *contextFS) lstat(p string) (srcInfo, error) {
	fi, err := c.root.Lstat(c.osPath(p))
	if err != nil {
		return srcInfo{}, err
	}
	si := c.info(fi)
	if si.typ == tar.TypeSymlink {
		if si.link, err = c.root.Readlink(c.osPath(p)); err != nil {
			return srcInfo{}, err
		}
	}
	return si, nil
}

func (c *contextFS) readDir(p string) ([]string, error) {
	f, err := c.root.Open(c.osPath(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func (c *contextFS) open(p string) (io.ReadCloser, int64, error) {
	f, err := c.root.Open(c.osPath(p))
	if err != nil {
		return nil, 0, err
	}
	// The size comes from the open file, not from an earlier stat, so the
	// tar header always matches what is read even if the file changed.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (c *contextFS) describe(p string) string {
	if p == "" {
		p = "."
	}
	return fmt.Sprintf("%q in the build context", p)
}

// imageFS is the filesystem of an image, for COPY --from. Contents are
// fetched in one pass over the image, only for the files a COPY selected.
type imageFS struct {
	name string // for error messages
	img  v1.Image
	idx  *fsIndex
	data map[string][]byte // resolved path → contents, filled by prefetch
}

func (s *imageFS) abs(p string) string { return path.Clean("/" + p) }

func (s *imageFS) entry(p string, follow bool) (string, fsEntry, error) {
	r, err := s.idx.resolve(s.abs(p), follow)
	if err != nil {
		return "", fsEntry{}, err
	}
	e, ok := s.idx.lookup(r)
	if !ok {
		return "", fsEntry{}, fs.ErrNotExist
	}
	return r, e, nil
}

func (s *imageFS) toInfo(e fsEntry) srcInfo {
	si := srcInfo{typ: e.typ, mode: e.mode, uid: e.uid, gid: e.gid, link: e.link}
	if e.typ == tar.TypeLink {
		si.typ, si.link = tar.TypeReg, ""
	}
	return si
}

func (s *imageFS) stat(p string) (srcInfo, error) {
	_, e, err := s.entry(p, true)
	return s.toInfo(e), err
}

func (s *imageFS) lstat(p string) (srcInfo, error) {
	_, e, err := s.entry(p, false)
	return s.toInfo(e), err
}

func (s *imageFS) readDir(p string) ([]string, error) {
	r, e, err := s.entry(p, true)
	if err != nil {
		return nil, err
	}
	if !e.isDir() {
		return nil, fmt.Errorf("%s is not a directory", s.describe(p))
	}
	return s.idx.list(r), nil
}

func (s *imageFS) excluded(string) bool { return false }
func (s *imageFS) reincludes() bool     { return false }

func (s *imageFS) describe(p string) string { return fmt.Sprintf("%q in %s", s.abs(p), s.name) }

// prefetch reads the contents of the given source paths in one pass over
// the image; streaming the image once per file would be quadratic.
func (s *imageFS) prefetch(ctx context.Context, paths []string) error {
	want := map[string]bool{}
	for _, p := range paths {
		r, e, err := s.entry(p, true)
		if err != nil {
			return err
		}
		if e.typ == tar.TypeLink {
			r = e.link
		}
		if _, ok := s.data[r]; !ok {
			want[r] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	if s.data == nil {
		s.data = map[string][]byte{}
	}
	err := walkImage(ctx, s.img, func(p string, hdr *tar.Header, r io.Reader) error {
		if !want[p] || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA) {
			return nil
		}
		b, err := io.ReadAll(r)
		s.data[p] = b
		return err
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.name, err)
	}
	return nil
}

func (s *imageFS) open(p string) (io.ReadCloser, int64, error) {
	r, e, err := s.entry(p, true)
	if err != nil {
		return nil, 0, err
	}
	if e.typ == tar.TypeLink {
		r = e.link
	}
	b, ok := s.data[r]
	if !ok {
		return nil, 0, fmt.Errorf("%s: contents not available", s.describe(p))
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// tarMode converts permission and special bits to the tar header form.
func tarMode(m fs.FileMode) int64 {
	out := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// hasGlob reports whether a COPY source is a pattern.
func hasGlob(p string) bool { return strings.ContainsAny(p, `*?[`) }

// glob expands a pattern element by element, as Docker does: wildcards do
// not cross "/". Excluded paths never match, but a directory on the way
// may be excluded when a "!pattern" brings back the file.
func glob(src source, pattern string) ([]string, error) {
	matches := []string{""}
	for _, elem := range splitPath(pattern) {
		var next []string
		for _, dir := range matches {
			if !hasGlob(elem) {
				p := path.Join(dir, elem)
				if _, err := src.lstat(p); err == nil {
					next = append(next, p)
				}
				continue
			}
			if fi, err := src.stat(dir); err != nil || !fi.isDir() {
				continue
			}
			names, err := src.readDir(dir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				ok, err := path.Match(elem, n)
				if err != nil {
					return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
				}
				if ok {
					next = append(next, path.Join(dir, n))
				}
			}
		}
		matches = next
	}
	matches = slices.DeleteFunc(matches, src.excluded)
	slices.Sort(matches)
	return matches, nil
}

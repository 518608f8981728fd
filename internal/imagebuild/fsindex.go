package imagebuild

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// fsEntry is what the builder needs to know about one path of an image's
// filesystem: enough to follow symlinks and to keep existing directories as
// they are, not the contents.
type fsEntry struct {
	typ      byte // tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink, ...
	mode     int64
	uid, gid int
	link     string // symlink target as written; for hard links, the path linked to
}

func (e fsEntry) isDir() bool { return e.typ == tar.TypeDir }

// fsIndex is the merged view of an image's layers. Destinations of COPY are
// resolved against it the way the kernel would resolve them inside a
// running container: without it, writing /bin/app into an image whose /bin
// is a symlink to usr/bin would replace the symlink by a directory, and
// creating /tmp/x would reset /tmp's sticky bit.
type fsIndex struct {
	entries  map[string]fsEntry // keys are clean absolute paths; "/" is implied
	children map[string][]string
}

func newFSIndex() *fsIndex { return &fsIndex{entries: map[string]fsEntry{}} }

func (f *fsIndex) clone() *fsIndex {
	return &fsIndex{entries: maps.Clone(f.entries)}
}

// indexImage lists img's merged filesystem. It reads every layer, so it is
// called only when a stage first needs to write or read files.
func indexImage(ctx context.Context, img v1.Image) (*fsIndex, error) {
	f := newFSIndex()
	err := walkImage(ctx, img, func(p string, hdr *tar.Header, _ io.Reader) error {
		f.entries[p] = entryFromHeader(hdr)
		return nil
	})
	return f, err
}

// walkImage calls fn for every path of img's merged filesystem, with the
// file's contents readable from r for regular files.
func walkImage(ctx context.Context, img v1.Image, fn func(p string, hdr *tar.Header, r io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	// Extract keeps reading layers in a goroutine; closing our end when the
	// build is cancelled makes its next write fail and stops the download.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()

	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading image filesystem: %w", err)
		}
		p := path.Clean("/" + hdr.Name)
		if p == "/" {
			continue
		}
		if err := fn(p, hdr, tr); err != nil {
			return err
		}
	}
}

func entryFromHeader(hdr *tar.Header) fsEntry {
	e := fsEntry{
		typ:  hdr.Typeflag,
		mode: hdr.Mode & 0o7777,
		uid:  hdr.Uid,
		gid:  hdr.Gid,
		link: hdr.Linkname,
	}
	if e.typ == tar.TypeRegA {
		e.typ = tar.TypeReg
	}
	if e.typ == tar.TypeLink {
		e.link = path.Clean("/" + hdr.Linkname)
	}
	return e
}

// lookup returns the entry at an already resolved path.
func (f *fsIndex) lookup(p string) (fsEntry, bool) {
	if p == "/" {
		return fsEntry{typ: tar.TypeDir, mode: 0o755}, true
	}
	e, ok := f.entries[p]
	return e, ok
}

// maxSymlinks matches Linux's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// resolve follows the symlinks in p's directories, and in its last element
// too if followLast, and returns the path they lead to. Components that do
// not exist are kept as written, so the result is where a file created at p
// would end up.
func (f *fsIndex) resolve(p string, followLast bool) (string, error) {
	rest := splitPath(p)
	resolved := "/"
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		next := path.Join(resolved, c)
		e, ok := f.entries[next]
		if ok && e.typ == tar.TypeSymlink && (len(rest) > 0 || followLast) {
			if hops++; hops > maxSymlinks {
				return "", fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			if path.IsAbs(e.link) {
				resolved = "/"
			}
			rest = append(splitPath(e.link), rest...)
			continue
		}
		resolved = next
	}
	return resolved, nil
}

// splitPath splits a slash path into its elements, keeping ".." because
// its meaning depends on the symlinks before it.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// set records an entry, forgetting what was below p when a directory is
// replaced by something else, as unpacking the layer would.
func (f *fsIndex) set(p string, e fsEntry) {
	if old, ok := f.entries[p]; ok && old.isDir() && !e.isDir() {
		prefix := p + "/"
		for k := range f.entries {
			if strings.HasPrefix(k, prefix) {
				delete(f.entries, k)
			}
		}
	}
	f.entries[p] = e
	f.children = nil
}

// list returns the sorted names in directory p (a resolved path).
func (f *fsIndex) list(p string) []string {
	if f.children == nil {
		f.children = map[string][]string{}
		for k := range f.entries {
			dir, name := path.Split(k)
			dir = path.Clean(dir)
			f.children[dir] = append(f.children[dir], name)
		}
		for _, names := range f.children {
			slices.Sort(names)
		}
	}
	return f.children[p]
}

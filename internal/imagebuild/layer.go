package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// owner is a numeric uid/gid pair.
type owner struct{ uid, gid int }

// layerWriter writes one layer. Every entry gets the same mtime and no
// user or group names, so the same inputs always give the same bytes, and
// the layer's digest depends on content only. It keeps fs up to date so
// later entries, and later steps, see what this layer adds.
type layerWriter struct {
	fs    *fsIndex
	mtime time.Time
	buf   bytes.Buffer
	gz    *gzip.Writer
	tw    *tar.Writer
	files int
}

func newLayerWriter(fs *fsIndex, mtime time.Time) *layerWriter {
	w := &layerWriter{fs: fs, mtime: mtime}
	// The gzip header carries no name and a zero mtime, so compression is
	// deterministic too.
	w.gz, _ = gzip.NewWriterLevel(&w.buf, gzip.DefaultCompression)
	w.tw = tar.NewWriter(w.gz)
	return w
}

// mkdirAll makes sure directory dir (a resolved path) exists, adding the
// missing ones with mode 0755. Existing directories are left alone so that
// their modes (the sticky bit of /tmp) and owners survive.
func (w *layerWriter) mkdirAll(dir string, own owner) error {
	cur := "/"
	for _, elem := range splitPath(dir) {
		cur = path.Join(cur, elem)
		e, ok := w.fs.lookup(cur)
		switch {
		case !ok:
			if err := w.writeHeader(cur, fsEntry{typ: tar.TypeDir, mode: 0o755, uid: own.uid, gid: own.gid}, 0); err != nil {
				return err
			}
		case e.typ == tar.TypeSymlink:
			// Only reached for a symlink the caller chose not to follow,
			// i.e. never for resolved paths; refuse rather than clobber it.
			return fmt.Errorf("%s is a symbolic link in the image", cur)
		case !e.isDir():
			return fmt.Errorf("%s is not a directory in the image", cur)
		}
	}
	return nil
}

// put writes one entry at dst, an absolute path in the image whose parent
// directories may go through symlinks. For a directory whose path is
// already a symlink to a directory, the entry goes where the link points,
// as cp would do. Regular files read their contents from r.
func (w *layerWriter) put(dst string, e fsEntry, size int64, r io.Reader, parentOwner owner) error {
	parent, err := w.fs.resolve(path.Dir(dst), true)
	if err != nil {
		return err
	}
	if err := w.mkdirAll(parent, parentOwner); err != nil {
		return err
	}
	target := path.Join(parent, path.Base(dst))
	if target == "/" {
		return nil // the root's metadata belongs to the base image
	}
	if old, ok := w.fs.lookup(target); ok && old.typ == tar.TypeSymlink && e.isDir() {
		if target, err = w.fs.resolve(target, true); err != nil {
			return err
		}
		if target == "/" {
			return nil
		}
		if err := w.mkdirAll(path.Dir(target), parentOwner); err != nil {
			return err
		}
	}
	if err := w.writeHeader(target, e, size); err != nil {
		return err
	}
	if e.typ == tar.TypeReg && size > 0 {
		n, err := io.CopyN(w.tw, r, size)
		if err != nil {
			return fmt.Errorf("copying %s: %w (after %d of %d bytes; did the file change during the build?)", dst, err, n, size)
		}
	}
	return nil
}

// ensureDir makes dst exist as a directory without touching it when it
// already does (following a symlink at dst), for COPY's destination and
// WORKDIR. It reports whether anything was written.
func (w *layerWriter) ensureDir(dst string, own owner, mode int64) (bool, error) {
	target, err := w.fs.resolve(dst, true)
	if err != nil {
		return false, err
	}
	if e, ok := w.fs.lookup(target); ok {
		if !e.isDir() {
			return false, fmt.Errorf("%s is not a directory in the image", dst)
		}
		return false, nil
	}
	if err := w.mkdirAll(path.Dir(target), own); err != nil {
		return false, err
	}
	err = w.writeHeader(target, fsEntry{typ: tar.TypeDir, mode: mode, uid: own.uid, gid: own.gid}, 0)
	return err == nil, err
}

func (w *layerWriter) writeHeader(p string, e fsEntry, size int64) error {
	name := strings.TrimPrefix(p, "/")
	hdr := &tar.Header{
		Typeflag: e.typ,
		Name:     name,
		Mode:     e.mode,
		Uid:      e.uid,
		Gid:      e.gid,
		ModTime:  w.mtime,
		Format:   tar.FormatPAX,
	}
	switch e.typ {
	case tar.TypeDir:
		hdr.Name += "/"
	case tar.TypeReg:
		hdr.Size = size
	case tar.TypeSymlink:
		hdr.Linkname = e.link
	case tar.TypeLink:
		hdr.Linkname = strings.TrimPrefix(e.link, "/")
	default:
		return fmt.Errorf("%s: unsupported file type %q", p, e.typ)
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing layer: %w", err)
	}
	w.fs.set(p, e)
	w.files++
	return nil
}

// finish closes the layer and returns it with the given media type.
func (w *layerWriter) finish(mt types.MediaType) (v1.Layer, error) {
	if err := w.tw.Close(); err != nil {
		return nil, err
	}
	if err := w.gz.Close(); err != nil {
		return nil, err
	}
	data := w.buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt))
}

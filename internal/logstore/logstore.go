// Package logstore keeps build logs in a blob bucket. Blobs cannot be
// appended to, so a log is a series of numbered chunks that readers join.
// It never interprets what is logged; masking secrets is the writer's job.
package logstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
)

// maxChunk is the buffered size at which a chunk is written at once.
const maxChunk = 64 << 10

// Prefix returns the blob prefix of a version's log.
func Prefix(versionID string) string { return "logs/" + versionID + "/" }

func chunkKey(versionID string, n int) string {
	return fmt.Sprintf("%s%010d.log", Prefix(versionID), n)
}

// Writer buffers a log and writes it as chunks: when the buffer is large,
// every FlushInterval, and on Flush/Close. It is safe for concurrent use.
type Writer struct {
	bucket    *blob.Bucket
	versionID string

	mu     sync.Mutex
	buf    bytes.Buffer
	next   int
	err    error
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewWriter starts a log writer that continues after any chunks already stored.
func NewWriter(ctx context.Context, bucket *blob.Bucket, versionID string, flushInterval time.Duration) (*Writer, error) {
	if flushInterval <= 0 {
		flushInterval = 250 * time.Millisecond
	}
	keys, err := chunkKeys(ctx, bucket, versionID)
	if err != nil {
		return nil, err
	}
	w := &Writer{bucket: bucket, versionID: versionID, stop: make(chan struct{}), done: make(chan struct{})}
	if len(keys) > 0 {
		w.next = chunkNumber(keys[len(keys)-1]) + 1
	}
	go w.loop(flushInterval)
	return w, nil
}

func (w *Writer) loop(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush(context.Background())
		case <-w.stop:
			return
		}
	}
}

// Write buffers p, writing a chunk when the buffer is full.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, fmt.Errorf("log of %s: write after close", w.versionID)
	}
	w.buf.Write(p)
	if w.buf.Len() >= maxChunk {
		w.flushLocked(context.Background())
	}
	return len(p), nil
}

// Flush writes what is buffered as a new chunk.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked(ctx)
	return w.err
}

func (w *Writer) flushLocked(ctx context.Context) {
	if w.buf.Len() == 0 {
		return
	}
	if err := w.bucket.WriteAll(ctx, chunkKey(w.versionID, w.next), w.buf.Bytes(), &blob.WriterOptions{ContentType: "text/plain; charset=utf-8"}); err != nil {
		// Keep the buffer: the next flush tries again, so nothing is lost
		// to a passing storage error.
		w.err = fmt.Errorf("write log chunk of %s: %w", w.versionID, err)
		return
	}
	w.err = nil
	w.next++
	w.buf.Reset()
}

// Close flushes and stops the writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.err
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return w.Flush(context.Background())
}

func chunkKeys(ctx context.Context, bucket *blob.Bucket, versionID string) ([]string, error) {
	var keys []string
	it := bucket.List(&blob.ListOptions{Prefix: Prefix(versionID)})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list log of %s: %w", versionID, err)
		}
		if strings.HasSuffix(obj.Key, ".log") {
			keys = append(keys, obj.Key)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return chunkNumber(keys[i]) < chunkNumber(keys[j]) })
	return keys, nil
}

func chunkNumber(key string) int {
	base := key[strings.LastIndex(key, "/")+1:]
	n, _ := strconv.Atoi(strings.TrimSuffix(base, ".log"))
	return n
}

// Copy writes a version's log so far to out.
func Copy(ctx context.Context, bucket *blob.Bucket, versionID string, out io.Writer) error {
	keys, err := chunkKeys(ctx, bucket, versionID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		r, err := bucket.NewReader(ctx, k, nil)
		if err != nil {
			return fmt.Errorf("read log chunk %s: %w", k, err)
		}
		_, err = io.Copy(out, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a version's log.
func Delete(ctx context.Context, bucket *blob.Bucket, versionID string) error {
	keys, err := chunkKeys(ctx, bucket, versionID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := bucket.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete log chunk %s: %w", k, err)
		}
	}
	return nil
}

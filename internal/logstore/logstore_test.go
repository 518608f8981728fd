package logstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/fornax-dev/fornax/internal/logstore"
)

// never is a flush interval long enough that the ticker plays no part.
const never = time.Hour

type bucketKind struct {
	name string
	open func(t *testing.T) *blob.Bucket
}

var buckets = []bucketKind{
	{"memblob", func(t *testing.T) *blob.Bucket {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}},
	{"fileblob", func(t *testing.T) *blob.Bucket {
		b, err := fileblob.OpenBucket(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}},
}

func forEachBucket(t *testing.T, f func(t *testing.T, b *blob.Bucket)) {
	for _, k := range buckets {
		t.Run(k.name, func(t *testing.T) { f(t, k.open(t)) })
	}
}

func newWriter(t *testing.T, b *blob.Bucket, versionID string, every time.Duration) *logstore.Writer {
	t.Helper()
	w, err := logstore.NewWriter(context.Background(), b, versionID, every)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func read(t *testing.T, b *blob.Bucket, versionID string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := logstore.Copy(context.Background(), b, versionID, &buf); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	return buf.String()
}

// keys lists every blob under a version's log prefix, in lexical order.
func keys(t *testing.T, b *blob.Bucket, versionID string) []string {
	t.Helper()
	var out []string
	it := b.List(&blob.ListOptions{Prefix: logstore.Prefix(versionID)})
	for {
		obj, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, obj.Key)
	}
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if n, err := io.WriteString(w, s); err != nil || n != len(s) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
	}
}

func TestFlushAndClose(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		w := newWriter(t, b, "ver_1", never)
		write(t, w, "one\n")
		if got := read(t, b, "ver_1"); got != "" {
			t.Errorf("before any flush the log reads %q, want nothing yet", got)
		}
		if err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := read(t, b, "ver_1"); got != "one\n" {
			t.Errorf("after Flush log = %q", got)
		}
		// An empty flush writes no chunk.
		if err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(keys(t, b, "ver_1")); n != 1 {
			t.Errorf("%d chunks after an empty flush, want 1", n)
		}
		write(t, w, "two\nthree (no newline)")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := read(t, b, "ver_1"), "one\ntwo\nthree (no newline)"; got != want {
			t.Errorf("after Close log = %q, want %q", got, want)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := w.Write([]byte("late")); err == nil {
			t.Error("Write after Close succeeded")
		}
		if got, want := read(t, b, "ver_1"), "one\ntwo\nthree (no newline)"; got != want {
			t.Errorf("write after close changed the log to %q", got)
		}
	})
}

func TestFlushesOnInterval(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		w := newWriter(t, b, "ver_1", 10*time.Millisecond)
		write(t, w, "tick\n")
		// No Flush, no Close: only the ticker can write this. Bounded
		// wait, so a broken ticker fails instead of hanging.
		deadline := time.Now().Add(20 * time.Second)
		for read(t, b, "ver_1") != "tick\n" {
			if time.Now().After(deadline) {
				t.Fatalf("log never flushed by the interval; reads %q", read(t, b, "ver_1"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestCopyJoinsChunksInNumericOrder(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		w := newWriter(t, b, "ver_1", never)
		var want strings.Builder
		for i := range 23 {
			line := fmt.Sprintf("chunk %d\n", i)
			want.WriteString(line)
			write(t, w, line)
			if err := w.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := read(t, b, "ver_1"); got != want.String() {
			t.Errorf("Copy = %q\nwant %q", got, want.String())
		}
		ks := keys(t, b, "ver_1")
		if len(ks) != 23 {
			t.Fatalf("%d chunks, want 23: %v", len(ks), ks)
		}
		// Keys are zero-padded, so listing order (lexical) is the number order.
		re := regexp.MustCompile(`^logs/ver_1/(\d{10})\.log$`)
		for i, k := range ks {
			m := re.FindStringSubmatch(k)
			if m == nil {
				t.Errorf("key %q is not logs/ver_1/<10 digits>.log", k)
				continue
			}
			if m[1] != fmt.Sprintf("%010d", i) {
				t.Errorf("chunk %d has key %q", i, k)
			}
		}
	})
}

func TestCopyOrdersUnpaddedKeysNumerically(t *testing.T) {
	// Chunks whose keys are not padded (say, written by hand or by an
	// older version) must still be joined by number, not by name.
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		ctx := context.Background()
		var want strings.Builder
		for _, i := range []int{10, 2, 1, 0, 11, 9} {
			key := fmt.Sprintf("%s%d.log", logstore.Prefix("ver_1"), i)
			if err := b.WriteAll(ctx, key, []byte(fmt.Sprintf("<%d>", i)), nil); err != nil {
				t.Fatal(err)
			}
		}
		// Not a chunk: ignored.
		if err := b.WriteAll(ctx, logstore.Prefix("ver_1")+"meta.json", []byte("{}"), nil); err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 1, 2, 9, 10, 11} {
			fmt.Fprintf(&want, "<%d>", i)
		}
		if got := read(t, b, "ver_1"); got != want.String() {
			t.Errorf("Copy = %q, want %q", got, want.String())
		}
		// A new writer continues after the highest number, not the last name.
		w := newWriter(t, b, "ver_1", never)
		write(t, w, "<next>")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := read(t, b, "ver_1"); got != want.String()+"<next>" {
			t.Errorf("after another writer Copy = %q", got)
		}
	})
}

func TestSecondWriterContinues(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		w1 := newWriter(t, b, "ver_1", never)
		var want strings.Builder
		for i := range 12 {
			line := fmt.Sprintf("first %d\n", i)
			want.WriteString(line)
			write(t, w1, line)
			if err := w1.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if err := w1.Close(); err != nil {
			t.Fatal(err)
		}
		before := keys(t, b, "ver_1")

		w2 := newWriter(t, b, "ver_1", never)
		for i := range 3 {
			line := fmt.Sprintf("second %d\n", i)
			want.WriteString(line)
			write(t, w2, line)
			if err := w2.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		after := keys(t, b, "ver_1")
		if len(after) != len(before)+3 {
			t.Errorf("chunks went from %d to %d, want +3 (nothing overwritten)", len(before), len(after))
		}
		if got := read(t, b, "ver_1"); got != want.String() {
			t.Errorf("Copy = %q\nwant %q", got, want.String())
		}
		// Another version's log is separate.
		if got := read(t, b, "ver_10"); got != "" {
			t.Errorf("log of ver_10 = %q, want empty (prefix must not match ver_1)", got)
		}
	})
}

func TestLargeWriteMakesChunkAtOnce(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		w := newWriter(t, b, "ver_1", never)
		small := strings.Repeat("s", 64<<10-1)
		write(t, w, small)
		if n := len(keys(t, b, "ver_1")); n != 0 {
			t.Errorf("%d chunks after %d buffered bytes, want none until 64 KiB", n, len(small))
		}
		write(t, w, "x") // reaches 64 KiB
		if n := len(keys(t, b, "ver_1")); n != 1 {
			t.Errorf("%d chunks after reaching 64 KiB, want 1 at once", n)
		}
		big := strings.Repeat("b", 100<<10)
		write(t, w, big)
		if n := len(keys(t, b, "ver_1")); n != 2 {
			t.Errorf("%d chunks after a 100 KiB write, want 2", n)
		}
		if got := read(t, b, "ver_1"); got != small+"x"+big {
			t.Errorf("Copy returned %d bytes, want %d", len(got), len(small)+1+len(big))
		}
	})
}

func TestDelete(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		ctx := context.Background()
		for _, v := range []string{"ver_1", "ver_2"} {
			w := newWriter(t, b, v, never)
			for i := range 12 {
				write(t, w, fmt.Sprintf("%s %d\n", v, i))
				if err := w.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := logstore.Delete(ctx, b, "ver_1"); err != nil {
			t.Fatal(err)
		}
		if ks := keys(t, b, "ver_1"); len(ks) != 0 {
			t.Errorf("after Delete %d blobs remain: %v", len(ks), ks)
		}
		if got := read(t, b, "ver_1"); got != "" {
			t.Errorf("after Delete log = %q", got)
		}
		if n := len(keys(t, b, "ver_2")); n != 12 {
			t.Errorf("Delete of ver_1 left ver_2 with %d chunks, want 12", n)
		}
		if err := logstore.Delete(ctx, b, "ver_none"); err != nil {
			t.Errorf("Delete of a missing log: %v", err)
		}
	})
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		// A short interval so ticker flushes race with writes and with
		// size-triggered flushes.
		w := newWriter(t, b, "ver_1", time.Millisecond)
		const writers, lines = 8, 400
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range lines {
					line := fmt.Sprintf("g%d line %04d %s\n", g, i, strings.Repeat("p", (g*97+i*13)%700))
					if _, err := w.Write([]byte(line)); err != nil {
						t.Errorf("Write: %v", err)
						return
					}
					if i%50 == 0 {
						if err := w.Flush(context.Background()); err != nil {
							t.Errorf("Flush: %v", err)
						}
					}
				}
			}()
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(read(t, b, "ver_1"), "\n"), "\n")
		if len(got) != writers*lines {
			t.Fatalf("log has %d lines, want %d", len(got), writers*lines)
		}
		next := make([]int, writers)
		for _, l := range got {
			var g, i int
			if _, err := fmt.Sscanf(l, "g%d line %d", &g, &i); err != nil {
				t.Fatalf("garbled line %q", l)
			}
			if want := fmt.Sprintf("g%d line %04d %s", g, i, strings.Repeat("p", (g*97+i*13)%700)); l != want {
				t.Fatalf("line %q is corrupted", l)
			}
			if i != next[g] {
				t.Fatalf("writer %d: line %d follows %d", g, i, next[g]-1)
			}
			next[g]++
		}
		ks := keys(t, b, "ver_1")
		if !sort.StringsAreSorted(ks) || len(ks) < 2 {
			t.Errorf("chunks %d, sorted %v", len(ks), sort.StringsAreSorted(ks))
		}
	})
}

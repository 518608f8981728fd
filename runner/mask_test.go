package runner

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func writeAll(t *testing.T, m *masker, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if n, err := m.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
}

func TestMaskerSecretSplitAcrossWrites(t *testing.T) {
	const secret = "hunter2-very-secret"
	// Split the secret at every position, including across a write that
	// also ends an earlier line.
	for i := 1; i < len(secret); i++ {
		var out bytes.Buffer
		m := newMasker(&out, secret)
		writeAll(t, m, "before\npassword="+secret[:i], secret[i:]+" after\n")
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), "before\npassword=**** after\n"; got != want {
			t.Errorf("split at %d: got %q, want %q", i, got, want)
		}
	}
	// One byte at a time.
	var out bytes.Buffer
	m := newMasker(&out, secret)
	for _, b := range []byte("x " + secret + " y\n") {
		writeAll(t, m, string(b))
	}
	if got := out.String(); got != "x **** y\n" {
		t.Errorf("byte by byte: got %q", got)
	}
}

func TestMaskerHoldsPartialLineUntilClose(t *testing.T) {
	const secret = "s3cr3t-token"
	var out bytes.Buffer
	m := newMasker(&out, secret)
	writeAll(t, m, "line one\nhalf a line with s3cr3t")
	if got := out.String(); got != "line one\n" {
		t.Errorf("before Close out = %q, want only the complete line", got)
	}
	writeAll(t, m, "-token and no newline")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "line one\nhalf a line with **** and no newline"; got != want {
		t.Errorf("after Close out = %q, want %q", got, want)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got, want := out.String(), "line one\nhalf a line with **** and no newline"; got != want {
		t.Errorf("second Close wrote again: %q", got)
	}
	// Close with nothing buffered writes nothing.
	var empty bytes.Buffer
	m = newMasker(&empty, secret)
	writeAll(t, m, "done\n")
	if err := m.Close(); err != nil || empty.String() != "done\n" {
		t.Errorf("Close after whole lines: %q, %v", empty.String(), err)
	}
}

func TestMaskerShortSecretsNotMasked(t *testing.T) {
	var out bytes.Buffer
	m := newMasker(&out, "", "a", "abc", "abcd")
	writeAll(t, m, "a abc abcd abcde\n")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// "abcd" (4 characters) is masked; shorter ones, and the empty
	// string, would mangle ordinary text and are left alone.
	if got, want := out.String(), "a abc **** ****e\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMaskerNoSecrets(t *testing.T) {
	var out bytes.Buffer
	m := newMasker(&out)
	writeAll(t, m, "plain\ntext ", "here\n", "tail")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "plain\ntext here\ntail" {
		t.Errorf("got %q", got)
	}
}

func TestMaskerSeveralSecrets(t *testing.T) {
	var out bytes.Buffer
	m := newMasker(&out, "ghp_repoTokenValue", "registry-p4ss")
	writeAll(t, m,
		"clone with ghp_repoTokenValue\n",
		"login registry-p4ss and ghp_repoTok", "enValue twice: ghp_repoTokenValue\n",
		"registry-p4ssregistry-p4ss\n",
		"last registry-p4ss")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	want := "clone with ****\n" +
		"login **** and **** twice: ****\n" +
		"********\n" +
		"last ****"
	if got := out.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, s := range []string{"ghp_repoTokenValue", "registry-p4ss"} {
		if strings.Contains(out.String(), s) {
			t.Errorf("output shows %q", s)
		}
	}
}

func TestMaskerOverlappingSecrets(t *testing.T) {
	var out bytes.Buffer
	m := newMasker(&out, "abcd1234", "abcd1234-more")
	writeAll(t, m, "password abcd1234-more\n")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Contains(got, "-more") || got != "password ****\n" {
		t.Errorf("got %q, want %q", got, "password ****\n")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestMaskerPassesWriteErrors(t *testing.T) {
	m := newMasker(failWriter{}, "secret1")
	if _, err := m.Write([]byte("a line\n")); err == nil {
		t.Error("Write of a whole line to a failing writer succeeded")
	}
	m = newMasker(failWriter{}, "secret1")
	if _, err := m.Write([]byte("partial")); err != nil {
		t.Errorf("buffered Write failed: %v", err)
	}
	if err := m.Close(); err == nil {
		t.Error("Close to a failing writer succeeded")
	}
}

func TestMaskerConcurrentWritesOfWholeLines(t *testing.T) {
	var out bytes.Buffer
	m := newMasker(&out, "topsecret")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, _ = m.Write([]byte("x topsecret y\n"))
			}
		}()
	}
	wg.Wait()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), strings.Repeat("x **** y\n", 8*200); got != want {
		t.Errorf("concurrent output wrong: %d bytes, want %d; shows secret: %v", len(got), len(want), strings.Contains(got, "topsecret"))
	}
}
